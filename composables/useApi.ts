import type { ErrorCode } from '#shared/types/user'

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

export interface ApiOptions {
  method?: Method
  body?: Record<string, unknown>
  query?: Record<string, string | number | undefined>
}

/** What the UI needs from a failed call; `code` is the server's `data.code`, or `network` when no answer came. */
export interface ApiError {
  status: number
  code: ErrorCode | 'network' | 'unknown'
  message: string
  retryAfter?: number
  triesLeft?: number
}

const CSRF_COOKIE = 'natter_csrf'
const STATE_CHANGING = new Set<Method>(['POST', 'PUT', 'PATCH', 'DELETE'])

export function isApiError(error: unknown): error is ApiError {
  return typeof error === 'object' && error !== null && 'status' in error && 'code' in error && 'message' in error
}

/**
 * Calls Natter's REST API: echoes the CSRF cookie on state changes, forwards the visitor's cookies
 * during SSR, and rejects with an {@link ApiError}. Call it in setup (or a store's setup), not later.
 */
export function useApi() {
  const request = useRequestFetch()
  const csrfCookie = useCookie<string | null>(CSRF_COOKIE, { default: () => null, readonly: true })

  async function csrfToken(): Promise<string> {
    // The server may set the cookie on any answer, so read the live value rather than the ref's snapshot.
    const current = import.meta.client ? readBrowserCookie(CSRF_COOKIE) : csrfCookie.value
    if (current) return current
    const { token } = await request<{ token: string }>('/api/auth/csrf')
    return token
  }

  return async function api<T>(url: string, options: ApiOptions = {}): Promise<T> {
    const method = options.method ?? 'GET'
    try {
      const headers: Record<string, string> = {}
      if (STATE_CHANGING.has(method)) headers['x-csrf-token'] = await csrfToken()
      // Typed per path by Nitro; this wrapper takes any path, so the caller names the answer's type.
      return await request(url, { method, body: options.body, query: options.query, headers }) as T
    }
    catch (error) {
      throw toApiError(error)
    }
  }
}

function readBrowserCookie(name: string): string | null {
  for (const pair of document.cookie.split(';')) {
    const [key, ...value] = pair.trim().split('=')
    if (key === name) return decodeURIComponent(value.join('='))
  }
  return null
}

function toApiError(error: unknown): ApiError {
  const response = (error as { response?: Response } | null)?.response
  if (!response) {
    return { status: 0, code: 'network', message: 'Natter can’t be reached. Check your connection and try again.' }
  }
  const body = (error as { data?: unknown }).data as { message?: string, data?: { code?: ErrorCode, retryAfter?: number, triesLeft?: number } } | undefined
  const header = Number(response.headers.get('retry-after'))
  const retryAfter = body?.data?.retryAfter ?? (Number.isFinite(header) && header > 0 ? header : undefined)
  return {
    status: response.status,
    code: body?.data?.code ?? 'unknown',
    message: body?.message || response.statusText || 'Something went wrong. Try again.',
    retryAfter,
    triesLeft: body?.data?.triesLeft
  }
}
