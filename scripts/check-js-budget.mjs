// The JavaScript budget, checked after `nuxt build` (npm run test:e2e, CI): starts the built
// server, renders the first pages a newcomer sees, and adds up the JavaScript each one makes the
// browser load at once (<script src> and <link rel="modulepreload">), compressed as it is sent
// (brotli, as Nitro precompresses the assets). Chunks loaded later (dialogs, the other page) are
// not counted per page but in the total of all built JavaScript. Fails, naming the numbers,
// when a page or the total is over the budget. Usage: node scripts/check-js-budget.mjs
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { brotliCompressSync, constants } from 'node:zlib'

// KiB of brotli-compressed JavaScript. Measured 2026-12-02 (docs/performance.md, "First page"):
// the sign-in page loads 197.6 KiB at once (635.7 KiB uncompressed; zod and Vuetify are most of
// it), all built JavaScript is 223.7 KiB; the budgets leave about 6 % for growth. Raise one only
// with the reason in docs/performance.md. Raised once: message changes brought the full emoji set
// for the reaction palette's search (emojibase-data, 58.8 KiB brotli in a chunk of its own, loaded
// only when someone searches) and the change components; all built JavaScript is then 289.8 KiB.
const BUDGET = { page: 210, total: 305 }
// Signed out, `/` (the chat) redirects here: the sign-in page is every newcomer's first page.
const PAGES = ['/login']

const root = join(import.meta.dirname, '..')
const output = process.env.NATTER_BUILD_DIR ? join(process.env.NATTER_BUILD_DIR, '.output') : join(root, '.output')
const assets = join(output, 'public')

const brotliKiB = bytes => brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length / 1024
const kib = n => `${n.toFixed(1)} KiB`

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer().once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
}

const port = await freePort()
const cwd = mkdtempSync(join(tmpdir(), 'natter-js-budget-'))
const server = spawn(process.execPath, [join(output, 'server/index.mjs')], {
  cwd,
  env: {
    PATH: process.env.PATH,
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    NATTER_PUBLIC_URL: `http://127.0.0.1:${port}`,
    NATTER_SESSION_SECRET: 'js-budget-check-secret-that-is-long-enough-0123456789',
    NATTER_DEV_MAIL: '1',
    NATTER_LOG_LEVEL: 'warn'
  },
  stdio: ['ignore', 'ignore', 'inherit']
})
let failed = false
try {
  const base = `http://127.0.0.1:${port}`
  for (let start = Date.now(); ; await new Promise(resolve => setTimeout(resolve, 200))) {
    if (server.exitCode !== null) throw new Error(`the built server exited with ${server.exitCode}`)
    if (await fetch(`${base}/api/health`).then(r => r.ok, () => false)) break
    if (Date.now() - start > 60_000) throw new Error('the built server did not answer within 60 s')
  }
  for (const page of PAGES) {
    const html = await (await fetch(base + page)).text()
    const urls = new Set([
      ...[...html.matchAll(/<script[^>]*\bsrc="([^"]+\.js)"/g)].map(m => m[1]),
      ...[...html.matchAll(/<link[^>]*\brel="modulepreload"[^>]*\bhref="([^"]+\.js)"/g)].map(m => m[1])
    ])
    let raw = 0
    let br = 0
    for (const url of urls) {
      const bytes = readFileSync(join(assets, new URL(url, base).pathname))
      raw += bytes.length / 1024
      br += brotliKiB(bytes)
    }
    const over = BUDGET.page && br > BUDGET.page
    failed ||= Boolean(over)
    console.log(`${page}: ${urls.size} scripts, ${kib(raw)} (${kib(br)} brotli) of JavaScript at once; budget ${kib(BUDGET.page)} brotli${over ? ' — OVER' : ''}`)
  }
  const files = readdirSync(join(assets, '_nuxt')).filter(name => name.endsWith('.js'))
  let raw = 0
  let br = 0
  for (const name of files) {
    const bytes = readFileSync(join(assets, '_nuxt', name))
    raw += bytes.length / 1024
    br += brotliKiB(bytes)
  }
  const over = BUDGET.total && br > BUDGET.total
  failed ||= Boolean(over)
  console.log(`all: ${files.length} scripts, ${kib(raw)} (${kib(br)} brotli); budget ${kib(BUDGET.total)} brotli${over ? ' — OVER' : ''}`)
}
finally {
  server.kill('SIGTERM')
  await new Promise(resolve => server.once('exit', resolve))
  rmSync(cwd, { recursive: true, force: true })
}
if (failed) {
  console.error('JavaScript over budget: see what grew (npx nuxt analyze) before raising the budget.')
  process.exit(1)
}
