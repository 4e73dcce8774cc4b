import { deleteCookie, getCookie } from 'h3'
import { SecondFactorCodeBody } from '#shared/types/me'
import { startSession } from '../../utils/auth'
import { useBackends } from '../../utils/backends'
import { useConfig } from '../../utils/config'
import { fail, readBodyAs } from '../../utils/http'
import { secondFactorContext } from '../../utils/second-factor/context'
import { finishPendingSignIn, PENDING_COOKIE } from '../../utils/second-factor/totp'
import { findUser } from '../../utils/users'

export default defineEventHandler(async (event) => {
  const { code } = await readBodyAs(event, SecondFactorCodeBody)
  const pending = await finishPendingSignIn(await secondFactorContext(event), getCookie(event, PENDING_COOKIE), code)
  deleteCookie(event, PENDING_COOKIE, { path: '/api/auth', httpOnly: true, sameSite: 'strict', secure: useConfig().secureCookies })
  const user = await findUser((await useBackends()).database.db, pending.userId)
  if (!user) throw fail(401, 'unauthenticated', 'This account no longer exists.')
  await startSession(event, user.id)
  return { user, firstSignIn: pending.firstSignIn }
})
