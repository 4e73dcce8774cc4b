import type { Server } from 'node:http'
import { closeBackends, useBackends } from '../utils/backends'
import { useConfig } from '../utils/config'
import { lockDataDir, usesDataDir } from '../utils/data-lock'
import { log } from '../utils/log'
import { startPipeline, stopAccepting, stopPipeline } from '../utils/realtime/pipeline'
import { flushOutgoingMail } from '../utils/outgoing-mail'

const START_WAIT_ON_CLOSE_MS = 5000
// Inside Kubernetes' grace period (45 s in k3s/base), with room for the preStop pause.
const SHUTDOWN_LIMIT_MS = Number(process.env.NITRO_SHUTDOWN_TIMEOUT || 25_000)

// One plugin owns start and stop, so the order is explicit: on SIGTERM the sockets close (1012)
// and the persister commits its batch before the backends they need are closed.
export default defineNitroPlugin((nitroApp) => {
  if (import.meta.prerender) return
  try {
    const config = useConfig()
    // A second server on the same embedded database would corrupt it: refused (server/utils/data-lock.ts).
    if (usesDataDir(process.env)) lockDataDir(config.dataDir)
  }
  catch (error) {
    // A misconfigured server must not start half-way: say what is wrong and stop.
    log.error(error instanceof Error ? error.message : String(error))
    process.exit(1)
  }

  let closing = false
  // A backend that is down at start is waited for, not fatal: /api/ready says which one, and the
  // pipeline starts by itself once it answers.
  const started = (async () => {
    for (let attempt = 0; !closing; attempt++) {
      try {
        await startPipeline(await useBackends())
        return
      }
      catch (error) {
        await stopPipeline()
        const wait = Math.min(30_000, 500 * 2 ** attempt)
        log.error('start failed, retrying', { error, retryInMs: wait })
        await new Promise(resolve => setTimeout(resolve, wait).unref())
      }
    }
  })()

  nitroApp.hooks.hook('close', async () => {
    const began = Date.now()
    closing = true
    // Never hang a shutdown on a start that is waiting for a dead backend.
    await Promise.race([started, new Promise(resolve => setTimeout(resolve, START_WAIT_ON_CLOSE_MS).unref())])
    await stopAccepting()
    await flushOutgoingMail()
    await closeBackends()
    log.info('stopped', { ms: Date.now() - began })
  })

  if (import.meta.dev) return
  // NOTE: Nitro's own SIGTERM handler destroys upgraded sockets before it runs the close hook, so
  // clients saw 1006 instead of 1012 and had no chance to hear "reconnect elsewhere". Plugins run
  // before node-server reads this variable, so the production server leaves signals to us.
  process.env.NITRO_SHUTDOWN_DISABLED = '1'
  let httpServer: Server | undefined
  nitroApp.hooks.hook('request', (event) => {
    httpServer ??= (event.node.req.socket as { server?: Server }).server
  })
  const shutdown = async (signal: string) => {
    log.info('shutting down', { signal })
    setTimeout(() => {
      log.error('shutdown took too long, exiting', { limitMs: SHUTDOWN_LIMIT_MS })
      process.exit(1)
    }, SHUTDOWN_LIMIT_MS).unref()
    httpServer?.close()
    httpServer?.closeIdleConnections()
    await nitroApp.hooks.callHook('close').catch(error => log.error('shutdown failed', { error }))
    process.exit(0)
  }
  process.once('SIGTERM', () => void shutdown('SIGTERM'))
  process.once('SIGINT', () => void shutdown('SIGINT'))
})
