import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { root } from '../support/paths'
import { freePort, startServer } from '../support/server'

// Issue 21: a busy PORT made `nuxt dev` move elsewhere without a word, and a second server on the
// same data folder started on the same embedded database. Both are refused with a clear message.

const cleanup: (() => unknown)[] = []
afterAll(async () => {
  for (const step of cleanup.reverse()) await step()
})

function tempDir(label: string) {
  const dir = mkdtempSync(join(tmpdir(), `natter-${label}-`))
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

async function occupy(): Promise<{ port: number, server: Server }> {
  const server = createServer()
  const port = await freePort()
  await new Promise<void>(resolve => server.listen(port, resolve))
  cleanup.push(() => new Promise(resolve => server.close(resolve)))
  return { port, server }
}

/** `nuxt dev` in the project, as `npm run dev` starts it; resolves with its exit code and output. */
function nuxtDev(env: Record<string, string>, timeoutMs = 90_000): Promise<{ code: number | null, output: string }> {
  const child = spawn('npx', ['nuxt', 'dev', '--no-fork'], {
    cwd: root,
    // Embedded backends even under the services project: never the shared database or topics.
    env: { ...process.env, NODE_ENV: 'development', DATABASE_URL: '', REDIS_URL: '', KAFKA_BROKERS: '', SMTP_URL: '', NATTER_BUILD_DIR: tempDir('dev-build'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true
  })
  let output = ''
  child.stdout.on('data', chunk => output += chunk)
  child.stderr.on('data', chunk => output += chunk)
  const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), timeoutMs)
  return new Promise(resolve => child.once('exit', (code) => {
    clearTimeout(timer)
    resolve({ code, output })
  }))
}

// The lock guards the embedded backends' files: these servers run on them under either project.
const embedded = { DATABASE_URL: '', REDIS_URL: '', KAFKA_BROKERS: '' }

describe('a second server on the same data folder', () => {
  it('is refused while the first runs, naming it; the first keeps the lock and gives it back on stop', async () => {
    const cwd = tempDir('shared')
    const first = await startServer(embedded, { cwd })
    const lock = join(cwd, '.data', 'natter.lock')
    expect(readFileSync(lock, 'utf8').trim()).toBe(String(first.process.pid))
    const refusal = await startServer(embedded, { cwd }).then(() => 'started', (error: Error) => error.message)
    expect(refusal).toMatch(/exited with 1/)
    expect(refusal).toContain(`in use by another Natter (pid ${first.process.pid})`)
    expect((await fetch(`${first.url}/api/health`)).status).toBe(200)
    await first.stop()
    expect(existsSync(lock)).toBe(false)
  }, 90_000)

  it('takes over the lock of a server that was killed', async () => {
    const cwd = tempDir('stale')
    const killed = await startServer(embedded, { cwd })
    await killed.stop('SIGKILL')
    expect(existsSync(join(cwd, '.data', 'natter.lock'))).toBe(true)
    const next = await startServer(embedded, { cwd })
    expect(readFileSync(join(cwd, '.data', 'natter.lock'), 'utf8').trim()).toBe(String(next.process.pid))
    await next.stop()
  }, 90_000)
})

describe('a busy PORT', () => {
  it('stops the production server with the port named', async () => {
    const { port } = await occupy()
    const refusal = await startServer({ PORT: String(port) }).then(() => 'started', (error: Error) => error.message)
    expect(refusal).toMatch(/exited with 1/)
    expect(refusal).toMatch(/cannot listen.*EADDRINUSE/s)
    expect(refusal).toContain(String(port))
  }, 60_000)

  it('stops `nuxt dev` before it builds anything, instead of moving to another port', async () => {
    const { port } = await occupy()
    const { code, output } = await nuxtDev({ PORT: String(port), NATTER_DATA_DIR: join(tempDir('dev-data'), '.data') })
    expect(code, output).toBe(1)
    expect(output).toContain(`Port ${port} is already in use`)
    expect(output).not.toMatch(/Local:\s+http/)
  }, 120_000)
})

describe('`nuxt dev` on a data folder in use', () => {
  it('is refused with the holder named', async () => {
    const dataDir = join(tempDir('dev-locked'), '.data')
    mkdirSync(dataDir, { recursive: true })
    // This test process is alive: as far as the lock says, it is the other Natter.
    writeFileSync(join(dataDir, 'natter.lock'), `${process.pid}\n`)
    const { code, output } = await nuxtDev({ PORT: String(await freePort()), NATTER_DATA_DIR: dataDir })
    expect(code, output).toBe(1)
    expect(output).toContain(`in use by another Natter (pid ${process.pid})`)
  }, 120_000)
})
