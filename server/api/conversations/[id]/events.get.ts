import { getValidatedQuery, getValidatedRouterParams } from 'h3'
import { ConversationIdParams, EventsQuery } from '#shared/types/conversations'
import { requireUser } from '../../../utils/auth'
import { useBackends } from '../../../utils/backends'
import { requireMember } from '../../../utils/conversations/conversations'
import { replayEvents } from '../../../utils/conversations/events'
import { validated } from '../../../utils/http'

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const { id } = await getValidatedRouterParams(event, validated(ConversationIdParams))
  const query = await getValidatedQuery(event, validated(EventsQuery))
  const { database } = await useBackends()
  const { recipients } = await requireMember(database.db, user.id, id)
  return replayEvents(database.db, id, recipients, query)
})
