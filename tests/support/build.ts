import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

import { root, serverEntry } from './paths'

const sources = ['app.vue', 'nuxt.config.ts', 'modules', 'public', 'pages', 'components', 'composables', 'layouts', 'middleware', 'stores', 'server', 'shared', 'plugins']

function newest(path: string): number {
  if (!existsSync(path)) return 0
  const stat = statSync(path)
  if (!stat.isDirectory()) return stat.mtimeMs
  return Math.max(0, ...readdirSync(path).map(name => newest(join(path, name))))
}

/** Server suites run the real production bundle; build it once when the sources are newer. */
export default function setup() {
  const bundle = serverEntry
  const built = existsSync(bundle) ? statSync(bundle).mtimeMs : 0
  const changed = Math.max(...sources.map(source => newest(join(root, source))))
  if (built >= changed) return
  console.log('[tests] sources changed since the last build: running nuxt build')
  execFileSync('npx', ['nuxt', 'build'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'], env: process.env })
}
