import { randomUUID } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { useChatServer } from '../support/chat-server'
import { Client } from '../support/client'
import type { Person } from '../support/people'
import { TestSocket } from '../support/socket'

const chat = useChatServer()
const open = (person: Person) => chat.open(person)
const chattingPair = () => chat.pair()

describe('the /ws upgrade', () => {
  it('is refused with 401 without a valid session cookie', async () => {
    const stranger = new Client(chat.server.url)
    expect(await TestSocket.upgradeStatus(stranger)).toBe(401)
    expect(await TestSocket.upgradeStatus(stranger, { cookie: 'natter_session=forged' })).toBe(401)
  })

  it('is refused with 403 from a foreign Origin, even signed in', async () => {
    const person = await chat.person()
    expect(await TestSocket.upgradeStatus(person.client, { origin: 'https://evil.example' })).toBe(403)
    expect(await TestSocket.upgradeStatus(person.client)).toBe(101)
  })
})

describe('contacts', () => {
  it('opens a direct conversation once, and both people see it', async () => {
    const { a, b, conversationId } = await chattingPair()
    const again = await a.client.post('/api/contacts', { email: b.email })
    expect(again.status).toBe(201)
    expect(again.body.conversationId).toBe(conversationId)
    const fromB = await b.client.post('/api/contacts', { email: a.email })
    expect(fromB.body.conversationId).toBe(conversationId)
    const list = await b.client.get('/api/contacts')
    expect(list.body).toEqual([{
      user: { id: a.id, email: a.email, displayName: a.email.split('@')[0] },
      conversationId,
      presence: { status: 'offline', lastSeen: null },
      lastMessage: null,
      unread: 0,
      theirRead: { seq: 0, at: null },
      request: null
    }])
  })

  it('tells the person added at once, on every device, and only while it is a request', async () => {
    const ada = await chat.person('ada')
    const bob = await chat.person('bob')
    const [phone, laptop, adaSocket] = await Promise.all([open(bob), open(bob), open(ada)])
    const added = await ada.client.post('/api/contacts', { email: bob.email })
    expect(added.status).toBe(201)
    for (const socket of [phone, laptop]) {
      expect(await socket.next(frame => frame.type === 'contact.request')).toEqual({
        type: 'contact.request', conversationId: added.body.conversationId, from: { id: ada.id, email: ada.email, displayName: expect.any(String) }
      })
    }
    // Bob answers: Ada adding him again is no request any more, and Ada herself never heard one.
    expect((await bob.client.post(`/api/contacts/${ada.id}/accept`)).status).toBe(204)
    const from = phone.frames.length
    expect((await ada.client.post('/api/contacts', { email: bob.email })).status).toBe(201)
    // Anything the second add sent is published before this message, which comes later still.
    adaSocket.send({ type: 'chat.send', conversationId: added.body.conversationId, body: 'marker', clientId: randomUUID() })
    await phone.next(frame => frame.type === 'chat.receive' && frame.body === 'marker', { from })
    expect(phone.frames.slice(from).filter(frame => frame.type === 'contact.request')).toEqual([])
    expect(adaSocket.frames.filter(frame => frame.type === 'contact.request')).toEqual([])
  })

  it('needs a session', async () => {
    expect((await new Client(chat.server.url).get('/api/contacts')).status).toBe(401)
  })
})

describe('sending', () => {
  it('acks the sender, delivers to the recipient and to the sender\'s other socket', async () => {
    const { a, b, conversationId } = await chattingPair()
    const [a1, a2, b1] = await Promise.all([open(a), open(a), open(b)])
    const clientId = randomUUID()
    a1.send({ type: 'chat.send', to: b.id, body: '  Hello, Bob!\nHow are you?  ', clientId })
    const ack = await a1.next(f => f.type === 'chat.ack')
    expect(ack).toMatchObject({ clientId, conversationId, seq: 1 })
    const received = await b1.next(f => f.type === 'chat.receive')
    expect(received).toEqual({ type: 'chat.receive', replyTo: null, attachments: [], mentions: [], id: ack.id, conversationId, seq: 1, from: a.id, to: b.id, body: 'Hello, Bob!\nHow are you?', timestamp: ack.timestamp })
    expect(await a2.next(f => f.type === 'chat.receive')).toEqual(received)
    expect(a1.frames.filter(f => f.type === 'chat.receive')).toHaveLength(0)
  })

  it('never stores a clientId twice: a resend gets the original ack', async () => {
    const { a, b, conversationId } = await chattingPair()
    const a1 = await open(a)
    const clientId = randomUUID()
    a1.send({ type: 'chat.send', to: b.id, body: 'once', clientId })
    const first = await a1.next(f => f.type === 'chat.ack')
    const from = a1.frames.length
    a1.send({ type: 'chat.send', to: b.id, body: 'once', clientId })
    const second = await a1.next(f => f.type === 'chat.ack', { from })
    expect(second).toEqual(first)
    const stored = await a.client.get(`/api/conversations/${conversationId}/messages?after=0`)
    expect(stored.body.messages).toHaveLength(1)
  })

  it('numbers a conversation 1, 2, 3… with no gap under concurrent sends from both people', async () => {
    const { a, b, conversationId } = await chattingPair()
    const [sa, sb] = await Promise.all([open(a), open(b)])
    const count = 15
    for (let i = 0; i < count; i++) {
      sa.send({ type: 'chat.send', to: b.id, body: `a${i}`, clientId: randomUUID() })
      sb.send({ type: 'chat.send', to: a.id, body: `b${i}`, clientId: randomUUID() })
    }
    const acks = async (socket: TestSocket) => {
      const deadline = Date.now() + 15_000
      while (socket.frames.filter(f => f.type === 'chat.ack').length < count && Date.now() < deadline) await socket.next(() => false, { timeout: 100 }).catch(() => {})
      return socket.frames.filter(f => f.type === 'chat.ack')
    }
    const [ackA, ackB] = await Promise.all([acks(sa), acks(sb)])
    expect(ackA).toHaveLength(count)
    expect(ackB).toHaveLength(count)
    const seqs = [...ackA, ...ackB].map(f => f.seq).sort((x, y) => x - y)
    expect(seqs).toEqual(Array.from({ length: 2 * count }, (_, i) => i + 1))
    const stored = (await b.client.get(`/api/conversations/${conversationId}/messages?after=0&limit=200`)).body.messages
    expect(stored.map((m: any) => m.seq)).toEqual(seqs)
    // Each person's own messages keep the order they were sent in.
    expect(stored.filter((m: any) => m.from === a.id).map((m: any) => m.body)).toEqual(Array.from({ length: count }, (_, i) => `a${i}`))
  })
})

describe('bad frames get an error frame, change nothing, and leave the socket open', () => {
  let person: { a: Person, b: Person, conversationId: string }
  let socket: TestSocket
  beforeAll(async () => {
    person = await chattingPair()
    socket = await open(person.a)
  })

  const cases: Array<[string, () => unknown, string]> = [
    ['malformed JSON', () => '{"type": "chat.send", ', 'invalid_json'],
    ['a JSON array', () => '[1,2,3]', 'invalid_frame'],
    ['an unknown type', () => ({ type: 'chat.burn', id: randomUUID() }), 'unknown_type'],
    ['no type', () => ({ to: person.b.id }), 'unknown_type'],
    ['an empty body', () => ({ type: 'chat.send', to: person.b.id, body: '   ', clientId: randomUUID() }), 'invalid_frame'],
    ['a body of 4001 characters', () => ({ type: 'chat.send', to: person.b.id, body: 'x'.repeat(4001), clientId: randomUUID() }), 'invalid_frame'],
    ['a control character', () => ({ type: 'chat.send', to: person.b.id, body: 'bell\u0007', clientId: randomUUID() }), 'invalid_frame'],
    ['a clientId that is not a UUID', () => ({ type: 'chat.send', to: person.b.id, body: 'hi', clientId: 'abc' }), 'invalid_frame'],
    ['a body that is a number', () => ({ type: 'chat.send', to: person.b.id, body: 42, clientId: randomUUID() }), 'invalid_frame'],
    ['a frame over 16 KiB', () => ({ type: 'chat.send', to: person.b.id, body: 'x'.repeat(17_000), clientId: randomUUID() }), 'frame_too_large'],
    ['a stranger as recipient', () => ({ type: 'chat.send', to: randomUUID(), body: 'hi', clientId: randomUUID() }), 'not_a_contact'],
    ['oneself as recipient', () => ({ type: 'chat.send', to: person.a.id, body: 'hi', clientId: randomUUID() }), 'not_a_contact']
  ]
  for (const [label, make, code] of cases) {
    it(label, async () => {
      const from = socket.frames.length
      const frame = make()
      socket.send(frame)
      const error = await socket.next(f => f.type === 'error', { from })
      expect(error.code).toBe(code)
      expect(error.message).toBeTruthy()
      const clientId = typeof frame === 'object' && frame && 'clientId' in frame ? (frame as { clientId: string }).clientId : undefined
      if (clientId && clientId.length === 36) expect(error.ref).toBe(clientId)
      await socket.roundTrip()
      expect(socket.closed).toBeUndefined()
    })
  }

  it('stored none of them', async () => {
    const stored = await person.a.client.get(`/api/conversations/${person.conversationId}/messages?after=0`)
    expect(stored.body.messages).toEqual([])
  })

  it('answers invalid UTF-8 in a binary frame', async () => {
    const from = socket.frames.length
    socket.ws.send(Buffer.from([0xFF, 0xFE, 0x7B]), { binary: true })
    expect((await socket.next(f => f.type === 'error', { from })).code).toBe('invalid_json')
    await socket.roundTrip()
  })
})

describe('rate limit', () => {
  it('answers a burst past 20 with rate_limited errors, each naming its clientId', async () => {
    const { a, b } = await chattingPair()
    const socket = await open(a)
    const ids = Array.from({ length: 40 }, () => randomUUID())
    for (const clientId of ids) socket.send({ type: 'chat.send', to: b.id, body: 'spam', clientId })
    await socket.roundTrip()
    const limited = socket.frames.filter(f => f.type === 'error' && f.code === 'rate_limited')
    expect(limited.length).toBeGreaterThanOrEqual(15)
    for (const error of limited) expect(ids).toContain(error.ref)
    const accepted = ids.filter(id => !limited.some(error => error.ref === id))
    await socket.next(() => socket.frames.filter(f => f.type === 'chat.ack').length === accepted.length)
  })
})

describe('history', () => {
  it('pages by time, newest last, and resyncs by seq', async () => {
    const { a, b, conversationId } = await chattingPair()
    const socket = await open(a)
    for (let i = 1; i <= 7; i++) {
      const from = socket.frames.length
      socket.send({ type: 'chat.send', to: b.id, body: `m${i}`, clientId: randomUUID() })
      await socket.next(f => f.type === 'chat.ack', { from })
    }
    const newest = await b.client.get(`/api/messages/${a.id}?limit=3`)
    expect(newest.body.messages.map((m: any) => m.body)).toEqual(['m5', 'm6', 'm7'])
    const older = await b.client.get(`/api/messages/${a.id}?limit=3&before=${encodeURIComponent(newest.body.nextBefore)}`)
    expect(older.body.messages.map((m: any) => m.body)).toEqual(['m2', 'm3', 'm4'])
    const oldest = await b.client.get(`/api/messages/${a.id}?limit=3&before=${encodeURIComponent(older.body.nextBefore)}`)
    expect(oldest.body.messages.map((m: any) => m.body)).toEqual(['m1'])
    expect(oldest.body.nextBefore).toBeNull()

    const after = await b.client.get(`/api/conversations/${conversationId}/messages?after=4`)
    expect(after.body.messages.map((m: any) => m.seq)).toEqual([5, 6, 7])
    const before = await b.client.get(`/api/conversations/${conversationId}/messages?before=3`)
    expect(before.body.messages.map((m: any) => m.seq)).toEqual([1, 2])
  })

  it('hides a conversation from someone who is not in it: 404', async () => {
    const { a, conversationId } = await chattingPair()
    const outsider = await chat.person('eve')
    expect((await outsider.client.get(`/api/conversations/${conversationId}/messages?after=0`)).status).toBe(404)
    expect((await outsider.client.get(`/api/messages/${a.id}`)).status).toBe(404)
  })

  it('answers 400 to bad paging parameters', async () => {
    const { a, b, conversationId } = await chattingPair()
    expect((await a.client.get(`/api/messages/${b.id}?limit=201`)).status).toBe(400)
    expect((await a.client.get(`/api/messages/${b.id}?before=yesterday`)).status).toBe(400)
    expect((await a.client.get(`/api/messages/not-a-uuid`)).status).toBe(400)
    expect((await a.client.get(`/api/conversations/${conversationId}/messages?after=1&before=5`)).status).toBe(400)
  })

  it('shows the last message and the unread count in the contact list', async () => {
    const { a, b } = await chattingPair()
    const socket = await open(a)
    for (const body of ['one', 'two']) {
      const from = socket.frames.length
      socket.send({ type: 'chat.send', to: b.id, body, clientId: randomUUID() })
      await socket.next(f => f.type === 'chat.ack', { from })
    }
    const [contact] = (await b.client.get('/api/contacts')).body
    expect(contact.lastMessage).toMatchObject({ body: 'two', from: a.id, to: b.id, seq: 2 })
    expect(contact.unread).toBe(2)
    const [mine] = (await a.client.get('/api/contacts')).body
    expect(mine.unread).toBe(0)
  })
})

describe('sign-out', () => {
  it('closes the session\'s sockets', async () => {
    const person = await chat.person()
    const socket = await open(person)
    await socket.roundTrip()
    await person.client.post('/api/auth/logout')
    expect((await socket.closedWith()).code).toBe(4401)
  })
})
