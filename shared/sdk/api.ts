/** What a failed call tells a program and a person; `code` is the server's `data.code`, or `network`. */
export interface ApiError {
  status: number
  code: string
  message: string
  /** Seconds, from Retry-After or `data.retryAfter`. */
  retryAfter?: number
  data?: Record<string, unknown>
}

export function isApiError(error: unknown): error is ApiError {
  return typeof error === 'object' && error !== null && 'status' in error && 'code' in error && 'message' in error
}

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

/** How the client reaches the server: the browser's fetch and WebSocket, or a Node stand-in with a cookie jar. */
export interface Transport {
  /** Resolves with the answer; rejects only when no answer came. */
  /** `signal`, when given, cancels the request (a transport without cancelling may ignore it). */
  fetch(path: string, init: { method: Method, headers: Record<string, string>, body?: string, signal?: AbortSignal }): Promise<{ status: number, headers: { get(name: string): string | null }, text(): Promise<string> }>
  openSocket(path: string): SocketLike
  /** The CSRF cookie's value as the server last set it, if any. */
  csrfToken(): string | undefined
}

/** The part of the WebSocket interface the client uses: the browser's, undici's and ws' all fit. */
export interface SocketLike {
  readonly readyState: number
  onopen: ((event: unknown) => void) | null
  onmessage: ((event: { data: unknown }) => void) | null
  onclose: ((event: { code: number, reason?: string }) => void) | null
  onerror: ((event: unknown) => void) | null
  send(text: string): void
  close(code?: number, reason?: string): void
}

const STATE_CHANGING = new Set<Method>(['POST', 'PUT', 'PATCH', 'DELETE'])

/** Natter's REST API through a transport: JSON in and out, the CSRF token echoed, errors as {@link ApiError}. */
export function createApi(transport: Transport) {
  async function csrf(): Promise<string> {
    const known = transport.csrfToken()
    if (known) return known
    const { token } = await call<{ token: string }>('GET', '/api/auth/csrf')
    return token
  }

  /** `signal` cancels a request whose answer is no longer wanted (search as you type): it rejects with `code: 'aborted'`. */
  async function call<T>(method: Method, path: string, body?: unknown, options: { signal?: AbortSignal } = {}): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' }
    if (STATE_CHANGING.has(method)) headers['x-csrf-token'] = await csrf()
    if (body !== undefined) headers['content-type'] = 'application/json'
    let response: Awaited<ReturnType<Transport['fetch']>>
    try {
      response = await transport.fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), ...(options.signal && { signal: options.signal }) })
    }
    catch {
      if (options.signal?.aborted) throw { status: 0, code: 'aborted', message: 'The request was cancelled.' } satisfies ApiError
      throw { status: 0, code: 'network', message: 'Natter can’t be reached. Check your connection and try again.' } satisfies ApiError
    }
    const text = await response.text()
    let json: unknown
    try {
      json = text ? JSON.parse(text) : null
    }
    catch {
      json = null
    }
    if (response.status >= 400) {
      const answer = (json ?? {}) as { message?: string, data?: Record<string, unknown> & { code?: string, retryAfter?: number } }
      const header = Number(response.headers.get('retry-after'))
      throw {
        status: response.status,
        code: answer.data?.code ?? 'unknown',
        message: answer.message || 'Something went wrong. Try again.',
        retryAfter: answer.data?.retryAfter ?? (Number.isFinite(header) && header > 0 ? header : undefined),
        data: answer.data
      } satisfies ApiError
    }
    return json as T
  }

  return call
}

export type Api = ReturnType<typeof createApi>
