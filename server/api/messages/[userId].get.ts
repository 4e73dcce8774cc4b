import { getQuery, getRouterParams } from 'h3'
import { z } from 'zod'
import { HistoryQuery } from '../../../shared/types/chat'

const Params = z.object({ userId: z.uuid() })

export default defineEventHandler(async (event) => {
  const { userId } = validated(Params)(getRouterParams(event))
  const query = validated(HistoryQuery)(getQuery(event))
  const { user } = await requireUser(event)
  const { database } = await useBackends()
  const conversationId = await findDirectConversation(database.db, user.id, userId)
  if (!conversationId) throw fail(404, 'not_found', 'You have no conversation with this person.')
  return historyByTime(database.db, conversationId, [user.id, userId], { ...query, retentionDays: useConfig().retentionDays })
})
