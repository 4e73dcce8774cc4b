// The production server: Nitro's node-server entry (nitropack 2.13,
// dist/presets/node/runtime/node-server.mjs) with the HTTP edge's limits set where only the entry
// can set them. Nitro creates the http.Server there with no options, and nothing a plugin can
// reach exists before the first connection, so nuxt.config.ts names this file as the entry of
// the node-server build (dev and prerender keep Nitro's own). What differs from Nitro's: the
// timeouts (headers, whole request, keep-alive), the connection caps, a connection ended after
// an answer that left its request's body unread, Node's own error answers in JSON with the
// security headers, clean cookies on WebSocket upgrades, and the "listening" line as JSON. TLS
// and unix sockets are left out: TLS ends at the proxy (Traefik).
import '#nitro-internal-pollyfills'
import { Server } from 'node:http'
import wsAdapter from 'crossws/adapters/node'
import destr from 'destr'
import { toNodeListener } from 'h3'
import { useNitroApp } from 'nitropack/runtime'
import { setupGracefulShutdown, startScheduleRunner, trapUnhandledNodeErrors } from 'nitropack/runtime/internal/index'
import { useConfig } from './utils/config'
import { answerClientError, capConnections, closeAfterUnreadBody } from './utils/connections'
import { cleanCookieHeader } from './utils/cookies'
import { log } from './utils/log'

// Runs the plugins first: the configuration is checked and the log is JSON from here on.
const nitroApp = useNitroApp()
const { limits, proxyHops } = useConfig()

const handle = toNodeListener(nitroApp.h3App)
const server = new Server({
  headersTimeout: limits.headersTimeoutMs,
  requestTimeout: limits.requestTimeoutMs,
  keepAliveTimeout: limits.keepAliveTimeoutMs,
  // Node checks the two timeouts above only this often (30 s by default).
  connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs)
}, (request, response) => {
  closeAfterUnreadBody(request, response)
  return handle(request, response)
})
capConnections(server, limits, proxyHops === 0)
server.on('clientError', answerClientError)

const givenPort = destr<number | undefined>(process.env.NITRO_PORT || process.env.PORT)
const port = givenPort === 0 ? 0 : givenPort || 3000
const host = process.env.NITRO_HOST || process.env.HOST
server.listen({ port, host }, () => {
  const address = server.address()
  if (!address || typeof address === 'string') return
  log.info('listening', { url: `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}` })
})
server.on('error', (error) => {
  log.error('cannot listen', { error, port, host })
  process.exit(1)
})

trapUnhandledNodeErrors()
setupGracefulShutdown(server, nitroApp)
if (import.meta._websocket) {
  const { handleUpgrade } = wsAdapter(nitroApp.h3App.websocket)
  // An upgrade skips h3's request hooks: its cookies are cleaned here (server/utils/cookies.ts).
  server.on('upgrade', (request, socket, head) => {
    cleanCookieHeader(request.headers)
    // Node takes its own error listener off a socket it hands to 'upgrade', and crossws adds one
    // only once the upgrade hook has answered: a client resetting in between (a tab closed
    // mid-handshake) would be an uncaught exception. The promise is handled for the same reason.
    socket.on('error', (error: NodeJS.ErrnoException) => log.debug('upgrade socket error', { code: error.code }))
    handleUpgrade(request, socket, head).catch((error: unknown) => {
      socket.destroy()
      log.warn('websocket upgrade failed', { error })
    })
  })
}
if (import.meta._tasks) {
  startScheduleRunner()
}

export default {}
