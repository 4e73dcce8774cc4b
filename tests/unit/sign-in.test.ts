import { IncomingMessage, ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import { createEvent } from 'h3'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { clientNetwork, consumeCode, issueCode, LOCK_AFTER_FAILURES, VERIFIES_PER_IP_BURST, type SignInContext } from '../../server/utils/sign-in'
import { createSession, readSession, endSession, SESSION_ABSOLUTE_MS, SESSION_IDLE_MS, SESSION_REVOKED_CHANNEL } from '../../server/utils/sessions'
import { createMemoryStore } from '../../server/utils/store/memory'
import type { Store } from '../../server/utils/store/types'
import { realServices, testStore, uniqueName } from '../support/backends'

// A fresh client IP for each call, so the per-IP limits stay out of the way of the tests of other limits.
let nextIp = Math.floor(Math.random() * 2 ** 24)
const freshIp = () => `10.${(nextIp >> 16) & 255}.${(nextIp >> 8) & 255}.${nextIp++ & 255}`

function context(store: Store, ip = freshIp()): SignInContext {
  const req = new IncomingMessage(new Socket())
  return { event: createEvent(req, new ServerResponse(req)), store, secret: 'unit-test-secret-unit-test-secret-0123', ip }
}

const codeIn = (mail: { subject: string }) => mail.subject.slice(0, 6)

async function rejection(promise: Promise<unknown>) {
  try {
    await promise
  }
  catch (error) {
    return error as { statusCode: number, data: { code: string, triesLeft?: number, retryAfter?: number } }
  }
  throw new Error('expected a rejection')
}

describe(`sign-in codes (${realServices ? 'redis' : 'in-process'} store)`, () => {
  let store: Store
  beforeAll(() => {
    store = testStore()
  })
  afterAll(() => store.close())

  it('makes 6-digit codes and keeps only an HMAC of them, for 10 minutes', async () => {
    const email = `${uniqueName('hmac')}@example.org`
    const mail = await issueCode(context(store), email)
    const code = codeIn(mail)
    expect(code).toMatch(/^\d{6}$/)
    const stored = (await store.get(`signin-code:${email}`))!
    expect(stored).not.toContain(code)
    const ttl = await store.ttl(`signin-code:${email}`)
    expect(ttl).toBeGreaterThan(9 * 60_000)
    expect(ttl).toBeLessThanOrEqual(10 * 60_000)
  })

  it('replaces an earlier code with a newer one', async () => {
    const email = `${uniqueName('newer')}@example.org`
    const first = codeIn(await issueCode(context(store), email))
    await store.delete(`throttle:otp-minute:${email}`)
    const second = codeIn(await issueCode(context(store), email))
    if (first !== second) expect((await rejection(consumeCode(context(store), email, first))).data.code).toBe('code_wrong')
    await expect(consumeCode(context(store), email, second)).resolves.toBeUndefined()
  })

  it('allows 5 codes an hour per address', async () => {
    const email = `${uniqueName('hour')}@example.org`
    for (let i = 0; i < 5; i++) {
      await issueCode(context(store), email)
      await store.delete(`throttle:otp-minute:${email}`)
    }
    const error = await rejection(issueCode(context(store), email))
    expect(error.statusCode).toBe(429)
    expect(error.data.retryAfter).toBeGreaterThan(3500)
  })

  it('locks an address after 100 consecutive failures, across fresh codes, for an hour', async () => {
    const email = `${uniqueName('lock')}@example.org`
    codeIn(await issueCode(context(store), email))
    for (let i = 0; i < LOCK_AFTER_FAILURES - 1; i++) {
      // A fresh code now and then: the failure count must not reset with it.
      if (i % 4 === 0) {
        await store.delete(`throttle:otp-minute:${email}`, `throttle:otp-hour:${email}`)
        await issueCode(context(store), email)
      }
      await rejection(consumeCode(context(store), email, '999999'))
    }
    await store.delete(`throttle:otp-minute:${email}`, `throttle:otp-hour:${email}`)
    const code = codeIn(await issueCode(context(store), email))
    const hundredth = await rejection(consumeCode(context(store), email, code === '999999' ? '999998' : '999999'))
    expect(hundredth.data.code).toBe('code_wrong')
    const locked = await rejection(consumeCode(context(store), email, code))
    expect(locked.statusCode).toBe(429)
    expect(locked.data.code).toBe('locked')
    expect(locked.data.retryAfter).toBeGreaterThan(3500)
    const asking = await rejection(issueCode(context(store), email))
    expect(asking.data.code).toBe('locked')
  })

  it('counts no failure and writes no key for a code that was never issued', async () => {
    const email = `${uniqueName('never')}@example.org`
    for (let i = 0; i < LOCK_AFTER_FAILURES + 5; i++) await rejection(consumeCode(context(store), email, '123456'))
    expect(await store.ttl(`signin-failures:${email}`)).toBe(-2)
    expect(await store.ttl(`signin-code:${email}`)).toBe(-2)
    // Not locked: the owner still gets a code and signs in with it.
    await expect(consumeCode(context(store), email, codeIn(await issueCode(context(store), email)))).resolves.toBeUndefined()
  })

  it('answers every code that does not sign in with the same 401', async () => {
    const email = `${uniqueName('alike')}@example.org`
    const none = await rejection(consumeCode(context(store), email, '123456'))
    const code = codeIn(await issueCode(context(store), email))
    const wrong = await rejection(consumeCode(context(store), email, code === '000000' ? '000001' : '000000'))
    await consumeCode(context(store), email, code)
    const used = await rejection(consumeCode(context(store), email, code))
    const shape = (error: typeof none) => ({ statusCode: error.statusCode, message: (error as unknown as Error).message, data: error.data })
    for (const error of [wrong, used]) expect(shape(error)).toEqual(shape(none))
    expect(none).toMatchObject({ statusCode: 401, data: { code: 'code_wrong' } })
    expect(none.data).not.toHaveProperty('triesLeft')
  })

  it('limits verifies per client network: an IPv6 /64 is one network', async () => {
    const network = `2001:db8:${Math.floor(Math.random() * 0xffff).toString(16)}:7`
    const answers = []
    for (let host = 1; host <= VERIFIES_PER_IP_BURST + 1; host++) answers.push(await rejection(consumeCode(context(store, `${network}::${host.toString(16)}`), `${uniqueName('net')}@example.org`, '123456')))
    expect(answers.slice(0, -1).every(error => error.statusCode === 401)).toBe(true)
    expect(answers.at(-1)).toMatchObject({ statusCode: 429, data: { code: 'throttled' } })
  })

  it('resets the failure count on a successful sign-in', async () => {
    const email = `${uniqueName('reset')}@example.org`
    const code = codeIn(await issueCode(context(store), email))
    await rejection(consumeCode(context(store), email, code === '000000' ? '000001' : '000000'))
    expect(await store.get(`signin-failures:${email}`)).toBe('1')
    await consumeCode(context(store), email, code)
    expect(await store.get(`signin-failures:${email}`)).toBeNull()
  })
})

describe('sign-in code expiry (in-process store, fake clock)', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('refuses a code after its 10 minutes', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const store = createMemoryStore()
    const email = 'late@example.org'
    const code = codeIn(await issueCode(context(store), email))
    vi.setSystemTime(Date.now() + 10 * 60_000 + 1)
    const error = await rejection(consumeCode(context(store), email, code))
    expect(error.statusCode).toBe(401)
    expect(error.data.code).toBe('code_wrong')
    await store.close()
  })
})

describe('client networks for per-IP limits', () => {
  it('counts IPv4 by address, IPv6 by /64, and anything else as one', () => {
    expect(clientNetwork('203.0.113.7')).toBe('203.0.113.7')
    expect(clientNetwork('::ffff:203.0.113.7')).toBe('203.0.113.7')
    expect(clientNetwork('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64')
    expect(clientNetwork('2001:0db8:0001:0002:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64')
    expect(clientNetwork('2001:db8::1')).toBe('2001:db8:0:0::/64')
    expect(clientNetwork('::1')).toBe('0:0:0:0::/64')
    expect(clientNetwork('fe80::1%eth0')).toBe('fe80:0:0:0::/64')
    expect(clientNetwork('not-an-ip')).toBe('other')
    expect(clientNetwork('unknown')).toBe('other')
  })
})

describe(`sessions (${realServices ? 'redis' : 'in-process'} store)`, () => {
  let store: Store
  beforeAll(() => {
    store = testStore()
  })
  afterAll(() => store.close())

  it('stores only a hash of a 256-bit token', async () => {
    const { token, session } = await createSession(store, 'user-1')
    expect(Buffer.from(token, 'base64url')).toHaveLength(32)
    expect(session.id).not.toBe(token)
    expect(await store.get(`session:${token}`)).toBeNull()
    expect((await readSession(store, token))?.userId).toBe('user-1')
  })

  it('ends after 7 idle days and after 30 days however active', async () => {
    const now = Date.now()
    const idle = await createSession(store, 'user-2', now)
    expect(await readSession(store, idle.token, now + SESSION_IDLE_MS + 1)).toBeUndefined()
    const busy = await createSession(store, 'user-3', now)
    for (let day = 6; day < 30; day += 6) expect(await readSession(store, busy.token, now + day * 24 * 3600_000)).toBeDefined()
    expect(await readSession(store, busy.token, now + SESSION_ABSOLUTE_MS + 1)).toBeUndefined()
  })

  it('ends a session everywhere and announces it', async () => {
    const heard: string[] = []
    const stop = await store.subscribe(SESSION_REVOKED_CHANNEL, id => heard.push(id))
    const { token, session } = await createSession(store, 'user-4')
    await endSession(store, session)
    expect(await readSession(store, token)).toBeUndefined()
    await vi.waitFor(() => expect(heard).toContain(session.id))
    await stop()
  })
})
