import { createApi, isApiError, type Api, type ApiError as SdkApiError, type Transport } from '#shared/sdk/api'

export { isApiError } from '#shared/sdk/api'

/** The words to show for a failed call: the server's own message, else `fallback` (a bug, say). */
export function failureText(error: unknown, fallback = 'Something went wrong. Try again.'): string {
  return isApiError(error) ? error.message : fallback
}
/** What a failed call tells a program and a person; `code` is the server's `data.code`, or `network`. */
export type ApiError = SdkApiError

let browserApi: Api | undefined

/**
 * Natter's REST API, the SDK's `createApi`: in the browser on the page's own transport (the one
 * NatterClient uses), while rendering on the server through `useRequestFetch()`, which forwards
 * the visitor's cookies. Call it in setup (or a store's setup), not later.
 */
export function useApi(): Api {
  if (import.meta.client) return browserApi ??= createApi(browserTransport)
  return createApi(renderTransport())
}

function renderTransport(): Transport {
  const request = useRequestFetch() as (path: string, options: Record<string, unknown>) => Promise<string | undefined>
  return {
    async fetch(path, { method, headers, body }) {
      let status = 0
      let answerHeaders = new Headers()
      const text = await request(path, {
        method,
        headers,
        body,
        responseType: 'text',
        ignoreResponseError: true,
        onResponse({ response }: { response: Response }) {
          status = response.status
          answerHeaders = response.headers
        }
      })
      return { status, headers: answerHeaders, text: async () => text ?? '' }
    },
    openSocket() {
      throw new Error('no sockets while rendering on the server')
    },
    // A state change while rendering asks GET /api/auth/csrf first.
    csrfToken: () => undefined
  }
}
