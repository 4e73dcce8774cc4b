import { randomUUID } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { useChatServer } from '../support/chat-server'
import type { Person } from '../support/people'
import type { Frame, TestSocket } from '../support/socket'

const chat = useChatServer()
const open = (person: Person) => chat.open(person)
const pair = () => chat.pair()

const presenceOf = (userId: string, status: string) => (f: Frame) => f.type === 'presence.update' && f.userId === userId && f.status === status

describe('presence', () => {
  it('tells a new socket its contacts\' presence at once, and announces the newcomer', async () => {
    const { a, b } = await pair()
    const sb = await open(b)
    expect(sb.frames.find(presenceOf(a.id, 'offline'))).toBeTruthy()
    const sa = await open(a)
    expect(sa.frames.find(presenceOf(b.id, 'online'))).toBeTruthy()
    await sb.next(presenceOf(a.id, 'online'))
    const [contact] = (await b.client.get('/api/contacts')).body
    expect(contact.presence.status).toBe('online')
  })

  it('announces offline within 1 s of a clean close of the last socket, and keeps lastSeen', async () => {
    const { a, b } = await pair()
    const sb = await open(b)
    const sa = await open(a)
    await sb.next(presenceOf(a.id, 'online'))
    const from = sb.frames.length
    const closedAt = Date.now()
    sa.close()
    const offline = await sb.next(presenceOf(a.id, 'offline'), { from, timeout: 1000 })
    expect(Date.now() - closedAt).toBeLessThan(1000)
    expect(Math.abs(new Date(offline.lastSeen).getTime() - closedAt)).toBeLessThan(1000)
    const [contact] = (await b.client.get('/api/contacts')).body
    expect(contact.presence).toEqual({ status: 'offline', lastSeen: offline.lastSeen })
  })

  it('keeps a person online while one of their devices is', async () => {
    const { a, b } = await pair()
    const sb = await open(b)
    const [phone, laptop] = [await open(a), await open(a)]
    await sb.next(presenceOf(a.id, 'online'))
    const from = sb.frames.length
    phone.close()
    await phone.closedWith()
    await sb.roundTrip()
    expect((await b.client.get('/api/contacts')).body[0].presence.status).toBe('online')
    expect(sb.frames.slice(from).find(presenceOf(a.id, 'offline'))).toBeUndefined()
    laptop.close()
    await sb.next(presenceOf(a.id, 'offline'), { from, timeout: 1000 })
  })

  it('tells only people who share a conversation', async () => {
    const { a, b } = await pair()
    const stranger = await chat.person('eve')
    const se = await open(stranger)
    const sb = await open(b)
    await open(a)
    await sb.next(presenceOf(a.id, 'online'))
    await se.roundTrip()
    expect(se.frames.filter(f => f.type === 'presence.update')).toEqual([])
  })

  it('announces offline within 30 s when a socket dies without a close', async () => {
    const { a, b } = await pair()
    const sb = await open(b)
    const sa = await open(a)
    await sb.next(presenceOf(a.id, 'online'))
    const from = sb.frames.length
    const cutAt = Date.now()
    // The network is cut: this client stops reading, so it answers no protocol ping.
    ;(sa.ws as unknown as { _socket: { pause(): void } })._socket.pause()
    await sb.next(presenceOf(a.id, 'offline'), { from, timeout: 30_000 })
    expect(Date.now() - cutAt).toBeLessThan(30_000)
  }, 40_000)
})

describe('typing', () => {
  it('shows and clears typing for the other person', async () => {
    const { a, b } = await pair()
    const [sa, sb] = [await open(a), await open(b)]
    sa.send({ type: 'typing.start', to: b.id })
    expect(await sb.next(f => f.type === 'typing.update' && f.typing)).toEqual({ type: 'typing.update', conversationId: expect.any(String), from: a.id, typing: true })
    const from = sb.frames.length
    sa.send({ type: 'typing.stop', to: b.id })
    await sb.next(f => f.type === 'typing.update' && !f.typing, { from })
  })

  it('clears an indicator nobody refreshes within 6 s', async () => {
    const { a, b } = await pair()
    const [sa, sb] = [await open(a), await open(b)]
    sa.send({ type: 'typing.start', to: b.id })
    await sb.next(f => f.type === 'typing.update' && f.typing)
    const shownAt = Date.now()
    const from = sb.frames.length
    await sb.next(f => f.type === 'typing.update' && !f.typing, { from, timeout: 6000 })
    const shown = Date.now() - shownAt
    expect(shown).toBeGreaterThanOrEqual(4500)
    expect(shown).toBeLessThan(6000)
  })

  it('clears at once when the typing socket closes', async () => {
    const { a, b } = await pair()
    const [sa, sb] = [await open(a), await open(b)]
    sa.send({ type: 'typing.start', to: b.id })
    await sb.next(f => f.type === 'typing.update' && f.typing)
    const from = sb.frames.length
    sa.close()
    await sb.next(f => f.type === 'typing.update' && !f.typing, { from, timeout: 1000 })
  })

  it('refuses typing to someone who is not a contact', async () => {
    const { a } = await pair()
    const sa = await open(a)
    const from = sa.frames.length
    sa.send({ type: 'typing.start', to: randomUUID() })
    expect((await sa.next(f => f.type === 'error', { from })).code).toBe('not_a_contact')
  })
})

describe('read receipts', () => {
  async function send(socket: TestSocket, to: string, body: string) {
    const from = socket.frames.length
    socket.send({ type: 'chat.send', to, body, clientId: randomUUID() })
    return socket.next(f => f.type === 'chat.ack', { from })
  }

  it('tells every device of the sender, and the reader\'s other devices; persists the watermark', async () => {
    const { a, b } = await pair()
    const [a1, a2, b1, b2] = [await open(a), await open(a), await open(b), await open(b)]
    const first = await send(a1, b.id, 'first')
    const second = await send(a1, b.id, 'second')
    expect((await b.client.get('/api/contacts')).body[0].unread).toBe(2)
    b1.send({ type: 'read.update', messageIds: [second.id] })
    for (const socket of [a1, a2, b2]) {
      const receipt = await socket.next(f => f.type === 'read.update')
      // Everything up to the one named is read: the watermark covers the first message too.
      expect(receipt).toMatchObject({ by: b.id, seq: second.seq })
      expect(receipt.messageIds.sort()).toEqual([first.id, second.id].sort())
    }
    expect((await b.client.get('/api/contacts')).body[0].unread).toBe(0)
    const [contact] = (await a.client.get('/api/contacts')).body
    expect(contact.theirRead.seq).toBe(2)
    expect(contact.theirRead.at).toBeTruthy()
  })

  it('ignores messages not addressed to the reader', async () => {
    const { a, b } = await pair()
    const sa = await open(a)
    const own = await send(sa, b.id, 'mine')
    sa.send({ type: 'read.update', messageIds: [own.id, randomUUID()] })
    await sa.roundTrip()
    expect(sa.frames.filter(f => f.type === 'read.update')).toEqual([])
    expect((await a.client.get('/api/contacts')).body[0].theirRead.seq).toBe(0)
  })

  it('works over REST too, and refuses a bad body', async () => {
    const { a, b } = await pair()
    const sa = await open(a)
    const ack = await send(sa, b.id, 'hello')
    expect((await b.client.post('/api/read-receipt', { messageIds: [ack.id] })).status).toBe(204)
    await sa.next(f => f.type === 'read.update' && f.by === b.id)
    expect((await b.client.post('/api/read-receipt', { messageIds: ['nope'] })).status).toBe(400)
    expect((await b.client.post('/api/read-receipt', { messageIds: [] })).status).toBe(400)
  })

  it('sends none, and shows none, when a person turns receipts off', async () => {
    const { a, b } = await pair()
    await b.client.request('PATCH', '/api/me', { readReceipts: false })
    const [sa, sb] = [await open(a), await open(b)]
    const toB = await send(sa, b.id, 'will you tell me?')
    const toA = await send(sb, a.id, 'and you?')
    sb.send({ type: 'read.update', messageIds: [toB.id] })
    sa.send({ type: 'read.update', messageIds: [toA.id] })
    // B's own devices still learn B read it (badges clear); A hears nothing of it.
    await sb.next(f => f.type === 'read.update' && f.by === b.id)
    await sa.next(f => f.type === 'read.update' && f.by === a.id)
    await sa.roundTrip()
    await sb.roundTrip()
    expect(sa.frames.filter(f => f.type === 'read.update' && f.by === b.id)).toEqual([])
    expect(sb.frames.filter(f => f.type === 'read.update' && f.by === a.id)).toEqual([])
    expect((await a.client.get('/api/contacts')).body[0].theirRead).toEqual({ seq: 0, at: null })
    expect((await b.client.get('/api/contacts')).body[0].theirRead).toEqual({ seq: 0, at: null })
    expect((await b.client.get('/api/contacts')).body[0].unread).toBe(0)
  })

  it('shows receipts made while the sender was away when they come back', async () => {
    const { a, b } = await pair()
    const sa = await open(a)
    const ack = await send(sa, b.id, 'read me later')
    sa.close()
    await b.client.post('/api/read-receipt', { messageIds: [ack.id] })
    expect((await a.client.get('/api/contacts')).body[0].theirRead.seq).toBe(ack.seq)
  })
})
