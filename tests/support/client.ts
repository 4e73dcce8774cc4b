import { keepCookies } from '#shared/sdk/node'
import type { MailCatcher } from './mail-catcher'

export interface Answer<T = any> {
  status: number
  headers: Headers
  body: T
}

/** A browser-like HTTP client: keeps cookies, sends Origin, echoes the CSRF token. */
export class Client {
  readonly cookies = new Map<string, string>()
  constructor(readonly base: string, readonly origin: string = base) {}

  get csrf() {
    return this.cookies.get('natter_csrf')
  }

  cookieHeader() {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
  }

  async request<T = any>(method: string, path: string, body?: unknown, options: { headers?: Record<string, string>, csrf?: boolean, raw?: string } = {}): Promise<Answer<T>> {
    if (method !== 'GET' && options.csrf !== false && !this.csrf) await this.request('GET', '/api/auth/csrf')
    const headers: Record<string, string> = { origin: this.origin, ...options.headers }
    if (this.cookies.size) headers.cookie = this.cookieHeader()
    if (method !== 'GET' && options.csrf !== false && this.csrf) headers['x-csrf-token'] = this.csrf
    if (body !== undefined || options.raw !== undefined) headers['content-type'] = 'application/json'
    const response = await fetch(this.base + path, {
      method,
      headers,
      body: options.raw ?? (body === undefined ? undefined : JSON.stringify(body)),
      redirect: 'manual'
    })
    keepCookies(this.cookies, response.headers)
    const text = await response.text()
    let parsed: unknown = text
    try {
      parsed = text ? JSON.parse(text) : null
    }
    catch { /* not JSON: keep the text */ }
    return { status: response.status, headers: response.headers, body: parsed as T }
  }

  get<T = any>(path: string) {
    return this.request<T>('GET', path)
  }

  post<T = any>(path: string, body?: unknown) {
    return this.request<T>('POST', path, body)
  }

  /** Signs in through the real endpoints, reading the code from the mail catcher. */
  async signIn(email: string, mail: MailCatcher) {
    const before = mail.mails.length
    const requested = await this.post('/api/auth/request-otp', { email })
    if (requested.status !== 202) throw new Error(`request-otp answered ${requested.status}: ${JSON.stringify(requested.body)}`)
    const otp = await mail.codeFor(email, before)
    const verified = await this.post('/api/auth/verify-otp', { email, otp })
    if (verified.status !== 200) throw new Error(`verify-otp answered ${verified.status}: ${JSON.stringify(verified.body)}`)
    return verified.body.user as { id: string, email: string, displayName: string }
  }
}
