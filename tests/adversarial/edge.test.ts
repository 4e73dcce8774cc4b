import { randomUUID } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { realServices } from '../support/backends'
import { Client } from '../support/client'
import { startMailCatcher, type MailCatcher } from '../support/mail-catcher'
import { head, rawRequest } from '../support/raw-http'
import { startServer, type TestServer } from '../support/server'

// The public origin is a name, as in production, so cookies planted by a sibling domain
// (Domain=natter.test) can be told apart from the host's own.
const PUBLIC = 'http://chat.natter.test'
const noisy = pathToFileURL(join(import.meta.dirname, '../support/noisy.mjs')).href
// Distinct per run: with real Redis the sign-in throttles' counters outlive a run.
const runAddress = () => `10.${Math.floor(Math.random() * 200) + 20}.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}`

let server: TestServer
let mail: MailCatcher
let ada: Client

/** A browser-like client on this server, signed in from its own (proxied) address. */
async function signedIn(label: string): Promise<Client> {
  const client = new Client(server.url, PUBLIC)
  const address = runAddress()
  const request = client.request.bind(client)
  client.request = (method, path, body, options = {}) => request(method, path, body, { ...options, headers: { 'x-forwarded-for': address, ...options.headers } })
  await client.signIn(`${label}-${randomUUID().slice(0, 8)}@example.org`, mail)
  return client
}

function page(path: string, cookie?: string, headers: Record<string, string> = {}) {
  return fetch(server.url + path, { redirect: 'manual', headers: { accept: 'text/html', ...(cookie && { cookie }), ...headers } })
}

beforeAll(async () => {
  mail = await startMailCatcher()
  server = await startServer({ SMTP_URL: mail.url, NATTER_TRUST_PROXY: '1', NATTER_PUBLIC_URL: PUBLIC }, { nodeArgs: ['--import', noisy], injectsEscapes: true })
  ada = await signedIn('ada')
})
afterAll(async () => {
  await server.stop()
  await mail.close()
})

describe('malformed cookies, as a sibling domain can plant them', () => {
  const planted: Record<string, string> = {
    'bad percent-encoding': '%E0%A4%A',
    'a huge value': 'x'.repeat(3900),
    'JSON where a word belongs': '%7B%22__proto__%22%3A1%7D'
  }

  for (const name of ['natter_theme', 'natter_csrf', 'natter_session']) {
    for (const [what, value] of Object.entries(planted)) {
      it(`${name} with ${what}: pages and the API answer as if it were absent`, async () => {
        const own = ada.cookieHeader()
        // Before and after the real cookies: browsers order them by path length, then age.
        for (const cookie of [`${own}; ${name}=${value}`, `${name}=${value}; ${own}`]) {
          expect((await page('/', cookie)).status).toBe(200)
          expect((await page('/api/me', cookie)).status).toBe(200)
        }
        const alone = `${name}=${value}`
        const home = await page('/', alone)
        expect(home.status).toBe(302)
        expect(home.headers.get('location')).toMatch(/^\/login/)
        expect((await page('/login', alone)).status).toBe(200)
        expect((await page('/api/me', alone)).status).toBe(401)
      })
    }
  }

  it('nor do they change a WebSocket upgrade: the good session opens it, a planted one alone is signed out', async () => {
    const upgrade = (cookie: string) => rawRequest({
      port: server.port,
      head: head('GET', '/ws', server.port, { 'Connection': 'Upgrade', 'Upgrade': 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Origin': PUBLIC, 'Cookie': cookie }),
      timeoutMs: 1000
    })
    expect((await upgrade(`natter_session=%E0%A4%A; ${ada.cookieHeader()}`)).status).toBe(101)
    expect((await upgrade('natter_session=%E0%A4%A')).status).toBe(401)
  })

  it('tells the browser to drop the planted cookie, without signing the person out', async () => {
    const answer = await page('/', `${ada.cookieHeader()}; natter_session=%E0%A4%A; natter_theme=%E0%A4%A`)
    expect(answer.status).toBe(200)
    const deletions = answer.headers.getSetCookie().filter(cookie => /Max-Age=0/i.test(cookie))
    // A sibling can only have scoped it to a parent domain: deleted there...
    expect(deletions).toContainEqual(expect.stringMatching(/^natter_session=; Path=\/; Domain=natter\.test;/))
    // ...but never the host's own session cookie, which came too and is the good one.
    expect(deletions.filter(cookie => cookie.startsWith('natter_session=') && !/Domain=/i.test(cookie))).toEqual([])
    // The theme had no good value: every copy goes.
    expect(deletions).toContainEqual(expect.stringMatching(/^natter_theme=; Path=\/; Max-Age=0/))
    expect((await page('/api/me', ada.cookieHeader())).status).toBe(200)
  })
})

describe('where /login sends a signed-in person next', () => {
  const offSite = ['/%09/evil.example', '/%0A/evil.example', '/%0D%0A/evil.example', '//evil.example', '/%5Cevil.example', '/%5C%5Cevil.example',
    '/\\evil.example', '%2F%2Fevil.example', 'https://evil.example/', '/.//evil.example', '/%2e//evil.example', 'javascript:alert(1)', '/%00/evil.example']

  for (const next of offSite) {
    it(`${next} leads to /`, async () => {
      const answer = await page(`/login?next=${next}`, ada.cookieHeader())
      expect(answer.status).toBe(302)
      expect(answer.headers.get('location')).toBe('/')
    })
  }

  it('keeps a path on this site, with its query', async () => {
    const answer = await page(`/login?next=${encodeURIComponent('/?with=someone')}`, ada.cookieHeader())
    expect(answer.status).toBe(302)
    expect(answer.headers.get('location')).toBe('/?with=someone')
  })
})

describe('security headers on every response', () => {
  it('on the built assets, pages, API answers and the server\'s own refusals', async () => {
    const html = await (await page('/login')).text()
    const asset = /\/_nuxt\/[\w.-]+\.js/.exec(html)?.[0]
    expect(asset).toBeDefined()
    const answers = [
      await fetch(server.url + asset!),
      await fetch(`${server.url}/_nuxt/missing.js`),
      await page('/login'),
      await fetch(`${server.url}/api/health`),
      await fetch(`${server.url}/api/nowhere`),
      await fetch(`${server.url}/api/auth/logout`, { method: 'POST' })
    ]
    expect(answers.map(answer => answer.status)).toEqual([200, 404, 200, 200, 404, 403])
    for (const answer of answers) {
      expect(answer.headers.get('x-content-type-options')).toBe('nosniff')
      expect(answer.headers.get('x-frame-options')).toBe('DENY')
      expect(answer.headers.get('referrer-policy')).toBe('same-origin')
      expect(answer.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/)
    }
    // What Node answers itself: a request it cannot parse, headers over 16 KiB.
    const raw = [
      await rawRequest({ port: server.port, head: 'NOT A REQUEST', timeoutMs: 5000 }),
      await rawRequest({ port: server.port, head: head('GET', '/api/health', server.port, { 'X-Filler': 'x'.repeat(20_000) }), timeoutMs: 5000 })
    ]
    expect(raw.map(answer => answer.status)).toEqual([400, 431])
    for (const answer of raw) {
      expect(answer.text).toMatch(/\r\nX-Content-Type-Options: nosniff\r\n/i)
      expect(answer.text).toMatch(/\r\nContent-Security-Policy: [^\r]*frame-ancestors 'none'/i)
      expect(JSON.parse(answer.text.split('\r\n\r\n')[1]!)).toMatchObject({ statusCode: answer.status, data: { code: expect.any(String) } })
    }
  })

  it('allows style elements only with the page\'s nonce, and every one the page has carries it', async () => {
    const answer = await page('/', ada.cookieHeader())
    const policy = answer.headers.get('content-security-policy')!
    const nonce = /script-src 'self' 'nonce-([^']+)'/.exec(policy)?.[1]
    expect(nonce).toBeDefined()
    expect(policy).toContain(`style-src 'self' 'nonce-${nonce}'`)
    expect(/style-src [^;]*unsafe-inline/.test(policy)).toBe(false)
    const html = await answer.text()
    const tags = html.match(/<(style|script)\b[^>]*>/g) ?? []
    expect(tags.filter(tag => tag.startsWith('<style')).length).toBeGreaterThan(0)
    for (const tag of tags) expect(tag).toContain(`nonce="${nonce}"`)
  })
})

describe('the client address behind a proxy', () => {
  it('is the entry the proxy added (the rightmost), not what the client wrote to its left', async () => {
    const client = new Client(server.url, PUBLIC)
    await client.get('/api/auth/csrf')
    const real = runAddress()
    const answers: number[] = []
    // The per-address limit is 20 codes an hour: a client choosing its own address never meets it.
    for (let i = 0; i < 21 && !answers.includes(429); i++) {
      const spoofed = `203.0.113.${i}`
      const answer = await client.request('POST', '/api/auth/request-otp', { email: `x${i}-${randomUUID().slice(0, 6)}@example.org` }, { headers: { 'x-forwarded-for': `${spoofed}, ${real}` } })
      answers.push(answer.status)
    }
    expect(answers).toContain(429)
    const lines = server.logs.join('').split('\n').filter(line => line.includes('"msg":"request"') && line.includes('request-otp')).map(line => JSON.parse(line))
    expect(lines.at(-1)).toMatchObject({ client: real })
  })

  it('is the one the N-th proxy added with NATTER_TRUST_PROXY=N', async () => {
    const chained = await startServer({ NATTER_TRUST_PROXY: '2' })
    try {
      const client = runAddress()
      await fetch(`${chained.url}/api/auth/csrf`, { headers: { 'x-forwarded-for': `198.51.100.7, ${client}, 10.0.0.2` } })
      await vi.waitFor(() => {
        const line = chained.logs.join('').split('\n').find(text => text.includes('"path":"/api/auth/csrf"'))
        expect(JSON.parse(line!)).toMatchObject({ client })
      })
    }
    finally {
      await chained.stop()
    }
  })
})

describe('operator endpoints', () => {
  it('/metrics refuses a request with any proxy header', async () => {
    expect((await fetch(`${server.url}/metrics`)).status).toBe(200)
    const proxied: Array<[string, string]> = [['x-real-ip', '198.51.100.7'], ['forwarded', 'for=198.51.100.7'], ['x-forwarded-for', '198.51.100.7'], ['x-forwarded-host', 'chat.natter.test']]
    for (const [name, value] of proxied) {
      expect((await fetch(`${server.url}/metrics`, { headers: { [name]: value } })).status).toBe(403)
    }
  })

  it('/api/ready tells an outsider only the status; the detail is for operators', async () => {
    const outside = await fetch(`${server.url}/api/ready`, { headers: { 'x-forwarded-for': '198.51.100.7' } })
    expect(outside.status).toBe(200)
    expect(await outside.json()).toEqual({ status: 'ready' })
    const inside = await (await fetch(`${server.url}/api/ready`)).json()
    expect(inside.parts.database).toMatchObject({ ok: true, mode: realServices ? 'postgres' : 'pglite' })
  })

  it('/api/ready names a failing part to an outsider, without modes or driver errors', async () => {
    // A store that cannot be reached (real services), or no place to keep the embedded ones.
    const notADirectory = join(mkdtempSync(join(tmpdir(), 'natter-broken-')), 'file')
    writeFileSync(notADirectory, '')
    const broken = await startServer(realServices ? { REDIS_URL: 'redis://127.0.0.1:1' } : { NATTER_DATA_DIR: join(notADirectory, 'data') }, { waitForReady: false })
    try {
      const outside = await fetch(`${broken.url}/api/ready`, { headers: { 'x-real-ip': '198.51.100.7' } })
      expect(outside.status).toBe(503)
      const body = await outside.json()
      expect(body.data.code).toBe('not_ready')
      expect(body.data.failing).toContain(realServices ? 'store' : 'database')
      expect(body.data.parts).toBeUndefined()
      expect(JSON.stringify(body)).not.toMatch(/redis|postgres|pglite|in-process|ECONNREFUSED|ENOTDIR|127\.0\.0\.1|not started/i)
      const inside = await (await fetch(`${broken.url}/api/ready`)).json()
      expect(inside.data.parts[realServices ? 'store' : 'database']).toMatchObject({ ok: false, error: expect.any(String) })
    }
    finally {
      await broken.stop()
    }
  })
})

describe('mail in production', () => {
  it('refuses to start without SMTP_URL, saying what to set', async () => {
    // A server that does start is stopped again, so a failing run leaves nothing behind.
    const outcome = await startServer({ SMTP_URL: '', NATTER_DEV_MAIL: '' }).then(async (started) => {
      await started.stop()
      return 'it started'
    }, (error: Error) => error.message)
    expect(outcome).toMatch(/SMTP_URL is required in production.*NATTER_DEV_MAIL=1/)
  })

  it('starts with SMTP_URL and no development switch', async () => {
    const withMail = await startServer({ SMTP_URL: mail.url, NATTER_DEV_MAIL: '' })
    expect((await (await fetch(`${withMail.url}/api/ready`)).json()).parts.mailer).toMatchObject({ mode: 'smtp' })
    await withMail.stop()
  })
})

describe('the production log', () => {
  it('is one JSON object per line, whatever printed it', async () => {
    // Node's own refusals, a redirect off-site, a planted cookie on a page, a missing endpoint.
    await rawRequest({ port: server.port, head: 'BAD REQUEST LINE', timeoutMs: 5000 })
    await page('/login?next=/%09/evil.example', ada.cookieHeader())
    await page('/', 'natter_theme=%E0%A4%A; natter_csrf=%E0%A4%A')
    await fetch(`${server.url}/api/nowhere`)
    // What libraries print: console.* with several lines, raw writes, a process warning and an
    // unhandled rejection (reported by Nitro with console.error).
    server.process.kill('SIGUSR2')
    await vi.waitFor(() => expect(server.logs.join('')).toContain('injection done'))
    expect(await server.stop()).toBe(0)
    const lines = server.logs.join('').split('\n').filter(line => line.trim() !== '')
    const parsed = lines.map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>
      }
      catch {
        return line
      }
    })
    expect(parsed.filter(line => typeof line === 'string')).toEqual([])
    for (const line of parsed as Array<Record<string, unknown>>) expect(line).toMatchObject({ time: expect.any(String), level: expect.any(String), msg: expect.any(String) })
    const messages = parsed as Array<{ msg: string, level: string }>
    expect(messages).toContainEqual(expect.objectContaining({ level: 'info', msg: 'listening' }))
    expect(messages).toContainEqual(expect.objectContaining({ level: 'warn', msg: 'bad request' }))
    expect(messages).toContainEqual(expect.objectContaining({ level: 'error', msg: expect.stringContaining('an injected unhandled rejection') }))
    expect(messages).toContainEqual(expect.objectContaining({ level: 'warn', msg: 'an injected warning\n  with a second line' }))
    expect(messages).toContainEqual(expect.objectContaining({ msg: 'an injected raw write' }))
    expect(messages).toContainEqual(expect.objectContaining({ msg: expect.stringContaining('an injected process warning') }))
  })
})
