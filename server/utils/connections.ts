import { readFileSync } from 'node:fs'
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { isIP, type Socket } from 'node:net'
import { Counter } from 'prom-client'
import type { EdgeLimits } from './config'
import { securityHeaders } from './http'
import { log } from './log'
import { metrics } from './metrics'

// After answering a request whose body was not read, what may still come before the reset.
const LINGER_MS = 2000
const LINGER_BYTES = 1024 * 1024

// Open files the process keeps for itself beyond client sockets: the database pool, Redis,
// Kafka, the embedded database's files, logs.
const RESERVED_FILES = 256

const refused = new Counter({
  name: 'natter_connections_refused_total',
  help: 'TCP connections closed on arrival: over the per-address cap or over the total',
  labelNames: ['reason'] as const,
  registers: [metrics]
})

/**
 * Caps what the HTTP server holds open, at the TCP level, before a byte is parsed: in total
 * (lowered to fit the process's open-file limit, so accept() never fails for lack of a file
 * descriptor) and, when clients connect directly, per address. Behind a proxy every connection
 * comes from the proxy, so only the total applies there.
 */
export function capConnections(server: Server, limits: EdgeLimits, perAddress: boolean) {
  const files = openFileLimit()
  const total = files ? Math.min(limits.maxConnections, Math.max(1, files - RESERVED_FILES)) : limits.maxConnections
  if (total < limits.maxConnections) {
    log.warn('connection cap lowered to fit the open-file limit', { maxConnections: total, configured: limits.maxConnections, openFileLimit: files })
  }
  server.maxConnections = total
  server.on('drop', () => refused.inc({ reason: 'total' }))
  const perIp = perAddress ? limits.maxConnectionsPerIp : 0
  log.info('connection limits', { ...limits, maxConnections: total, maxConnectionsPerIp: perIp || 'off' })
  if (!perIp) return
  const open = new Map<string, number>()
  server.on('connection', (socket: Socket) => {
    const key = addressKey(socket.remoteAddress)
    const count = open.get(key) ?? 0
    if (count >= perIp) {
      refused.inc({ reason: 'per_ip' })
      socket.destroy()
      return
    }
    open.set(key, count + 1)
    socket.once('close', () => {
      const left = (open.get(key) ?? 1) - 1
      if (left > 0) open.set(key, left)
      else open.delete(key)
    })
  })
}

/**
 * A request answered before its body was read (401 before the session's body, 413 past the
 * limit, an endpoint that takes none) ends its connection: Node would otherwise read and drop
 * the whole body, however large, to keep the connection alive. The answer goes out, then our
 * end of the connection (a client reading it stops sending), and what still comes is dropped for
 * at most 2 s or 1 MiB before the reset; closing at once would reset the connection under the
 * answer, and a client still sending could lose it.
 */
export function closeAfterUnreadBody(request: IncomingMessage, response: ServerResponse) {
  response.once('finish', () => {
    if (request.complete) return
    const socket = request.socket
    socket.end()
    const reset = setTimeout(() => socket.destroy(), LINGER_MS)
    socket.once('close', () => clearTimeout(reset))
    let dropped = 0
    request.on('data', (chunk: Buffer) => {
      dropped += chunk.length
      if (dropped > LINGER_BYTES) socket.destroy()
    })
    request.resume()
  })
}

/** One client: an IPv4 address, or an IPv6 /64 (one home or host is given a whole /64). */
export function addressKey(address = ''): string {
  const bare = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address
  if (isIP(bare) !== 6) return bare
  const [head = '', tail = ''] = bare.split('::')
  const left = head ? head.split(':') : []
  const right = tail ? tail.split(':') : []
  const groups = bare.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left
  return groups.slice(0, 4).map(group => group.toLowerCase().replace(/^0+(?=.)/, '')).join(':') + '::/64'
}

/** The soft limit on open files (Linux), or undefined where /proc does not say. */
export function openFileLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find(row => row.startsWith('Max open files'))
    const soft = Number(line?.split(/\s{2,}/)[1])
    return Number.isFinite(soft) ? soft : undefined
  }
  catch {
    return undefined
  }
}

const CLIENT_ERRORS: Record<string, { status: number, code: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, code: 'headers_too_large' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, code: 'request_timeout' },
  HPE_CHUNK_EXTENSIONS_OVERFLOW: { status: 413, code: 'body_too_large' }
}

/**
 * Node's answer to a request it cannot parse or that did not arrive in time (400, 408, 413,
 * 431), with the security headers of every other response and a JSON body in the contract's
 * shape; Node's own is a bare status line. Parse errors are logged; timeouts are not: browsers
 * open spare connections that idle until the header timeout.
 */
export function answerClientError(error: Error & { code?: string }, socket: Socket & { _httpMessage?: { headersSent?: boolean } }) {
  // As Node does: answer only when no response of this connection has begun.
  if (error.code === 'ECONNRESET' || !socket.writable || socket._httpMessage?.headersSent) {
    socket.destroy()
    return
  }
  const { status, code } = CLIENT_ERRORS[error.code ?? ''] ?? { status: 400, code: 'bad_request' }
  if (status !== 408) log.warn('bad request', { status, reason: error.code ?? error.message, client: socket.remoteAddress })
  const body = JSON.stringify({ statusCode: status, statusMessage: STATUS_CODES[status], message: 'The request could not be read.', data: { code } })
  const headers = { ...securityHeaders(), 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)), 'Connection': 'close' }
  const head = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')
  socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${head}\r\n${body}`)
  socket.destroy()
}
