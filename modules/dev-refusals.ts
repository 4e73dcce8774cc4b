// `nuxt dev` only: two refusals at start, before anything is built.
// - A busy port: the CLI (listhen, get-port-please) quietly listens elsewhere (3000, 3001, …) while
//   NATTER_PUBLIC_URL, the WebSocket Origin allow-list and the links in emails still name the port
//   asked for. The CLI binds before it sets modules up, so the port it got is compared instead.
// - A data folder in use by another Natter: server/utils/data-lock.ts. The dev server's worker runs
//   in this process, so the lock taken here is the one the server plugin finds as its own.
import { resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { defineNuxtModule, useLogger } from '@nuxt/kit'
import { DataDirLockedError, lockDataDir, unlockDataDir, usesDataDir } from '../server/utils/data-lock'

/** The port `nuxt dev` listens on, read as the CLI reads it (@nuxt/cli 3.37, resolveListenOverrides). */
export function wantedPort(argv: string[], env: NodeJS.ProcessEnv, configured: number | undefined): number {
  const index = argv.findIndex(arg => arg === '--port' || arg === '-p' || arg.startsWith('--port='))
  const fromArgs = index < 0 ? undefined : argv[index]!.startsWith('--port=') ? argv[index]!.slice(7) : argv[index + 1]
  return Number(fromArgs || env.NUXT_PORT || env.NITRO_PORT || env.PORT || configured || 3000)
}

export default defineNuxtModule({
  meta: { name: 'natter-dev-refusals' },
  async setup(_options, nuxt) {
    if (!nuxt.options.dev || nuxt.options._prepare) return
    const logger = useLogger('natter')
    // A fork of the CLI listens on an internal port behind the first process: only the first
    // process, which binds the port asked for, checks it. The CLI calls `listen` before building.
    if (!process.env.__NUXT__FORK) {
      const port = wantedPort(process.argv, process.env, nuxt.options.devServer.port)
      nuxt.hook('listen', (_server, listener: { address?: { port?: number } }) => {
        const actual = listener.address?.port
        if (actual === undefined || actual === port) return
        logger.error(`Port ${port} is already in use (the dev server would have moved to ${actual}): stop what listens there, or pick another with PORT=…`)
        process.exit(1)
      })
    }
    if (!usesDataDir(process.env)) return
    const dataDir = resolve(process.env.NATTER_DATA_DIR || '.data')
    // The CLI restarts by starting a new process right after stopping the old one: its lock is
    // waited for a few seconds before it counts as another instance's.
    for (let waited = 0; ; waited += 250) {
      try {
        lockDataDir(dataDir)
        break
      }
      catch (error) {
        if (!(error instanceof DataDirLockedError)) throw error
        if (waited >= 5000) {
          logger.error(error.message)
          process.exit(1)
        }
        await sleep(250)
      }
    }
    nuxt.hook('close', () => unlockDataDir(dataDir))
  }
})
