import { getValidatedQuery, getValidatedRouterParams } from 'h3'
import { ConversationIdParams } from '#shared/types/conversations'
import { MessagesQuery } from '#shared/types/messages'
import { requireUser } from '../../../utils/auth'
import { useBackends } from '../../../utils/backends'
import { requireMember } from '../../../utils/conversations/conversations'
import { validated } from '../../../utils/http'
import { messagesPage } from '../../../utils/messages/history'

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const { id } = await getValidatedRouterParams(event, validated(ConversationIdParams))
  const query = await getValidatedQuery(event, validated(MessagesQuery))
  const { database } = await useBackends()
  const { recipients } = await requireMember(database.db, user.id, id)
  return messagesPage(database.db, id, recipients, query, user.id)
})
