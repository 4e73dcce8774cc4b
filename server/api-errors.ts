import { STATUS_CODES } from 'node:http'
import { getRequestHeader, send, setResponseHeader, setResponseStatus } from 'h3'
import { log } from './utils/log'
import { isBackendOutage, OUTAGE_RETRY_AFTER_SECONDS } from './utils/outage'

// API errors always answer the contract's JSON, `data.code` included: also for a path or method
// no handler serves, and for an unexpected failure (no stack, ever). A browser asking for a page
// (Accept: text/html) falls through to Nuxt's error page.
export default defineNitroErrorHandler((error, event) => {
  const api = event.path.startsWith('/api/') || event.path.startsWith('/metrics')
  if (!api && (getRequestHeader(event, 'accept') ?? '').includes('text/html')) return
  // A database or store that cannot be reached is not a bug of this request: 503 says try again.
  if ((error.statusCode || 500) >= 500 && isBackendOutage(error)) {
    log.warn('request failed: a backend is unreachable', { path: event.path.split('?')[0], error: (error.cause as Error | undefined)?.message ?? error.message })
    setResponseStatus(event, 503, STATUS_CODES[503])
    setResponseHeader(event, 'Retry-After', OUTAGE_RETRY_AFTER_SECONDS)
    setResponseHeader(event, 'Content-Type', 'application/json')
    return send(event, JSON.stringify({ statusCode: 503, statusMessage: STATUS_CODES[503], message: 'Natter cannot reach its database or store right now. Try again in a few seconds.', data: { code: 'unavailable' } }))
  }
  const statusCode = error.statusCode || 500
  const known = error.data && typeof error.data === 'object' && 'code' in error.data
  const code = known ? undefined : statusCode === 404 ? 'not_found' : statusCode === 405 ? 'method_not_allowed' : statusCode >= 500 ? 'internal' : 'invalid_body'
  if (statusCode >= 500 && !known) log.error('request failed', { path: event.path.split('?')[0], error })
  const message = known || statusCode < 500 ? error.message : 'Something went wrong on the server. Try again.'
  setResponseStatus(event, statusCode, STATUS_CODES[statusCode])
  setResponseHeader(event, 'Content-Type', 'application/json')
  // Every 429 says when to come back, in the header as in data.retryAfter.
  const retryAfter = known ? (error.data as { retryAfter?: unknown }).retryAfter : undefined
  if (statusCode === 429 && typeof retryAfter === 'number') setResponseHeader(event, 'Retry-After', retryAfter)
  return send(event, JSON.stringify({ statusCode, statusMessage: STATUS_CODES[statusCode], message, data: known ? error.data : { code } }))
})
