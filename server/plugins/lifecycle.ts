import { closeBackends, useBackends } from '../utils/backends'
import { useConfig } from '../utils/config'
import { log } from '../utils/log'
import { startMessaging, stopMessaging } from '../utils/messaging'
import { flushOutgoingMail } from '../utils/outgoing-mail'

// One plugin owns start and stop, so the order is explicit: on SIGTERM the sockets close (1012)
// and the persister commits its batch before the backends they need are closed.
export default defineNitroPlugin((nitroApp) => {
  if (import.meta.prerender) return
  try {
    useConfig()
  }
  catch (error) {
    // A misconfigured server must not start half-way: say what is wrong and stop.
    log.error(error instanceof Error ? error.message : String(error))
    process.exit(1)
  }
  const started = useBackends()
    .then(startMessaging)
    .catch(error => log.error('start failed', { error }))
  nitroApp.hooks.hook('close', async () => {
    const began = Date.now()
    await started
    await stopMessaging()
    await flushOutgoingMail()
    await closeBackends()
    log.info('stopped', { ms: Date.now() - began })
  })
})
