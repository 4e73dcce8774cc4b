import { afterEach, describe, expect, it, vi } from 'vitest'
import { Secret, TOTP } from 'otpauth'
import type { Device } from '#shared/types/me'
import { useChatServer } from '../support/chat-server'
import { Client } from '../support/client'
import { natterOf, roundTrip, type Tab } from '../support/natter'
import type { Person } from '../support/people'
import { TestSocket } from '../support/socket'

// A one-second resend window: a person signs in on a second device within a test.
const chat = useChatServer({ NATTER_CODE_RESEND_SECONDS: '1' })
const sockets: TestSocket[] = []
const tabs: Tab[] = []
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.close()
  for (const tab of tabs.splice(0)) tab.close()
})

async function tabOf(person: Person) {
  const tab = natterOf(person, { pingEveryMs: 60_000 })
  tabs.push(tab)
  await tab.open()
  await roundTrip(tab)
  return tab
}

async function say(tab: Tab, conversationId: string, body: string) {
  const entry = tab.client.sendMessage(conversationId, body)
  return tab.next('chat.ack', ack => ack.clientId === entry.clientId)
}

async function roomOf(owner: Person, name: string, ...members: Person[]): Promise<string> {
  const created = await owner.client.post('/api/rooms', { name, visibility: 'private', members: members.map(member => member.email) })
  expect(created.status, JSON.stringify(created.body)).toBe(201)
  return created.body.conversation.id
}

/** The same person signed in again from another browser (its own user agent), once the resend window allows. */
async function anotherDevice(person: Person, userAgent = 'Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0'): Promise<Client> {
  const client = new Client(chat.server.url)
  const request = client.request.bind(client)
  client.request = (method, path, body, options = {}) => request(method, path, body, { ...options, headers: { ...person.headers, 'user-agent': userAgent, ...options.headers } })
  await vi.waitFor(async () => {
    const before = chat.mail.mails.length
    const asked = await client.post('/api/auth/request-otp', { email: person.email })
    if (asked.status !== 202) throw new Error(`request-otp answered ${asked.status}`)
    const otp = await chat.mail.codeFor(person.email, before)
    const verified = await client.post('/api/auth/verify-otp', { email: person.email, otp })
    expect(verified.status).toBe(200)
  }, { timeout: 10_000, interval: 300 })
  return client
}

async function open(client: Client) {
  const socket = await TestSocket.open(client)
  sockets.push(socket)
  await socket.roundTrip()
  return socket
}

const devicesOf = async (client: Client): Promise<Device[]> => {
  const listed = await client.get('/api/me/sessions')
  expect(listed.status, JSON.stringify(listed.body)).toBe(200)
  return listed.body.sessions
}

describe('devices', () => {
  it('lists my signed-in devices with this one marked, and ends another one at once, its socket too', async () => {
    const ada = await chat.person('ada')
    const laptop = await anotherDevice(ada)
    const devices = await devicesOf(ada.client)
    expect(devices).toHaveLength(2)
    const [here, there] = [devices.find(device => device.current)!, devices.find(device => !device.current)!]
    expect(here).toMatchObject({ address: ada.headers['x-forwarded-for'], createdAt: expect.any(String), lastActiveAt: expect.any(String) })
    expect(there).toMatchObject({ device: 'Firefox on Linux', address: ada.headers['x-forwarded-for'], current: false })
    expect(here.id).toMatch(/^[\w-]{22}$/)
    // The other browser sees the same two, with itself as the current one.
    expect((await devicesOf(laptop)).find(device => device.current)!.id).toBe(there.id)

    const socket = await open(laptop)
    const ended = await ada.client.request('DELETE', `/api/me/sessions/${there.id}`)
    expect(ended.status).toBe(204)
    expect(await socket.closedWith()).toMatchObject({ code: 4401 })
    expect((await laptop.get('/api/me')).status).toBe(401)
    expect((await ada.client.get('/api/me')).status).toBe(200)
    expect((await devicesOf(ada.client)).map(device => device.id)).toEqual([here.id])
    // Ended is ended: a second time it is not found.
    expect((await ada.client.request('DELETE', `/api/me/sessions/${there.id}`)).status).toBe(404)
  })

  it('ending this device signs this browser out', async () => {
    const ada = await chat.person('ada')
    const [here] = await devicesOf(ada.client)
    expect((await ada.client.request('DELETE', `/api/me/sessions/${here!.id}`)).status).toBe(204)
    expect((await ada.client.get('/api/me')).status).toBe(401)
  })

  it('refuses someone else\'s device (404, as for one that never was), made-up ids, strangers and requests without the CSRF token', async () => {
    const [ada, eve] = await Promise.all([chat.person('ada'), chat.person('eve')])
    const [adas] = await devicesOf(ada.client)
    expect((await eve.client.request('DELETE', `/api/me/sessions/${adas!.id}`)).status).toBe(404)
    expect((await eve.client.request('DELETE', `/api/me/sessions/${'A'.repeat(22)}`)).status).toBe(404)
    expect((await eve.client.request('DELETE', '/api/me/sessions/not-a-device')).status).toBe(400)
    expect((await ada.client.request('DELETE', `/api/me/sessions/${adas!.id}`, undefined, { csrf: false })).status).toBe(403)
    const stranger = new Client(chat.server.url)
    expect((await stranger.get('/api/me/sessions')).status).toBe(401)
    expect((await stranger.request('DELETE', `/api/me/sessions/${adas!.id}`)).status).toBe(401)
    // Nothing of Ada's changed.
    expect((await ada.client.get('/api/me')).status).toBe(200)
    expect(await devicesOf(ada.client)).toHaveLength(1)
  })
})

/** The person's authenticator app, as the test's own copy of the secret. */
function appOf(secret: string) {
  return {
    code: (at = Date.now()) => TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: at }),
    /** A code of the step `steps` away from now. */
    codeIn: (steps: number) => TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: Date.now() + steps * 30_000 })
  }
}

/** Turns the second factor on for a signed-in person; answers their app and recovery codes. */
async function turnOn(person: Person) {
  const begun = await person.client.post('/api/me/totp')
  expect(begun.status, JSON.stringify(begun.body)).toBe(200)
  expect(begun.body.qr).toMatch(/^data:image\/svg\+xml;base64,/)
  expect(begun.body.otpauthUrl).toMatch(/^otpauth:\/\/totp\/Natter:.*secret=/)
  const app = appOf(begun.body.secret)
  const confirmed = await person.client.post('/api/me/totp/confirm', { code: app.code() })
  expect(confirmed.status, JSON.stringify(confirmed.body)).toBe(200)
  expect(confirmed.body.recoveryCodes).toHaveLength(10)
  return { app, recoveryCodes: confirmed.body.recoveryCodes as string[] }
}

/** The emailed-code step on a fresh browser of the person. */
async function emailStep(person: Person) {
  const client = new Client(chat.server.url)
  const request = client.request.bind(client)
  client.request = (method, path, body, options = {}) => request(method, path, body, { ...options, headers: { ...person.headers, ...options.headers } })
  const verified = await vi.waitFor(async () => {
    const before = chat.mail.mails.length
    const asked = await client.post('/api/auth/request-otp', { email: person.email })
    if (asked.status !== 202) throw new Error(`request-otp answered ${asked.status}`)
    const otp = await chat.mail.codeFor(person.email, before)
    return client.post('/api/auth/verify-otp', { email: person.email, otp })
  }, { timeout: 10_000, interval: 300 })
  return { client, verified }
}

describe('a second factor', () => {
  it('once on, the emailed code gives no session but asks for the app\'s code, which signs in once', async () => {
    const ada = await chat.person('ada')
    expect((await ada.client.get('/api/me')).body.totp).toBe(false)
    const { app } = await turnOn(ada)
    expect((await ada.client.get('/api/me')).body.totp).toBe(true)

    const { client, verified } = await emailStep(ada)
    expect(verified.status).toBe(200)
    expect(verified.body).toEqual({ totp: 'required' })
    expect(client.cookies.has('natter_session')).toBe(false)
    expect((await client.get('/api/me')).status).toBe(401)

    // Within the window the next step's code is taken; then it, and every code before it, are spent.
    const signedIn = await client.post('/api/auth/verify-totp', { code: app.codeIn(1) })
    expect(signedIn.status, JSON.stringify(signedIn.body)).toBe(200)
    expect(signedIn.body.user).toMatchObject({ id: ada.id, email: ada.email })
    expect((await client.get('/api/me')).status).toBe(200)
    expect(client.cookies.has('natter_totp')).toBe(false)

    // The pending sign-in is finished: no second session from it.
    expect((await client.post('/api/auth/verify-totp', { code: app.code() })).status).toBe(401)
    const again = await emailStep(ada)
    expect((await again.client.post('/api/auth/verify-totp', { code: app.codeIn(1) })).body).toMatchObject({ data: { code: 'code_wrong' } })
    expect((await again.client.post('/api/auth/verify-totp', { code: app.code() })).status).toBe(401)
    expect((await again.client.post('/api/auth/verify-totp', { code: app.codeIn(-1) })).status).toBe(401)
    expect((await again.client.get('/api/me')).status).toBe(401)
  })

  it('refuses a wrong code, a code without a pending sign-in, another browser\'s pending sign-in, and malformed codes', async () => {
    const ada = await chat.person('ada')
    const { app } = await turnOn(ada)
    const { client } = await emailStep(ada)
    const wrong = await client.post('/api/auth/verify-totp', { code: app.codeIn(5) })
    expect(wrong.status).toBe(401)
    expect(wrong.body.data.code).toBe('code_wrong')
    expect((await client.post('/api/auth/verify-totp', { code: '12345' })).status).toBe(400)
    expect((await client.post('/api/auth/verify-totp', { code: 'x'.repeat(5000) })).status).toBe(400)
    expect((await client.post('/api/auth/verify-totp', {})).status).toBe(400)

    // Another browser, with no pending sign-in of its own, gets nothing for a right code.
    const stranger = new Client(chat.server.url)
    const none = await stranger.post('/api/auth/verify-totp', { code: app.codeIn(1) })
    expect(none.status).toBe(401)
    expect(none.body.data.code).toBe('unauthenticated')
    expect(stranger.cookies.has('natter_session')).toBe(false)
    // A right code still works for the browser that did the email step (the stranger spent none);
    // the current step's was spent confirming the app, so the next step's.
    expect((await client.post('/api/auth/verify-totp', { code: app.codeIn(1) })).status).toBe(200)
  })

  it('takes each recovery code once', async () => {
    const ada = await chat.person('ada')
    const { recoveryCodes } = await turnOn(ada)
    const first = await emailStep(ada)
    expect((await first.client.post('/api/auth/verify-totp', { code: recoveryCodes[0]!.toUpperCase() })).status).toBe(200)
    const second = await emailStep(ada)
    expect((await second.client.post('/api/auth/verify-totp', { code: recoveryCodes[0] })).status).toBe(401)
    expect((await second.client.post('/api/auth/verify-totp', { code: recoveryCodes[1] })).status).toBe(200)
  })

  it('voids a pending sign-in after 5 wrong codes and throttles a person after 10 tries', async () => {
    const ada = await chat.person('ada')
    const { app } = await turnOn(ada) // one try
    const first = await emailStep(ada)
    for (let i = 0; i < 5; i++) expect((await first.client.post('/api/auth/verify-totp', { code: app.codeIn(10 + i) })).status).toBe(401)
    const voided = await first.client.post('/api/auth/verify-totp', { code: app.code() })
    expect(voided.status).toBe(401)
    expect(voided.body.data.code).toBe('unauthenticated')
    const second = await emailStep(ada)
    for (let i = 0; i < 4; i++) expect((await second.client.post('/api/auth/verify-totp', { code: app.codeIn(10 + i) })).status).toBe(401)
    const throttled = await second.client.post('/api/auth/verify-totp', { code: app.code() })
    expect(throttled.status).toBe(429)
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThan(0)
    expect((await second.client.get('/api/me')).status).toBe(401)
  })

  it('is set up only by its owner, confirmed by a right code, and turned off with one', async () => {
    const ada = await chat.person('ada')
    const stranger = new Client(chat.server.url)
    expect((await stranger.post('/api/me/totp')).status).toBe(401)
    expect((await stranger.post('/api/me/totp/confirm', { code: '123456' })).status).toBe(401)
    expect((await ada.client.post('/api/me/totp/confirm', { code: '123456' })).status).toBe(404)
    expect((await ada.client.request('POST', '/api/me/totp', undefined, { csrf: false })).status).toBe(403)

    const begun = await ada.client.post('/api/me/totp')
    const app = appOf(begun.body.secret)
    expect((await ada.client.post('/api/me/totp/confirm', { code: app.codeIn(5) })).status).toBe(401)
    expect((await ada.client.get('/api/me')).body.totp).toBe(false)
    expect((await ada.client.post('/api/me/totp/confirm', { code: app.code() })).status).toBe(200)
    expect((await ada.client.post('/api/me/totp')).status).toBe(409)

    expect((await ada.client.request('DELETE', '/api/me/totp', { code: app.codeIn(5) })).status).toBe(401)
    expect((await ada.client.request('DELETE', '/api/me/totp', {})).status).toBe(400)
    expect((await ada.client.get('/api/me')).body.totp).toBe(true)
    expect((await ada.client.request('DELETE', '/api/me/totp', { code: app.codeIn(1) })).status).toBe(204)
    expect((await ada.client.get('/api/me')).body.totp).toBe(false)
    // Off: the emailed code signs in by itself again.
    const { verified } = await emailStep(ada)
    expect(verified.body.user).toMatchObject({ id: ada.id })
  })
})

describe('my data', () => {
  it('downloads my profile, my conversations and only my own messages as JSON lines, once a minute', async () => {
    const { a: ada, b: bob, conversationId: direct } = await chat.pair()
    await bob.client.request('PATCH', '/api/me', { displayName: 'Bob B' })
    const room = await roomOf(ada, 'Plans', bob)
    const [a, b] = await Promise.all([tabOf(ada), tabOf(bob)])
    await say(a, direct, 'hello Bob')
    await say(b, direct, 'Bob\'s own words')
    await say(a, room, 'in the room')

    const answer = await ada.client.get('/api/me/export')
    expect(answer.status).toBe(200)
    expect(answer.headers.get('content-type')).toMatch(/^application\/x-ndjson/)
    expect(answer.headers.get('content-disposition')).toMatch(/^attachment; filename="natter-export-\d{4}-\d{2}-\d{2}\.jsonl"$/)
    const lines = (answer.body as string).trim().split('\n').map(text => JSON.parse(text))
    expect(lines[0]).toMatchObject({ type: 'profile', id: ada.id, email: ada.email })
    const conversations = lines.filter(line => line.type === 'conversation')
    expect(conversations.map(line => [line.id, line.name]).sort()).toEqual([[direct, 'Bob B'], [room, 'Plans']].sort())
    const messages = lines.filter(line => line.type === 'message')
    expect(messages.map(line => [line.conversationId, line.body])).toEqual([[direct, 'hello Bob'], [room, 'in the room']])
    expect(lines.at(-1)).toEqual({ type: 'end', conversations: 2, messages: 2 })
    expect(JSON.stringify(lines)).not.toContain('Bob\'s own words')

    const again = await ada.client.get('/api/me/export')
    expect(again.status).toBe(429)
    expect(Number(again.headers.get('retry-after'))).toBeGreaterThan(0)
    expect((await new Client(chat.server.url).get('/api/me/export')).status).toBe(401)
  })

  it('deletes my account only when I type my own address; my messages stay, as a deleted account\'s', async () => {
    const { a: ada, b: bob, conversationId: direct } = await chat.pair()
    const room = await roomOf(ada, 'Ada\'s room', bob)
    const [a, b] = await Promise.all([tabOf(ada), tabOf(bob)])
    const mine = await say(a, direct, 'remember me')
    const theirs = await say(b, room, 'a thought')
    expect((await ada.client.request('PUT', `/api/messages/${theirs.id}/reactions/${encodeURIComponent('👍')}`)).status).toBeLessThan(300)
    const laptop = await anotherDevice(ada)
    const socket = await open(laptop)

    expect((await ada.client.request('DELETE', '/api/me', { email: bob.email })).status).toBe(400)
    expect((await ada.client.request('DELETE', '/api/me', {})).status).toBe(400)
    expect((await ada.client.request('DELETE', '/api/me', { email: ada.email }, { csrf: false })).status).toBe(403)
    expect((await new Client(chat.server.url).request('DELETE', '/api/me', { email: ada.email })).status).toBe(401)
    expect((await ada.client.get('/api/me')).body.user).toMatchObject({ id: ada.id, email: ada.email })

    expect((await ada.client.request('DELETE', '/api/me', { email: ada.email })).status).toBe(204)
    expect(await socket.closedWith()).toMatchObject({ code: 4401 })
    expect((await ada.client.get('/api/me')).status).toBe(401)
    expect((await laptop.get('/api/me')).status).toBe(401)

    // Bob keeps the direct conversation and Ada's message in it, from "Deleted account".
    const listed = (await bob.client.get('/api/conversations')).body as Array<{ id: string, peer: { user: { displayName: string } } | null, memberCount: number, role: string }>
    expect(listed.find(conversation => conversation.id === direct)?.peer?.user.displayName).toBe('Deleted account')
    const history = (await bob.client.get(`/api/conversations/${direct}/messages?after=0&limit=50`)).body.messages
    expect(history.map((message: { id: string, from: string, body: string }) => [message.id, message.from, message.body])).toEqual([[mine.id, ada.id, 'remember me']])
    // Ada left her room: Bob is its owner now, and her reaction is gone.
    expect(listed.find(conversation => conversation.id === room)).toMatchObject({ memberCount: 1, role: 'owner' })
    const roomHistory = (await bob.client.get(`/api/conversations/${room}/messages?after=0&limit=50`)).body.messages
    expect(roomHistory.find((message: { id: string }) => message.id === theirs.id).reactions ?? []).toEqual([])

    // The address is free again: signing in with it makes a new account.
    const fresh = new Client(chat.server.url)
    const user = await vi.waitFor(() => fresh.signIn(ada.email, chat.mail), { timeout: 10_000, interval: 300 })
    expect(user.id).not.toBe(ada.id)
  })
})
