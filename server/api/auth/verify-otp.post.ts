import { getRequestIP, setCookie } from 'h3'
import { VerifyOtpBody } from '#shared/types/auth'
import { PENDING_COOKIE, PENDING_SIGN_IN_MS, secondFactorOn, startPendingSignIn } from '../../utils/second-factor/totp'

export default defineEventHandler(async (event) => {
  const { email, otp } = await readBodyAs(event, VerifyOtpBody)
  const { store, database } = await useBackends()
  const config = useConfig()
  const ip = getRequestIP(event, { xForwardedFor: config.trustProxy }) ?? 'unknown'
  await consumeCode({ event, store, secret: config.sessionSecret, ip }, email, otp)
  const { user, created } = await findOrCreateUser(database.db, email)
  if (await secondFactorOn(database.db, user.id)) {
    // No session yet: this browser, and only it, may finish with a code from the app.
    const token = await startPendingSignIn(store, { userId: user.id, firstSignIn: created })
    setCookie(event, PENDING_COOKIE, token, { httpOnly: true, sameSite: 'strict', path: '/api/auth', secure: config.secureCookies, maxAge: PENDING_SIGN_IN_MS / 1000 })
    return { totp: 'required' as const }
  }
  await startSession(event, user.id)
  return { user, firstSignIn: created }
})
