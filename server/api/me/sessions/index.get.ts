import type { DevicesAnswer } from '#shared/types/me'
import { requireUser } from '../../../utils/auth'
import { useBackends } from '../../../utils/backends'
import { deviceIdOf, listSessions } from '../../../utils/sessions'

export default defineEventHandler(async (event): Promise<DevicesAnswer> => {
  const { user, session: current } = await requireUser(event)
  const { store } = await useBackends()
  const sessions = await listSessions(store, user.id)
  return {
    sessions: sessions.map(session => ({
      id: deviceIdOf(session),
      device: session.device ?? 'Unknown browser',
      address: session.address ?? null,
      createdAt: new Date(session.createdAt).toISOString(),
      lastActiveAt: new Date(session.lastUsedAt).toISOString(),
      current: session.id === current.id
    }))
  }
})
