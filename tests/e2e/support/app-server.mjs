// Runs the built app (`node .output/server/index.mjs`, or under NATTER_BUILD_DIR when set, as
// nuxt.config.ts does) for one Playwright run on a fresh data folder, and removes that folder once
// the app has shut down. The rest of the environment comes from playwright.config.ts.
//
// Given E2E_DATA_DIR, the app runs inside this very process on that folder and leaves it in
// place: a spec can then SIGKILL this process (there is no child to orphan) and start it again on
// the same data (tests/e2e/support/servers.ts).
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const root = join(import.meta.dirname, '../../..')
const output = process.env.NATTER_BUILD_DIR ? join(resolve(root, process.env.NATTER_BUILD_DIR), '.output') : join(root, '.output')
const entry = join(output, 'server/index.mjs')
if (!existsSync(entry)) {
  console.error(`app server: ${entry} is missing; run \`npx nuxt build\` first (or \`npm run test:e2e\`).`)
  process.exit(1)
}

// Each browser context of a spec signs in from its own X-Forwarded-For address, so the sign-in
// throttle (20 codes per address and hour) counts per simulated person, not for the whole run.
process.env.NATTER_TRUST_PROXY ??= '1'

if (process.env.E2E_DATA_DIR) {
  process.env.NATTER_DATA_DIR = process.env.E2E_DATA_DIR
  await import(pathToFileURL(entry).href)
}
else {
  runOnFreshData()
}

function runOnFreshData() {
  const dataDir = mkdtempSync(join(tmpdir(), 'natter-e2e-'))
  const app = spawn(process.execPath, [entry], {
    env: { ...process.env, NATTER_DATA_DIR: dataDir },
    stdio: 'inherit'
  })

  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      if (app.exitCode === null) app.kill(signal)
    })
  }

  app.on('exit', (code, signal) => {
    rmSync(dataDir, { recursive: true, force: true })
    process.exit(code ?? (signal ? 1 : 0))
  })
}
