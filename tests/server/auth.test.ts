import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { Client } from '../support/client'
import { startMailCatcher, type MailCatcher } from '../support/mail-catcher'
import { startServer, type TestServer } from '../support/server'

let server: TestServer
let strict: TestServer
let mail: MailCatcher

beforeAll(async () => {
  mail = await startMailCatcher()
  // Behind a proxy each test client gets its own address, so the per-IP throttle stays per test;
  // a one-second resend window lets a person sign in twice within a test. The throttle tests use
  // a second server with the defaults.
  ;[server, strict] = await Promise.all([
    startServer({ SMTP_URL: mail.url, NATTER_TRUST_PROXY: '1', NATTER_CODE_RESEND_SECONDS: '1' }),
    startServer({ SMTP_URL: mail.url, NATTER_TRUST_PROXY: '1' })
  ])
})
afterAll(async () => {
  await Promise.all([server.stop(), strict.stop()])
  await mail.close()
})

const address = (label: string) => `${label}-${randomUUID().slice(0, 8)}@example.org`

function client(ip = `10.9.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}`, target = server) {
  const c = new Client(target.url)
  const request = c.request.bind(c)
  c.request = (method, path, body, options = {}) => request(method, path, body, { ...options, headers: { 'x-forwarded-for': ip, ...options.headers } })
  return c
}

/** Asks for a code once the one-second resend window of `server` has passed. */
async function requestWhenAllowed(email: string, person = client()) {
  return vi.waitFor(async () => {
    const answer = await person.post('/api/auth/request-otp', { email })
    if (answer.status === 429) throw new Error('still throttled')
    return answer
  }, { timeout: 5000, interval: 200 })
}

describe('sign-in by emailed code', () => {
  it('mails a code and signs a new person in, with a session cookie as the contract says', async () => {
    const person = client()
    const email = address('new')
    const before = mail.mails.length
    const requested = await person.post('/api/auth/request-otp', { email })
    expect(requested.status).toBe(202)
    const otp = await mail.codeFor(email, before)
    const sent = mail.mails.at(-1)!
    expect(sent.subject).toBe(`${otp} is your Natter sign-in code`)
    expect(sent.text).toContain('expires in 10 minutes')
    expect(sent.html).toContain(otp)

    const verified = await person.post('/api/auth/verify-otp', { email, otp })
    expect(verified.status).toBe(200)
    expect(verified.body).toMatchObject({ user: { email, displayName: email.split('@')[0], readReceipts: true }, firstSignIn: true })
    const cookie = verified.headers.getSetCookie().find(c => c.startsWith('natter_session='))!
    expect(cookie).toMatch(/HttpOnly/i)
    expect(cookie).toMatch(/SameSite=Lax/i)
    expect(cookie).toMatch(/Path=\//)
    expect(cookie).not.toMatch(/Secure/) // plain http here; Secure behind https
    expect(person.cookies.get('natter_session')).toMatch(/^[\w-]{43}$/)

    const me = await person.get('/api/me')
    expect(me.status).toBe(200)
    expect(me.body.user.id).toBe(verified.body.user.id)
  })

  it('answers the same 202 for an address with and without an account', async () => {
    const known = address('known')
    await client().signIn(known, mail)
    const first = await client().post('/api/auth/request-otp', { email: address('stranger') })
    const second = await requestWhenAllowed(known)
    expect([first.status, second.status]).toEqual([202, 202])
    expect(first.body).toEqual(second.body)
  })

  it('knows a returning person: firstSignIn is false and the name stays', async () => {
    const email = address('back')
    const person = client()
    await person.signIn(email, mail)
    await person.request('PATCH', '/api/me', { displayName: 'Grace Hopper' })
    const again = client()
    const before = mail.mails.length
    await requestWhenAllowed(email, again)
    const verified = await again.post('/api/auth/verify-otp', { email, otp: await mail.codeFor(email, before) })
    expect(verified.body).toMatchObject({ firstSignIn: false, user: { displayName: 'Grace Hopper' } })
  })

  it('normalises the address: trimmed, lowercased, NFKC', async () => {
    const local = `norm${randomUUID().slice(0, 6)}`
    const person = client()
    const before = mail.mails.length
    expect((await person.post('/api/auth/request-otp', { email: `  ${local.toUpperCase()}@ＥＸＡＭＰＬＥ.org ` })).status).toBe(202)
    const otp = await mail.codeFor(`${local}@example.org`, before)
    const verified = await person.post('/api/auth/verify-otp', { email: `${local}@example.org`, otp: `${otp.slice(0, 3)} ${otp.slice(3)}` })
    expect(verified.body.user.email).toBe(`${local}@example.org`)
  })
})

describe('codes that do not sign in', () => {
  // Every code that does not sign in gets the same answer, so no one learns that someone is signing in.
  const refusal = { statusCode: 401, data: { code: 'code_wrong' } }

  it('refuses a wrong code, saying what to do, and the right code still works', async () => {
    const email = address('wrong')
    const person = client()
    const before = mail.mails.length
    await person.post('/api/auth/request-otp', { email })
    const otp = await mail.codeFor(email, before)
    const wrong = otp === '000000' ? '000001' : '000000'
    const answer = await person.post('/api/auth/verify-otp', { email, otp: wrong })
    expect(answer.status).toBe(401)
    expect(answer.body).toMatchObject(refusal)
    expect(answer.body.data).not.toHaveProperty('triesLeft')
    expect(answer.body.message).toMatch(/ask for a new code/i)
    expect(person.cookies.has('natter_session')).toBe(false)
    expect((await person.post('/api/auth/verify-otp', { email, otp })).status).toBe(200)
  })

  it('voids the code after five wrong tries: the right code then gets the same refusal', async () => {
    const email = address('void')
    const person = client()
    const before = mail.mails.length
    await person.post('/api/auth/request-otp', { email })
    const otp = await mail.codeFor(email, before)
    const wrong = otp === '111111' ? '222222' : '111111'
    const answers = []
    for (let i = 0; i < 5; i++) answers.push(await person.post('/api/auth/verify-otp', { email, otp: wrong }))
    const sixth = await person.post('/api/auth/verify-otp', { email, otp })
    for (const answer of [...answers, sixth]) expect(answer.body).toEqual(answers[0]!.body)
    expect(sixth.body).toMatchObject(refusal)
    expect(sixth.headers.get('retry-after')).toBeNull()
    expect(person.cookies.has('natter_session')).toBe(false)
  })

  it('refuses a used code', async () => {
    const email = address('used')
    const person = client()
    const before = mail.mails.length
    await person.post('/api/auth/request-otp', { email })
    const otp = await mail.codeFor(email, before)
    expect((await person.post('/api/auth/verify-otp', { email, otp })).status).toBe(200)
    const replay = await client().post('/api/auth/verify-otp', { email, otp })
    expect(replay.body).toMatchObject(refusal)
  })

  it('refuses a code when none is pending (expired or never asked)', async () => {
    const answer = await client().post('/api/auth/verify-otp', { email: address('none'), otp: '123456' })
    expect(answer.body).toMatchObject(refusal)
  })

  it('binds a code to its address', async () => {
    const mine = address('mine')
    const theirs = address('theirs')
    const person = client()
    let before = mail.mails.length
    await person.post('/api/auth/request-otp', { email: mine })
    const myCode = await mail.codeFor(mine, before)
    before = mail.mails.length
    await client().post('/api/auth/request-otp', { email: theirs })
    const theirCode = await mail.codeFor(theirs, before)
    const answer = await person.post('/api/auth/verify-otp', { email: theirs, otp: myCode === theirCode ? '000000' : myCode })
    expect(answer.body).toMatchObject(refusal)
  })

  it('lets only one of many parallel verifies of the same code sign in', async () => {
    const email = address('race')
    const before = mail.mails.length
    await client().post('/api/auth/request-otp', { email })
    const otp = await mail.codeFor(email, before)
    const answers = await Promise.all(Array.from({ length: 8 }, () => client().post('/api/auth/verify-otp', { email, otp })))
    expect(answers.filter(a => a.status === 200)).toHaveLength(1)
    for (const answer of answers.filter(a => a.status !== 200)) expect(answer.body).toMatchObject(refusal)
  })
})

describe('throttles', () => {
  it('allows one code a minute per address, with Retry-After', async () => {
    const email = address('minute')
    expect((await client(undefined, strict).post('/api/auth/request-otp', { email })).status).toBe(202)
    const again = await client(undefined, strict).post('/api/auth/request-otp', { email })
    expect(again.status).toBe(429)
    expect(again.body.data.code).toBe('throttled')
    const retryAfter = Number(again.headers.get('retry-after'))
    expect(retryAfter).toBeGreaterThan(0)
    expect(retryAfter).toBeLessThanOrEqual(60)
    expect(again.body.data.retryAfter).toBe(retryAfter)
  })

  it('allows 20 requests an hour per client IP', async () => {
    // A fresh address each run: the real store keeps an hour's count between runs.
    const ip = `10.250.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}`
    const statuses = []
    for (let i = 0; i < 21; i++) statuses.push((await client(ip, strict).post('/api/auth/request-otp', { email: address(`ip${i}`) })).status)
    expect(statuses.slice(0, 20).every(s => s === 202)).toBe(true)
    expect(statuses[20]).toBe(429)
  })
})

describe('bad requests change nothing', () => {
  const id = () => randomUUID().slice(0, 8)
  // Each hostile address has a clean twin; if the server had "cleaned" and accepted the hostile one,
  // the twin would now be throttled. A 202 for the twin proves the rejection changed nothing.
  const hostile: Array<[string, (x: string) => unknown, ((x: string) => string)?]> = [
    ['not an address', () => 'not-an-email'],
    ['no domain dot', x => `${x}@localhost`],
    ['a space inside', x => `ada ${x}@example.org`],
    ['a bidi override', x => `${x}\u202E@example.org`, x => `${x}@example.org`],
    ['a zero-width space', x => `${x}\u200B@example.org`, x => `${x}@example.org`],
    ['a control character', x => `${x}\u0007@example.org`, x => `${x}@example.org`],
    ['a newline (header injection)', x => `${x}@example.org\nBcc: eve@example.org`, x => `${x}@example.org`],
    ['too long', x => `${x}${'a'.repeat(52)}@${'b'.repeat(190)}.example.org`],
    ['empty', () => ''],
    ['a number', () => 5],
    ['null', () => null]
  ]
  for (const [label, make, twin] of hostile) {
    it(`answers 400 to an address with ${label}`, async () => {
      const x = `h${id()}`
      const answer = await client(undefined, strict).post('/api/auth/request-otp', { email: make(x) })
      expect(answer.status).toBe(400)
      expect(answer.body).toMatchObject({ statusCode: 400, data: { code: 'invalid_body' } })
      expect(answer.body.message).toBeTruthy()
      expect(JSON.stringify(answer.body)).not.toMatch(/\.mjs|stack/i)
      if (twin) expect((await client(undefined, strict).post('/api/auth/request-otp', { email: twin(x) })).status).toBe(202)
    })
  }

  it('answers 400 to malformed JSON', async () => {
    const answer = await client().request('POST', '/api/auth/request-otp', undefined, { raw: '{"email": ' })
    expect(answer.status).toBe(400)
    expect(answer.body.data.code).toBe('invalid_json')
  })

  it('answers 413 to an oversized body', async () => {
    const answer = await client().post('/api/auth/request-otp', { email: 'a@example.org', padding: 'x'.repeat(20_000) })
    expect(answer.status).toBe(413)
    expect(answer.body.data.code).toBe('body_too_large')
  })

  it('answers 403 without the CSRF token, and with a wrong one', async () => {
    const person = client()
    await person.get('/api/auth/csrf')
    const missing = await person.request('POST', '/api/auth/request-otp', { email: address('csrf') }, { csrf: false })
    expect(missing.status).toBe(403)
    expect(missing.body.data.code).toBe('csrf_failed')
    const wrong = await person.request('POST', '/api/auth/request-otp', { email: address('csrf') }, { csrf: false, headers: { 'x-csrf-token': 'x'.repeat(32) } })
    expect(wrong.status).toBe(403)
    expect(wrong.body.data.code).toBe('csrf_failed')
  })

  it('answers 403 to a foreign Origin even with a valid token', async () => {
    const person = client()
    const answer = await person.request('POST', '/api/auth/request-otp', { email: address('origin') }, { headers: { origin: 'https://evil.example' } })
    expect(answer.status).toBe(403)
    expect(answer.body.data.code).toBe('foreign_origin')
    const crossSite = await person.request('POST', '/api/auth/request-otp', { email: address('origin') }, { headers: { 'origin': '', 'sec-fetch-site': 'cross-site' } })
    expect(crossSite.status).toBe(403)
  })

  it('refuses a tampered session cookie', async () => {
    const person = client()
    await person.signIn(address('tamper'), mail)
    const token = person.cookies.get('natter_session')!
    person.cookies.set('natter_session', token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA'))
    const me = await person.get('/api/me')
    expect(me.status).toBe(401)
    expect(me.body.data.code).toBe('unauthenticated')
  })

  it('answers an unknown API path with a JSON 404', async () => {
    const answer = await client().get('/api/no-such-thing')
    expect(answer.status).toBe(404)
    expect(answer.body.data.code).toBe('not_found')
  })
})

describe('profile and sign-out', () => {
  it('changes the display name, refusing an empty or hostile one', async () => {
    const person = client()
    await person.signIn(address('name'), mail)
    expect((await person.request('PATCH', '/api/me', { displayName: '  Ada Lovelace ' })).body.user.displayName).toBe('Ada Lovelace')
    for (const displayName of ['', '   ', 'a'.repeat(65), 'Ada\u202E', 5]) {
      const answer = await person.request('PATCH', '/api/me', { displayName })
      expect(answer.status).toBe(400)
    }
    expect((await person.get('/api/me')).body.user.displayName).toBe('Ada Lovelace')
  })

  it('signs out: 204, the cookie is cleared and the session is gone server-side', async () => {
    const person = client()
    await person.signIn(address('bye'), mail)
    const token = person.cookies.get('natter_session')!
    const out = await person.post('/api/auth/logout')
    expect(out.status).toBe(204)
    expect(person.cookies.has('natter_session')).toBe(false)
    const thief = client()
    thief.cookies.set('natter_session', token)
    expect((await thief.get('/api/me')).status).toBe(401)
  })
})

describe('security headers', () => {
  it('sends a CSP allowing no third-party origin, nosniff, same-origin referrer, no framing', async () => {
    const answer = await fetch(`${server.url}/login`)
    const csp = answer.headers.get('content-security-policy')!
    expect(csp).toContain(`default-src 'self'`)
    expect(csp).toContain(`frame-ancestors 'none'`)
    expect(csp).toMatch(/script-src 'self' 'nonce-[\w+/=]+'/)
    expect(csp).not.toMatch(/https?:\/\//)
    expect(answer.headers.get('x-content-type-options')).toBe('nosniff')
    expect(answer.headers.get('referrer-policy')).toBe('same-origin')
    const html = await answer.text()
    const nonce = csp.match(/'nonce-([\w+/=]+)'/)![1]
    for (const tag of html.match(/<script[^>]*>/g) ?? []) expect(tag).toContain(`nonce="${nonce}"`)
  })
})
