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

/** Only a path on this site: `//evil.example` and absolute URLs fall back to `/`. */
export function safeNext(next: unknown): string {
  return typeof next === 'string' && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') ? next : '/'
}
