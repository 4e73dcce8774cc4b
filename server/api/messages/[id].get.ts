import { getValidatedQuery, getValidatedRouterParams } from 'h3'
import { MessageParams } from '#shared/types/changes'
import { HistoryQuery } from '#shared/types/messages'
import { requireUser } from '../../utils/auth'
import { useBackends } from '../../utils/backends'
import { findDirectConversation } from '../../utils/conversations/direct'
import { fail, validated } from '../../utils/http'
import { historyByTime } from '../../utils/messages/history'

// Version 1: a direct conversation's history, reached by the other person's id. The file is named
// [id] like the message changes beside it: one route shape, one parameter name.
export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const { id: userId } = await getValidatedRouterParams(event, validated(MessageParams))
  const query = await getValidatedQuery(event, validated(HistoryQuery))
  const { database } = await useBackends()
  const conversationId = await findDirectConversation(database.db, user.id, userId)
  if (!conversationId) throw fail(404, 'not_found', 'You have no conversation with this person.')
  return historyByTime(database.db, conversationId, { kind: 'direct', members: [user.id, userId] }, query, user.id)
})
