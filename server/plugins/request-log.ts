import { randomUUID } from 'node:crypto'
import { getRequestHeader, setResponseHeader } from 'h3'

// One line per request with its id (echoed as X-Request-Id), and the duration histogram by route.
export default defineNitroPlugin((nitroApp) => {
  nitroApp.hooks.hook('request', (event) => {
    const given = getRequestHeader(event, 'x-request-id')
    event.context.requestId = given && /^[\w-]{1,64}$/.test(given) ? given : randomUUID()
    event.context.startedAt = performance.now()
    setResponseHeader(event, 'X-Request-Id', event.context.requestId)
  })
  nitroApp.hooks.hook('afterResponse', (event) => {
    const started = event.context.startedAt as number | undefined
    if (started === undefined) return
    const seconds = (performance.now() - started) / 1000
    const status = event.node.res.statusCode
    const route = routeLabel(event.path)
    httpDuration.observe({ route, method: event.method, status: String(status) }, seconds)
    if (route === '/api/health' || route === '/api/ready' || route === '/metrics') return
    log.info('request', { requestId: event.context.requestId, method: event.method, path: event.path.split('?')[0], status, ms: Math.round(seconds * 1000), client: event.context.clientAddress })
  })
})

// Route labels stay few: ids in paths would make a time series per conversation.
function routeLabel(path: string): string {
  const bare = path.split('?')[0] ?? '/'
  if (bare.startsWith('/_nuxt/')) return '/_nuxt'
  if (!bare.startsWith('/api/') && bare !== '/metrics' && bare !== '/ws') return 'page'
  return bare.replace(/\/[0-9a-f]{8}-[0-9a-f-]{27,}/gi, '/:id').replace(/\/\d+(?=\/|$)/g, '/:n')
}
