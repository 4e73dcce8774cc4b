import { getRequestIP } from 'h3'
import { VerifyOtpBody } from '#shared/types/auth'

export default defineEventHandler(async (event) => {
  const { email, otp } = await readBodyAs(event, VerifyOtpBody)
  const { store, database } = await useBackends()
  const config = useConfig()
  const ip = getRequestIP(event, { xForwardedFor: config.trustProxy }) ?? 'unknown'
  await consumeCode({ event, store, secret: config.sessionSecret, ip }, email, otp)
  const { user, created } = await findOrCreateUser(database.db, email)
  await startSession(event, user.id)
  return { user, firstSignIn: created }
})
