import { getCookie } from 'h3'

// CSRF, before any handler. (Security headers, clean cookies and the client address come earlier,
// from server/plugins/edge.ts, for the built assets too.)
export default defineEventHandler((event) => {
  const config = useConfig()
  const hadCookie = getCookie(event, CSRF_COOKIE)
  event.context.csrfToken = ensureCsrfCookie(event, config)
  checkStateChange(event, config, hadCookie)
})
