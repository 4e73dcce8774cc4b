import { timingSafeEqual } from 'node:crypto'
import { STATUS_CODES, type IncomingMessage } from 'node:http'
import { isIP } from 'node:net'
import type { H3Event } from 'h3'
import { createError, getRequestHeader, readRawBody } from 'h3'
import type { z } from 'zod'
import type { ErrorCode } from '#shared/types/user'
import { useConfig } from './config'

/** The largest request body any endpoint takes; a body is never buffered beyond it. */
export const MAX_BODY_BYTES = 16 * 1024

/** An error in the contract's shape: a message for people, `data.code` for programs. */
export function fail(statusCode: number, code: ErrorCode, message: string, extra: Record<string, unknown> = {}): Error {
  return createError({ statusCode, statusMessage: STATUS_CODES[statusCode], message, data: { code, ...extra } })
}

export function bodyTooLarge(limit = MAX_BODY_BYTES): Error {
  return fail(413, 'body_too_large', `The request body is larger than ${limit / 1024} KiB.`)
}

/**
 * Reads a JSON body and checks it against its schema: 413 when too large, 400 with the field
 * issues when malformed, so a handler only ever sees valid input. Authenticate first: a body is
 * read only for someone allowed to send it.
 */
export async function readBodyAs<S extends z.ZodType>(event: H3Event, schema: S): Promise<z.output<S>> {
  const raw = await readBodyText(event)
  let json: unknown
  try {
    json = raw === '' ? {} : JSON.parse(raw)
  }
  catch {
    throw fail(400, 'invalid_json', 'The request body is not valid JSON.')
  }
  return validated(schema)(json)
}

/**
 * The body as text, read from the connection at most `limit` bytes: past the limit it stops
 * reading and throws 413, and the connection is closed after that answer (the production entry's
 * `closeAfterUnreadBody`), so neither a declared nor a chunked body of any size is ever held in
 * memory.
 */
export async function readBodyText(event: H3Event, limit = MAX_BODY_BYTES): Promise<string> {
  const declared = Number(getRequestHeader(event, 'content-length') || 0)
  if (declared > limit) throw bodyTooLarge(limit)
  const req = event.node.req as IncomingMessage & { body?: unknown, rawBody?: unknown }
  // A request Nitro makes to itself (server-side rendering) carries its body in memory already.
  const inMemory = (event as { _requestBody?: unknown })._requestBody ?? event.web?.request?.body ?? req.rawBody ?? req.body
  const body = inMemory ? await readRawBody(event, false) : await readLimited(req, limit)
  if (body && body.length > limit) throw bodyTooLarge(limit)
  return body ? body.toString('utf8') : ''
}

function readLimited(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const stop = (error?: Error) => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', stop)
      req.off('close', onClose)
      if (!error) return resolve(Buffer.concat(chunks, size))
      // Nothing more is read: the socket's buffers fill and hold the client until the answer ends
      // the connection (server/utils/connections.ts closeAfterUnreadBody).
      req.pause()
      reject(error)
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) stop(bodyTooLarge(limit))
      else chunks.push(chunk)
    }
    const onEnd = () => stop()
    const onClose = () => stop(fail(400, 'invalid_body', 'The connection closed before the body was complete.'))
    req.on('data', onData)
    req.once('end', onEnd)
    req.once('error', stop)
    req.once('close', onClose)
  })
}

/** A zod schema as an h3 validator that fails with the contract's 400 shape. */
export function validated<S extends z.ZodType>(schema: S) {
  return (value: unknown): z.output<S> => {
    let result: z.ZodSafeParseResult<z.output<S>>
    try {
      result = schema.safeParse(value)
    }
    catch {
      // NOTE: zod 4 can throw (not fail) on objects posing as arrays, e.g. { length: { toString: 1 } }.
      throw fail(400, 'invalid_body', 'The request does not match its schema.')
    }
    if (result.success) return result.data
    const issues = result.error.issues.map(issue => ({ path: issue.path.join('.'), message: issue.message }))
    throw fail(400, 'invalid_body', issues[0]?.message ?? 'The request is not valid.', { issues })
  }
}

/**
 * Who is asking, for throttles and logs. Exposed directly, the connection's address. Behind
 * NATTER_TRUST_PROXY=N proxies, the entry the N-th proxy from us appended to X-Forwarded-For
 * (the rightmost for one proxy): whatever the client wrote there itself stands to its left.
 * Set on every request by server/plugins/edge.ts, so h3's getRequestIP answers the same.
 */
export function clientIp(event: H3Event): string {
  const known = event.context.clientAddress as string | undefined
  if (known) return known
  const peer = unmapped(event.node.req.socket?.remoteAddress ?? '') || 'unknown'
  const { proxyHops } = useConfig()
  if (!proxyHops) return peer
  const hops = forwardedFor(event)
  const entry = hops[Math.max(0, hops.length - proxyHops)]
  return entry && isIP(unmapped(entry)) ? unmapped(entry) : peer
}

function forwardedFor(event: H3Event): string[] {
  const header = event.node.req.headers['x-forwarded-for']
  return [header ?? []].flat().join(',').split(',').map(entry => entry.trim()).filter(Boolean)
}

function unmapped(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address
}

// Headers a proxy adds: a request that carries any of them did not come from inside.
const PROXY_HEADERS = ['x-forwarded-for', 'x-real-ip', 'forwarded', 'x-forwarded-host', 'x-forwarded-proto', 'via', 'x-client-ip', 'true-client-ip', 'cf-connecting-ip', 'x-cluster-client-ip']

// Private and loopback ranges: where a cluster's Prometheus and probes come from.
const INTERNAL = /^(?:::ffff:)?(?:127\.|10\.|192\.168\.|172\.(?:1[6-9]|2\d|3[01])\.)|^(?:::1|f[cd][0-9a-f]{2}:)/i

/**
 * An operator's caller: from a private or loopback address without any proxy header, or with
 * NATTER_METRICS_TOKEN as a bearer token. Through an ingress it is never the former.
 */
export function isOperator(event: H3Event): boolean {
  const { metricsToken } = useConfig()
  const given = getRequestHeader(event, 'authorization')?.replace(/^Bearer\s+/i, '') ?? ''
  if (metricsToken && given.length === metricsToken.length && timingSafeEqual(Buffer.from(given), Buffer.from(metricsToken))) return true
  const headers = event.node.req.headers
  return INTERNAL.test(event.node.req.socket?.remoteAddress ?? '') && !PROXY_HEADERS.some(name => headers[name] !== undefined)
}

/**
 * Headers every response carries, the built assets and the server's own error answers included.
 * No third-party origin anywhere: Natter must work on a closed network. Scripts and style
 * elements need this response's nonce in production (the dev server's Vite client injects both
 * without one); without a nonce (an answer that is not a page) none run at all. Style attributes
 * stay allowed: see docs/security.md for why.
 */
export function securityHeaders(nonce?: string): Record<string, string> {
  const { production, secureCookies } = useConfig()
  const only = nonce ? `'self' 'nonce-${nonce}'` : `'none'`
  const policy = [
    `default-src 'self'`,
    production ? `script-src ${only}` : `script-src 'self' 'unsafe-inline' 'unsafe-eval'`,
    production ? `style-src ${only}` : `style-src 'self' 'unsafe-inline'`,
    `style-src-attr 'unsafe-inline'`,
    `img-src 'self' data: blob:`,
    `font-src 'self' data:`,
    `connect-src 'self'`,
    `object-src 'none'`,
    `base-uri 'self'`,
    `form-action 'self'`,
    `frame-ancestors 'none'`
  ].join('; ')
  return {
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'same-origin',
    'X-Frame-Options': 'DENY',
    'Content-Security-Policy': policy,
    ...(secureCookies && { 'Strict-Transport-Security': 'max-age=31536000; includeSubDomains' })
  }
}
