// `nuxt dev` only: http://localhost:3000/dev/mailbox lists the mail of the dev outbox (sign-in
// codes), newest first, instead of a line in the log. The route is added only in development, so
// the production build has neither the page nor its handler. It answers only requests from this
// machine: the dev server's worker sees every request through the CLI's proxy, so the address of
// the browser is written into a header here, where the CLI's server accepts the connection (the
// process running this module is the one that listens on PORT, in fork mode too), overwriting any
// copy the browser sent.
import type { IncomingMessage, Server } from 'node:http'
import { addServerHandler, createResolver, defineNuxtModule } from '@nuxt/kit'
import { DEV_PEER_HEADER } from './runtime/dev-peer'

export default defineNuxtModule({
  meta: { name: 'natter-dev-mailbox' },
  setup(_options, nuxt) {
    if (!nuxt.options.dev) return
    const { resolve } = createResolver(import.meta.url)
    addServerHandler({ route: '/dev/mailbox', method: 'get', handler: resolve('./runtime/dev-mailbox') })
    nuxt.hook('listen', (server: Server) => {
      server.prependListener('request', (request: IncomingMessage) => {
        request.headers[DEV_PEER_HEADER] = request.socket.remoteAddress ?? ''
      })
    })
  }
})
