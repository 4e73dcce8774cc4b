import { getQuery, getRouterParams } from 'h3'
import { z } from 'zod'
import { ResyncQuery } from '../../../../shared/types/chat'

const Params = z.object({ id: z.uuid() })

export default defineEventHandler(async (event) => {
  const { id } = validated(Params)(getRouterParams(event))
  const query = validated(ResyncQuery)(getQuery(event))
  const { user } = await requireUser(event)
  const { database } = await useBackends()
  // Membership in the lookup: a conversation the caller is not in is a 404, not a 403.
  const { otherId } = await requireMembership(database.db, user.id, id)
  return historyBySeq(database.db, id, [user.id, otherId ?? user.id], { ...query, retentionDays: useConfig().retentionDays })
})
