import { getValidatedRouterParams, setResponseStatus } from 'h3'
import { DeviceParams } from '#shared/types/me'
import { clearSessionCookie, requireUser } from '../../../utils/auth'
import { useBackends } from '../../../utils/backends'
import { fail, validated } from '../../../utils/http'
import { deviceIdOf, endSession, listSessions } from '../../../utils/sessions'

export default defineEventHandler(async (event) => {
  const { user, session: current } = await requireUser(event)
  const { id } = await getValidatedRouterParams(event, validated(DeviceParams))
  const { store } = await useBackends()
  // Only among my own: anyone else's id is as unknown as a made-up one.
  const session = (await listSessions(store, user.id)).find(mine => deviceIdOf(mine) === id)
  if (!session) throw fail(404, 'not_found', 'No such device is signed in.')
  await endSession(store, session)
  if (session.id === current.id) clearSessionCookie(event)
  setResponseStatus(event, 204)
  return null
})
