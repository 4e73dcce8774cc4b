import { getRequestIP, setResponseStatus } from 'h3'
import { RequestOtpBody } from '#shared/types/auth'

export default defineEventHandler(async (event) => {
  const { email } = await readBodyAs(event, RequestOtpBody)
  const { store } = await useBackends()
  const config = useConfig()
  const ip = getRequestIP(event, { xForwardedFor: config.trustProxy }) ?? 'unknown'
  const mail = await issueCode({ event, store, secret: config.sessionSecret, ip, resendMs: config.codeResendMs }, email)
  sendAfterResponse(event, mail)
  // The same answer for every well-formed address: whether it has an account is nobody's business.
  setResponseStatus(event, 202)
  return { status: 'sent' }
})
