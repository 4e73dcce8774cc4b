import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Client } from '../support/client'
import { startMailCatcher, type MailCatcher } from '../support/mail-catcher'
import { pairUp, signedInPerson, type Person } from '../support/people'
import { startServer, type TestServer } from '../support/server'
import { brokenUuid, hostileBody, hostileQueryValue, hostileRaw, hostileString } from './hostile'

const RUNS = 250
// Set FUZZ_SEED to replay a run; fast-check prints the seed of a failing property.
const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31)

let server: TestServer
let mail: MailCatcher
let a: Person
let b: Person
let conversationId: string
let me: unknown
let contactsBefore: unknown[]
// Conversations the fuzzer's well-formed adds opened: the only change to a's contacts it may make.
const added = new Set<string>()
let requests = 0

beforeAll(async () => {
  mail = await startMailCatcher()
  server = await startServer({ SMTP_URL: mail.url, NATTER_TRUST_PROXY: '1' })
  a = await signedInPerson(server, mail, 'rest-a')
  b = await signedInPerson(server, mail, 'rest-b')
  conversationId = await pairUp(a, b)
  me = (await a.client.get('/api/me')).body.user
  contactsBefore = await contactsOf(a)
})
afterAll(async () => {
  await server?.stop()
  await mail?.close()
})

async function contactsOf(person: Person) {
  const answer = await person.client.get('/api/contacts')
  expect(answer.status).toBe(200)
  return (answer.body as Array<Record<string, unknown>>).map(({ presence: _presence, ...rest }) => rest)
}

interface Reply { status: number, text: string, json: any, type: string | null }

/** A request as a hostile but signed-in browser makes it: cookies, Origin and CSRF token right, the rest not. */
async function send(client: Client, method: string, path: string, body?: string | Buffer, contentType?: string): Promise<Reply> {
  if (!client.csrf) await client.get('/api/auth/csrf')
  const headers: Record<string, string> = { 'origin': client.origin, 'cookie': client.cookieHeader(), 'x-csrf-token': client.csrf!, 'x-forwarded-for': '10.250.0.1' }
  if (contentType) headers['content-type'] = contentType
  const payload = typeof body === 'string' || body === undefined ? body : new Uint8Array(body)
  const response = await fetch(client.base + path, { method, headers, body: method === 'GET' ? undefined : payload, redirect: 'manual' })
  requests += 1
  const text = await response.text()
  let json: unknown
  try {
    json = JSON.parse(text)
  }
  catch { /* checked below */ }
  return { status: response.status, text, json, type: response.headers.get('content-type') }
}

// A stack frame, a file path or an exception name would give the server's insides away.
const LEAK = /\n\s+at |node_modules|\(\/.*:\d+:\d+\)|\.output\/|\/server\/|"stack"/

/** Checks one answer against the contract: an expected status, never 5xx, 4xx in the error shape, nothing leaked. */
function judge(reply: Reply, allowed: number[], what: string) {
  const context = `${what} → ${reply.status} ${reply.text.slice(0, 300)}${reply.status >= 500 ? `\nserver log: ${server.logs.slice(-3).join('').slice(0, 1500)}` : ''}`
  expect(reply.status, context).toBeLessThan(500)
  expect(allowed, context).toContain(reply.status)
  expect(LEAK.test(reply.text), context).toBe(false)
  if (reply.status >= 400) {
    expect(reply.type, context).toMatch(/^application\/json/)
    expect(reply.json, context).toMatchObject({ statusCode: reply.status, message: expect.any(String), data: { code: expect.any(String) } })
    expect(reply.json.message.trim(), context).not.toBe('')
  }
}

const contentType = fc.option(fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x',
  'application/json; charset=utf-16', 'application/xml', '*/*', 'application/json, text/html', ''), { nil: undefined })

const emailish = fc.oneof(fc.emailAddress(), hostileString, fc.string({ maxLength: 300 }).map(local => `${local}@example.org`),
  fc.constantFrom('a@b', '@example.org', 'a@@example.org', 'a b@example.org', 'A@EXAMPLE.ORG', 'ａ@example.org', 'a\u200B@example.org', `${'a'.repeat(65)}@example.org`))

async function fuzzBody(method: string, path: string, fields: Parameters<typeof hostileBody>[0], allowed: number[], client = () => a.client, after?: (reply: Reply) => void) {
  await fc.assert(fc.asyncProperty(hostileRaw(hostileBody(fields)), contentType, async (body, type) => {
    const reply = await send(client(), method, path, body, type)
    judge(reply, allowed, `${method} ${path} ${fc.stringify(body).slice(0, 200)} (${type})`)
    after?.(reply)
  }), { numRuns: RUNS, seed, endOnFailure: true })
}

describe('every REST endpoint answers hostile input with a 4xx in the contract\'s shape, never a 500', () => {
  it('POST /api/auth/request-otp', () => fuzzBody('POST', '/api/auth/request-otp', { email: emailish }, [202, 400, 413, 429]), 60_000)

  it('POST /api/auth/verify-otp', () => fuzzBody('POST', '/api/auth/verify-otp', {
    email: fc.oneof(emailish, fc.constant(a.email)),
    otp: fc.oneof(fc.stringMatching(/^\d{6}$/), fc.constantFrom(' 1 2 3 4 5 6 ', '１２３４５６', '000000\n', '12345', '1234567'), hostileString)
  }, [400, 401, 413, 429]), 60_000)

  it('POST /api/auth/logout (signed out or not, with any body)', async () => {
    const leaver = await signedInPerson(server, mail, 'rest-leaver')
    await fuzzBody('POST', '/api/auth/logout', { everything: hostileString }, [204], () => leaver.client)
    expect((await leaver.client.get('/api/me')).status).toBe(401)
  }, 60_000)

  it('PATCH /api/me', () => fuzzBody('PATCH', '/api/me', {
    displayName: fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: 'grapheme', maxLength: 70 })),
    readReceipts: fc.oneof(fc.boolean(), fc.constantFrom('true', 0, 1, null))
  }, [200, 400, 413], undefined, (reply) => {
    if (reply.status === 200) me = reply.json.user
  }), 60_000)

  const secondFactorCode = fc.oneof(fc.stringMatching(/^\d{6}$/), fc.stringMatching(/^[a-z0-9]{5}-[a-z0-9]{5}$/),
    fc.constantFrom(' 1 2 3 4 5 6 ', '１２３４５６', 'ABCDE-FGHJK', '12345', 'abcde--fghjk'), hostileString)
  // a has no pending sign-in: a well-formed code finds none (401).
  it('POST /api/auth/verify-totp', () => fuzzBody('POST', '/api/auth/verify-totp', { code: secondFactorCode }, [400, 401, 413, 429]), 60_000)
  // Nothing to confirm and nothing to turn off for a: a well-formed code is a 404.
  it('POST /api/me/totp/confirm', () => fuzzBody('POST', '/api/me/totp/confirm', { code: secondFactorCode }, [400, 404, 413]), 60_000)
  it('DELETE /api/me/totp', () => fuzzBody('DELETE', '/api/me/totp', { code: secondFactorCode }, [400, 404, 413]), 60_000)
  // Never a's own address: every answer is a refusal, and the last test finds a's profile unchanged.
  it('DELETE /api/me', () => fuzzBody('DELETE', '/api/me', { email: fc.oneof(emailish, fc.constant(b.email)) }, [400, 413]), 60_000)

  // A well-formed address is added (inviting it when it has no account), until the add throttle says 429.
  it('POST /api/contacts', () => fuzzBody('POST', '/api/contacts', { email: fc.oneof(emailish, fc.constant(b.email), fc.constant(a.email)) }, [201, 400, 413, 429], undefined, (reply) => {
    if (reply.status === 201) added.add(reply.json.conversationId)
  }), 60_000)

  it('POST /api/read-receipt', () => fuzzBody('POST', '/api/read-receipt', {
    messageIds: fc.oneof(fc.array(fc.uuid(), { maxLength: 600 }), fc.array(fc.oneof(fc.uuid(), brokenUuid, hostileString), { maxLength: 5 }))
  }, [204, 400, 413]), 60_000)

  // No '..' here: the client would resolve it away before sending (the unknown-endpoint test has it).
  const pathId = () => fc.oneof(fc.uuid(), brokenUuid, hostileQueryValue, fc.constantFrom(b.id, conversationId, a.id, '%2F', 'null', ' '))
    .filter(id => !/^(\.|%2e){1,2}$/i.test(id))
  const query = (keys: string[]) => fc.dictionary(fc.constantFrom(...keys, 'limit', '__proto__', 'constructor', 'after[]', 'limit[0]', ''), hostileQueryValue, { maxKeys: 4 })
    .map(params => Object.entries(params).map(([key, value]) => `${encodeURIComponent(key)}=${value}`).join('&'))

  it('GET /api/messages/{userId} with hostile ids and query strings', async () => {
    await fc.assert(fc.asyncProperty(pathId(), query(['before']), async (id, search) => {
      const path = `/api/messages/${id}?${search}`
      judge(await send(a.client, 'GET', path), [200, 400, 404], `GET ${path}`)
    }), { numRuns: RUNS, seed, endOnFailure: true })
  }, 60_000)

  it('DELETE /api/me/sessions/{id} with hostile ids', async () => {
    await fc.assert(fc.asyncProperty(fc.oneof(pathId(), fc.stringMatching(/^[\w-]{22}$/)), async (id) => {
      const path = `/api/me/sessions/${id}`
      judge(await send(a.client, 'DELETE', path), [400, 404], `DELETE ${path}`)
    }), { numRuns: RUNS, seed, endOnFailure: true })
  }, 60_000)

  it('GET /api/conversations/{id}/messages with hostile ids and query strings', async () => {
    await fc.assert(fc.asyncProperty(pathId(), query(['after', 'before']), async (id, search) => {
      const path = `/api/conversations/${id}/messages?${search}`
      judge(await send(a.client, 'GET', path), [200, 400, 404], `GET ${path}`)
    }), { numRuns: RUNS, seed, endOnFailure: true })
  }, 60_000)

  it('unknown endpoints and methods never answer 5xx, and answer errors in the contract\'s shape', async () => {
    const segment = fc.oneof(fc.constantFrom('auth', 'me', 'contacts', 'messages', 'conversations', 'read-receipt', 'health', 'ready', '..', '%2e%2e', '__proto__'), hostileQueryValue)
    await fc.assert(fc.asyncProperty(fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE'), fc.array(segment, { minLength: 1, maxLength: 4 }), async (method, segments) => {
      const path = `/api/${segments.join('/')}`
      const reply = await send(a.client, method, path, method === 'GET' ? undefined : '{}', 'application/json')
      const context = `${method} ${path} → ${reply.status} ${reply.text.slice(0, 300)}`
      expect(reply.status, context).toBeLessThan(500)
      expect(LEAK.test(reply.text), context).toBe(false)
      // Under /api/<something> an error is the contract's JSON ('..' may resolve the path to /api/ itself).
      if (reply.status >= 400 && new URL(path, server.url).pathname.length > '/api/'.length) {
        expect(reply.json, context).toMatchObject({ statusCode: reply.status, message: expect.any(String), data: { code: expect.any(String) } })
      }
    }), { numRuns: RUNS, seed, endOnFailure: true })
  }, 60_000)

  it('answers a malformed id or paging parameter on the history endpoints with data.code (found by this fuzzer)', async () => {
    for (const path of ['/api/messages/not-a-uuid', `/api/messages/${b.id}?limit=0`, `/api/conversations/not-a-uuid/messages`, `/api/conversations/${conversationId}/messages?after=-1`]) {
      const reply = await send(a.client, 'GET', path)
      expect(reply.json, path).toMatchObject({ statusCode: 400, message: expect.any(String), data: { code: 'invalid_body' } })
    }
  })

  it('answers a messageIds whose length has no number form with a 400, not a 500 (found by this fuzzer)', async () => {
    const reply = await send(a.client, 'POST', '/api/read-receipt', JSON.stringify({ messageIds: { length: { toString: 1 } } }), 'application/json')
    judge(reply, [400], 'POST /api/read-receipt {"messageIds":{"length":{"toString":1}}}')
  })

  it('answers a wrong method on a known endpoint in the contract\'s shape (found by this fuzzer)', async () => {
    for (const [method, path] of [['PUT', '/api/me'], ['DELETE', '/api/contacts'], ['GET', '/api/read-receipt'], ['GET', '/api/auth/logout']]) {
      const reply = await send(a.client, method!, path!, method === 'GET' ? undefined : '{}', 'application/json')
      expect(reply.status, `${method} ${path}`).toBeOneOf([404, 405])
      expect(reply.json, `${method} ${path} → ${reply.text.slice(0, 200)}`).toMatchObject({ statusCode: reply.status, message: expect.any(String), data: { code: expect.any(String) } })
    }
  })

  it('changed nothing a rejected request could have changed', async () => {
    console.log(`[fuzz] ${requests} hostile REST requests`)
    expect(server.process.exitCode).toBeNull()
    expect((await a.client.get('/api/me')).body.user).toEqual(me)
    const known = new Set(contactsBefore.map(contact => (contact as { conversationId: string }).conversationId))
    const after = await contactsOf(a) as Array<{ conversationId: string }>
    expect(after.filter(contact => known.has(contact.conversationId))).toEqual(contactsBefore)
    expect(after.filter(contact => !known.has(contact.conversationId) && !added.has(contact.conversationId))).toEqual([])
    expect((await contactsOf(b)).map(contact => (contact.user as { id: string }).id)).toEqual([a.id])
    expect((await a.client.get(`/api/conversations/${conversationId}/messages?after=0`)).body.messages).toEqual([])
  })
})
