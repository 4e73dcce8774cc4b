import { randomBytes } from 'node:crypto'
import { setResponseHeaders } from 'h3'
import { sanitizeCookies } from '../utils/cookies'
import { clientIp, securityHeaders } from '../utils/http'

// What every request gets before any handler runs, the built assets (/_nuxt) included: the
// security headers, the client's address (the one h3's getRequestIP and every throttle see) and
// clean cookies. Nothing here throws: a request hook's error would only be logged
// (server/middleware/security.ts refuses requests).
export default defineNitroPlugin((nitroApp) => {
  nitroApp.hooks.hook('request', (event) => {
    const nonce = randomBytes(16).toString('base64')
    event.context.cspNonce = nonce
    setResponseHeaders(event, securityHeaders(nonce))
    event.context.clientAddress = clientIp(event)
    sanitizeCookies(event, new URL(useConfig().publicUrl).hostname)
  })
})
