import { closeBackends, useBackends } from '../utils/backends'
import { useConfig } from '../utils/config'
import { log } from '../utils/log'

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
  useBackends().catch(error => log.error('backends: failed to open', { error }))
  nitroApp.hooks.hook('close', async () => {
    await closeBackends()
  })
})
