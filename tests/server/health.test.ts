import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { realServices } from '../support/backends'
import { startServer, type TestServer } from '../support/server'

describe('health and readiness', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startServer()
  })
  afterAll(() => server.stop())

  it('answers liveness', async () => {
    const response = await fetch(`${server.url}/api/health`)
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ status: 'ok' })
  })

  it('names each backend, its mode and that it answers', async () => {
    const response = await fetch(`${server.url}/api/ready`)
    expect(response.status).toBe(200)
    const body = await response.json()
    expect(body.parts).toEqual({
      database: { mode: realServices ? 'postgres' : 'pglite', ok: true },
      store: { mode: realServices ? 'redis' : 'in-process', ok: true },
      bus: { mode: realServices ? 'kafka' : 'in-process', ok: true },
      mailer: { mode: 'log', ok: true },
      pipeline: { mode: 'messaging', ok: true }
    })
  })

  it('logs which implementation each seam uses, once, as JSON lines', () => {
    const lines = server.logs.join('').split('\n').filter(line => line.startsWith('{')).map(line => JSON.parse(line))
    const picks = lines.map(line => line.msg as string).filter(msg => /^(database|store|bus|mail): [a-z-]+$/.test(msg))
    expect(picks).toEqual([
      `database: ${realServices ? 'postgres' : 'pglite'}`,
      `store: ${realServices ? 'redis' : 'in-process'}`,
      `bus: ${realServices ? 'kafka' : 'in-process'}`,
      'mail: log'
    ])
    for (const line of lines) expect(line).toHaveProperty('time')
  })

  it('renders the entry page server-side, styled by Vuetify', async () => {
    const response = await fetch(server.url)
    expect(response.status).toBe(200)
    const html = await response.text()
    expect(html).toContain('Natter')
    expect(html).toMatch(/class="v-application/)
  })

  it('refuses to start in production without a session secret, saying how to make one', async () => {
    await expect(startServer({ NATTER_SESSION_SECRET: '' })).rejects.toThrow(/NATTER_SESSION_SECRET is required in production.*openssl rand/)
  })
})

// Only the real services can be stopped under a running server; the embedded ones live inside it.
describe.runIf(realServices)('readiness with a backend down', () => {
  let server: TestServer
  beforeAll(async () => {
    // Redis on a port where nothing listens: the server runs but must not call itself ready.
    server = await startServer({ REDIS_URL: 'redis://127.0.0.1:1' }, { waitForReady: false })
  })
  afterAll(() => server.stop())

  it('answers 503 naming the store', async () => {
    const response = await fetch(`${server.url}/api/ready`)
    expect(response.status).toBe(503)
    const body = await response.json()
    expect(body.message).toMatch(/store/)
    expect(body.data.parts.store).toMatchObject({ mode: 'redis', ok: false })
    expect(body.data.parts.database).toMatchObject({ mode: 'postgres', ok: true })
  })
})
