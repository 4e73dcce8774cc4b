import { getValidatedRouterParams } from 'h3'
import { ConversationIdParams } from '#shared/types/conversations'
import { requireUser } from '../../../utils/auth'
import { useBackends } from '../../../utils/backends'
import { conversationDetail } from '../../../utils/conversations/conversations'
import { validated } from '../../../utils/http'

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const { id } = await getValidatedRouterParams(event, validated(ConversationIdParams))
  return conversationDetail(await useBackends(), user.id, id)
})
