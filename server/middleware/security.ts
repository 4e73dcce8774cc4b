import { getCookie, getRequestHeader } from 'h3'

// Refusals that come before any handler: a body declared larger than any endpoint takes (the
// connection closes after the answer, server/utils/http.ts `expectBody`), then CSRF.
export default defineEventHandler((event) => {
  if (Number(getRequestHeader(event, 'content-length') || 0) > MAX_BODY_BYTES) throw bodyTooLarge()
  const config = useConfig()
  const hadCookie = getCookie(event, CSRF_COOKIE)
  event.context.csrfToken = ensureCsrfCookie(event, config)
  checkStateChange(event, config, hadCookie)
})
