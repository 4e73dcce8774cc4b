// Every page but /login is for signed-in people. The user is loaded once, on the server for the
// first page, and the answer rides in the payload to the browser.
export default defineNuxtRouteMiddleware(async (to) => {
  const session = useSessionStore()
  if (!session.loaded) {
    try {
      await session.load()
    }
    catch (error) {
      const failure = isApiError(error) ? error : undefined
      return abortNavigation(createError({
        statusCode: failure?.status || 503,
        message: failure?.message ?? 'Natter could not check who you are.'
      }))
    }
  }

  if (to.path === '/login') {
    if (session.user) return navigateTo(safeNext(to.query.next))
    return
  }
  if (!session.user) {
    return navigateTo(to.fullPath === '/' ? '/login' : { path: '/login', query: { next: to.fullPath } })
  }
})

const ORIGIN = 'http://natter.invalid'

/**
 * Where to go after signing in: only ever a path on this site, else `/`. Browsers drop tabs and
 * newlines from a URL and read a backslash as a slash, so `/<tab>/evil.example` or
 * `/<backslash>evil.example` would leave the site: any control character or backslash is
 * refused, and what remains must resolve to this origin with a single leading slash.
 */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || next.length > 2000 || !next.startsWith('/')) return '/'
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001F\u007F-\u009F\\]/.test(next)) return '/'
  try {
    const url = new URL(next, ORIGIN)
    return url.origin === ORIGIN && !url.pathname.startsWith('//') ? url.pathname + url.search + url.hash : '/'
  }
  catch {
    return '/'
  }
}
