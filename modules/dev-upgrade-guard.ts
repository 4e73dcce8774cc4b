// `nuxt dev` only. The dev server (@nuxt/cli 3.37) hands every WebSocket upgrade to Nitro's dev
// server (`nuxt.server.upgrade`), which proxies it to the worker with httpxy and returns httpxy's
// promise; the CLI drops that promise. httpxy rejects it when the browser's socket errors before it
// closes (a chat tab closed or reloaded mid-frame: `read ECONNRESET`), and the CLI's fork answers
// any unhandled rejection by restarting Nuxt (7–72 s without a server). Here the promise is
// handled: the socket is destroyed and the reset is logged as what it is, a client going away.
import type { Duplex } from 'node:stream'
import { defineNuxtModule, useLogger } from '@nuxt/kit'

type Upgrade = (request: unknown, socket: Duplex, head: Buffer) => unknown

export default defineNuxtModule({
  meta: { name: 'natter-dev-upgrade-guard' },
  setup(_options, nuxt) {
    if (!nuxt.options.dev) return
    const logger = useLogger('natter')
    // The CLI reads nuxt.server at each upgrade and calls the `listen` hook after adding its
    // upgrade listener: wrapping it here covers every upgrade of this Nuxt instance.
    nuxt.hook('listen', () => {
      const server = nuxt.server as { upgrade?: Upgrade, natterGuarded?: boolean } | undefined
      if (!server?.upgrade || server.natterGuarded) return
      const upgrade = server.upgrade.bind(server)
      server.upgrade = (request, socket, head) => {
        // An error on the socket after the proxy let go of it must not be an uncaught exception.
        socket.on('error', () => {})
        return Promise.resolve()
          .then(() => upgrade(request, socket, head))
          .catch((error: NodeJS.ErrnoException) => {
            socket.destroy()
            if (error?.code !== 'ECONNRESET' && error?.code !== 'EPIPE') logger.warn('WebSocket upgrade failed:', error)
          })
      }
      server.natterGuarded = true
    })
  }
})
