import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { useChatServer } from '../support/chat-server'
import { Client } from '../support/client'
import type { Person } from '../support/people'
import { freshGet, head, rawRequest, stall } from '../support/raw-http'
import { peakResident } from '../support/attack'
import { residentMiB, startServer, type TestServer } from '../support/server'

const MiB = 1024 * 1024

describe('request bodies are never buffered past the limit', () => {
  const chat = useChatServer()
  let ada: Person
  let port: number
  let signedIn: Record<string, string>
  let anonymous: Record<string, string>

  beforeAll(async () => {
    ada = await chat.person('ada')
    port = chat.server.port
    const auth = { 'Origin': chat.server.origin, 'Content-Type': 'application/json', 'X-Forwarded-For': '10.250.0.1' }
    signedIn = { ...auth, 'Cookie': ada.client.cookieHeader(), 'X-CSRF-Token': ada.client.csrf! }
    const stranger = new Client(chat.server.url)
    await stranger.get('/api/auth/csrf')
    anonymous = { ...auth, 'Cookie': stranger.cookieHeader(), 'X-CSRF-Token': stranger.csrf! }
  })

  it('answers five parallel 100 MB chunked bodies with 413 and closes them, memory flat', async () => {
    const pid = chat.server.process.pid!
    // A request first, so the baseline includes what the first request warms up.
    expect((await ada.client.get('/api/me')).status).toBe(200)
    const baseline = residentMiB(pid)
    let answers: Awaited<ReturnType<typeof rawRequest>>[] = []
    const peak = await peakResident(pid, async () => {
      answers = await Promise.all(Array.from({ length: 5 }, () => rawRequest({
        port,
        head: head('PATCH', '/api/me', port, { ...signedIn, 'Transfer-Encoding': 'chunked' }),
        chunkedBytes: 100 * MiB
      })))
    })
    expect(peak - baseline).toBeLessThan(50)
    for (const answer of answers) {
      expect(answer.status).toBe(413)
      expect(answer.text).toContain('"code":"body_too_large"')
      // The server hung up: the client could not send its 100 MB.
      expect(answer.closedByServer).toBe(true)
      expect(answer.sent).toBeLessThan(20 * MiB)
    }
    expect((await ada.client.get('/api/me')).status).toBe(200)
  })

  it('refuses a body declared larger than 16 KiB before a byte of it is sent, and hangs up', async () => {
    const answer = await rawRequest({ port, head: head('PATCH', '/api/me', port, { ...signedIn, 'Content-Length': String(100 * MiB) }), timeoutMs: 5000 })
    expect(answer.status).toBe(413)
    expect(answer.answeredInMs).toBeLessThan(2000)
    expect(answer.closedByServer).toBe(true)
  })

  it('checks the session before reading a body: a stranger\'s stalled body gets 401 at once', async () => {
    const answer = await rawRequest({
      port,
      head: head('PATCH', '/api/me', port, { ...anonymous, 'Content-Length': '1000' }),
      then: '{"displayName":"st',
      timeoutMs: 5000
    })
    expect(answer.status).toBe(401)
    expect(answer.answeredInMs).toBeLessThan(2000)
    expect(answer.closedByServer).toBe(true)
  })

  it('does not drain a body nobody reads: the answer comes and the connection closes', async () => {
    const answer = await rawRequest({
      port,
      head: head('POST', '/api/auth/logout', port, { ...anonymous, 'Transfer-Encoding': 'chunked' }),
      chunkedBytes: 100 * MiB
    })
    expect(answer.status).toBe(204)
    expect(answer.closedByServer).toBe(true)
    expect(answer.sent).toBeLessThan(20 * MiB)
  })

  it('still reads a body within the limit, on a connection that stays open', async () => {
    const renamed = await ada.client.request('PATCH', '/api/me', { displayName: 'Ada Lovelace' })
    expect(renamed.status).toBe(200)
    expect(renamed.body.user.displayName).toBe('Ada Lovelace')
    expect(renamed.headers.get('connection')).not.toBe('close')
  })
})

describe('half-open connections from one address, with 1,024 open files', () => {
  let server: TestServer
  beforeAll(async () => {
    // Exposed directly (no proxy), with the open-file limit the attack was made against.
    server = await startServer({ NATTER_HEADERS_TIMEOUT_MS: '3000' }, { openFiles: 1024 })
  })
  afterAll(() => server.stop())

  it('keeps answering others fast, holds at most the per-address cap, and closes the rest by the timeout', async () => {
    const pid = server.process.pid!
    expect((await freshGet(`${server.url}/api/health`)).status).toBe(200)
    const baseline = residentMiB(pid)
    let opened = 0
    let stalls: Awaited<ReturnType<typeof stall>>[] = []
    const peak = await peakResident(pid, async () => {
      // Half a request line, or a request line and one header, then nothing: from 127.0.0.2.
      stalls = await Promise.all(Array.from({ length: 1000 }, (_, i) => stall(server.port, '127.0.0.2', i % 2 ? 'GET /api/health HT' : 'GET /api/health HTTP/1.1\r\nHost: x\r\n')))
      opened = performance.now()
      // Someone else, on a new connection each time, from 127.0.0.1.
      for (let i = 0; i < 5; i++) {
        const answer = await freshGet(`${server.url}/api/health`, 2000)
        expect(answer.status).toBe(200)
        expect(answer.ms).toBeLessThan(1000)
      }
    })
    expect(peak - baseline).toBeLessThan(50)
    // Over the per-address cap (128) a connection is closed as it arrives; the rest wait for
    // the header timeout (3 s here, checked every second).
    await new Promise(resolve => setTimeout(resolve, 500))
    expect(stalls.filter(({ socket }) => !socket.destroyed).length).toBe(128)
    const closedAt = await Promise.all(stalls.map(({ closed }) => closed))
    expect(Math.max(...closedAt) - opened).toBeLessThan(3000 + 1000 + 1500)
    // The total fits the open-file limit, and the server says so.
    const limits = server.logs.join('').split('\n').filter(line => line.includes('"msg":"connection limits"')).map(line => JSON.parse(line))
    expect(limits[0]).toMatchObject({ maxConnections: 1024 - 256, maxConnectionsPerIp: 128, headersTimeoutMs: 3000 })
  })
})

describe('behind a proxy', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startServer({ NATTER_TRUST_PROXY: '1', NATTER_HEADERS_TIMEOUT_MS: '3000' })
  })
  afterAll(() => server.stop())

  it('caps no address, since every connection comes from the proxy, but still times them out', async () => {
    const stalls = await Promise.all(Array.from({ length: 300 }, () => stall(server.port, '127.0.0.2', 'GET / HTTP/1.1\r\n')))
    const opened = performance.now()
    await new Promise(resolve => setTimeout(resolve, 500))
    expect(stalls.filter(({ socket }) => !socket.destroyed).length).toBe(300)
    const closedAt = await Promise.all(stalls.map(({ closed }) => closed))
    expect(Math.max(...closedAt) - opened).toBeLessThan(3000 + 1000 + 1500)
  })
})
