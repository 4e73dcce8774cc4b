import { randomBytes } from 'node:crypto'
import { getCookie, setResponseHeaders } from 'h3'

export default defineEventHandler((event) => {
  const config = useConfig()
  const nonce = randomBytes(16).toString('base64')
  event.context.cspNonce = nonce
  setResponseHeaders(event, {
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'same-origin',
    'X-Frame-Options': 'DENY',
    'Content-Security-Policy': contentSecurityPolicy(nonce, config.production),
    ...(config.secureCookies && { 'Strict-Transport-Security': 'max-age=31536000; includeSubDomains' })
  })
  const hadCookie = getCookie(event, CSRF_COOKIE)
  event.context.csrfToken = ensureCsrfCookie(event, config)
  checkStateChange(event, config, hadCookie)
})

// No third-party origin anywhere: Natter must work on a closed network. The dev server's Vite
// client needs eval and inline scripts, so only production pins scripts to this response's nonce.
function contentSecurityPolicy(nonce: string, production: boolean): string {
  return [
    `default-src 'self'`,
    production ? `script-src 'self' 'nonce-${nonce}'` : `script-src 'self' 'unsafe-inline' 'unsafe-eval'`,
    `style-src 'self' 'unsafe-inline'`,
    `img-src 'self' data: blob:`,
    `font-src 'self' data:`,
    `connect-src 'self'`,
    `object-src 'none'`,
    `base-uri 'self'`,
    `form-action 'self'`,
    `frame-ancestors 'none'`
  ].join('; ')
}
