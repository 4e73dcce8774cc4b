// Errors that mean "a backend is away", not "this request is wrong" or "Natter has a bug": the
// answer is then 503 with Retry-After, which tells a client to try the same request again.

// PostgreSQL: connection exceptions (class 08), the server shutting down or starting (57P01-57P03),
// too many connections (53300).
const POSTGRES_CODES = new Set(['08000', '08001', '08003', '08004', '08006', '57P01', '57P02', '57P03', '53300'])
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN'])
// What pg, pg-pool and ioredis throw without a code when their connection is gone.
const MESSAGES = [
  /^Connection terminated/,
  /^timeout exceeded when trying to connect/,
  /^Client has encountered a connection error/,
  /^Connection is closed\.?$/,
  /^Stream isn't writeable/,
  /^Reached the max retries per request limit/
]

/** True when the error, or one it wraps, says a backend (database, store, bus) cannot be reached. */
export function isBackendOutage(error: unknown): boolean {
  const seen = new Set<unknown>()
  let current: unknown = error
  while (current && typeof current === 'object' && !seen.has(current)) {
    seen.add(current)
    const { code, message, name } = current as { code?: unknown, message?: unknown, name?: unknown }
    if (typeof code === 'string' && (POSTGRES_CODES.has(code) || SOCKET_CODES.has(code))) return true
    if (name === 'MaxRetriesPerRequestError') return true
    if (typeof message === 'string' && MESSAGES.some(pattern => pattern.test(message))) return true
    current = (current as { cause?: unknown }).cause
  }
  return false
}

/** Seconds a client should wait before trying again during an outage. */
export const OUTAGE_RETRY_AFTER_SECONDS = 5
