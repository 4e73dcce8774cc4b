import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { networkInterfaces, tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { realServices } from '../support/backends'
import { Client } from '../support/client'
import { root } from '../support/paths'
import { escapedErrors, freePort } from '../support/server'

// Issue 21 against `nuxt dev` itself (no fork, its own build folder and data folder): the dev
// mailbox, and sockets reset through the dev server's proxy, which used to restart Nuxt on
// `[unhandledRejection] read ECONNRESET`. Starting it takes a minute or two on a busy machine.

const lan = Object.values(networkInterfaces()).flat().find(address => address && address.family === 'IPv4' && !address.internal)?.address
let dev: ChildProcess
let output = ''
let port = 0
const dirs: string[] = []

beforeAll(async () => {
  if (realServices) return
  port = await freePort()
  const tmp = (label: string) => {
    const dir = mkdtempSync(join(tmpdir(), `natter-dev-${label}-`))
    dirs.push(dir)
    return dir
  }
  dev = spawn('npx', ['nuxt', 'dev', '--no-fork', '--host', '0.0.0.0', '--port', String(port)], {
    cwd: root,
    env: {
      ...process.env,
      NODE_ENV: 'development',
      // Embedded backends even under the services project: never the shared database or topics.
      DATABASE_URL: '',
      REDIS_URL: '',
      KAFKA_BROKERS: '',
      SMTP_URL: '',
      NATTER_BUILD_DIR: tmp('build'),
      NATTER_DATA_DIR: join(tmp('data'), '.data'),
      NATTER_PUBLIC_URL: `http://127.0.0.1:${port}`
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true
  })
  dev.stdout!.on('data', chunk => output += chunk)
  dev.stderr!.on('data', chunk => output += chunk)
  const deadline = Date.now() + 240_000
  while (!(await fetch(`http://127.0.0.1:${port}/api/health`).then(r => r.ok, () => false))) {
    if (dev.exitCode !== null) throw new Error(`nuxt dev exited with ${dev.exitCode}:\n${output}`)
    if (Date.now() > deadline) throw new Error(`nuxt dev not ready within 240 s:\n${output}`)
    await new Promise(resolve => setTimeout(resolve, 500))
  }
}, 250_000)

afterAll(async () => {
  if (dev?.exitCode === null) {
    const exited = new Promise(resolve => dev.once('exit', resolve))
    process.kill(-dev.pid!, 'SIGTERM')
    await exited
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  expect(escapedErrors([output])).toEqual([])
  expect(output).not.toContain('Restarting Nuxt')
}, 30_000)

async function signIn(): Promise<Client> {
  const client = new Client(`http://127.0.0.1:${port}`)
  const email = `dev-${randomBytes(4).toString('hex')}@example.org`
  expect((await client.post('/api/auth/request-otp', { email })).status).toBe(202)
  const mailbox = await (await fetch(`http://127.0.0.1:${port}/dev/mailbox`)).text()
  const code = new RegExp(`to ${email.replace(/\./g, '\\.')}</div><div class="subject">(\\d+) is your Natter sign-in code`).exec(mailbox)?.[1]
  expect(code, mailbox).toBeDefined()
  expect((await client.post('/api/auth/verify-otp', { email, otp: code })).status).toBe(200)
  return client
}

function rawSocket(host: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host }, () => resolve(socket))
    socket.once('error', reject)
  })
}

// nuxt dev always runs the embedded backends here (below), so the services project would only
// repeat the unit project's run, minutes of compiling included: it runs once, under `npm test`.
describe.skipIf(realServices)('the dev mailbox', () => {
  it('lists the sign-in codes the dev server sent, on this machine', async () => {
    await signIn()
  }, 120_000)

  // Needs a second address of this machine to come from; a machine with loopback only has none to try.
  it.skipIf(!lan)('is refused from another address, whatever the request claims', async () => {
    for (const headers of [{}, { 'x-natter-dev-peer': '127.0.0.1', 'x-forwarded-for': '127.0.0.1' }] as Record<string, string>[]) {
      const response = await fetch(`http://${lan}:${port}/dev/mailbox`, { headers })
      expect(response.status).toBe(403)
      expect(await response.text()).not.toContain('is your Natter sign-in code')
    }
  }, 60_000)
})

describe.skipIf(realServices)('sockets reset through the dev server', () => {
  it('mid-handshake and mid-frame leave no unhandled rejection and no restart', async () => {
    const client = await signIn()
    const head = 'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n'
      + `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nOrigin: ${client.origin}\r\nCookie: ${client.cookieHeader()}\r\n\r\n`
    for (let i = 0; i < 5; i++) {
      const early = await rawSocket('127.0.0.1')
      early.on('error', () => {})
      early.write(head)
      early.resetAndDestroy()

      const open = await rawSocket('127.0.0.1')
      open.on('error', () => {})
      const upgraded = new Promise<string>(resolve => open.once('data', chunk => resolve(String(chunk))))
      open.write(head)
      expect(await upgraded).toMatch(/^HTTP\/1.1 101/)
      // A masked text frame announcing 100 bytes, cut after a few.
      open.write(Buffer.from([0x81, 0x80 | 100, 1, 2, 3, 4]))
      open.write('partial')
      const closed = new Promise(resolve => open.once('close', resolve))
      open.resetAndDestroy()
      await closed
    }
    // The dev server is still the same one: it answers, and nothing escaped or restarted.
    expect((await fetch(`http://127.0.0.1:${port}/api/health`)).status).toBe(200)
    expect(escapedErrors([output])).toEqual([])
    expect(output).not.toContain('Restarting Nuxt')
  }, 90_000)
})
