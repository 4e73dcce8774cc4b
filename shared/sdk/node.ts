import { WebSocket } from 'ws'
import type { Method, SocketLike, Transport } from './api'

/**
 * A transport for Node (tests, the benchmark): a cookie jar like a browser's, our Origin on
 * every request and socket, and optional extra headers (X-Forwarded-For behind a pretend proxy).
 */
export class NodeTransport implements Transport {
  readonly cookies: Map<string, string>
  readonly headers: Record<string, string>
  readonly origin: string
  readonly timeoutMs: number

  /** `cookies` may be another client's jar, shared: both then act as one browser. */
  constructor(readonly base: string, options: { headers?: Record<string, string>, origin?: string, cookies?: Map<string, string>, timeoutMs?: number } = {}) {
    this.timeoutMs = options.timeoutMs ?? 15_000
    this.cookies = options.cookies ?? new Map()
    this.headers = options.headers ?? {}
    this.origin = options.origin ?? base
  }

  csrfToken() {
    return this.cookies.get('natter_csrf')
  }

  cookieHeader() {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
  }

  async fetch(path: string, init: { method: Method, headers: Record<string, string>, body?: string }) {
    const response = await fetch(this.base + path, {
      method: init.method,
      headers: { origin: this.origin, ...this.headers, ...init.headers, ...(this.cookies.size && { cookie: this.cookieHeader() }) },
      body: init.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(this.timeoutMs)
    })
    keepCookies(this.cookies, response.headers)
    return response
  }

  openSocket(path: string): SocketLike {
    return new WebSocket(this.base.replace(/^http/, 'ws') + path, {
      headers: { origin: this.origin, ...this.headers, cookie: this.cookieHeader() }
    }) as unknown as SocketLike
  }
}

/** What a browser does with an answer's Set-Cookie headers: keep, replace, or forget (expired or empty). */
export function keepCookies(jar: Map<string, string>, headers: Headers) {
  for (const cookie of headers.getSetCookie()) {
    const [pair] = cookie.split(';')
    const [name, ...rest] = pair!.split('=')
    const value = rest.join('=')
    if (/max-age=0|expires=Thu, 01 Jan 1970/i.test(cookie) || value === '') jar.delete(name!.trim())
    else jar.set(name!.trim(), value)
  }
}
