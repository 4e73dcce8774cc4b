import { randomUUID } from 'node:crypto'
import type { ParsedMail } from 'mailparser'
import { describe, expect, it, vi } from 'vitest'
import { errorOf, framesOf, onInstance, presenceOf, useInstances } from '../support/attack'
import type { Answer } from '../support/client'
import { pairUp, type Person } from '../support/people'
import type { Frame, TestSocket } from '../support/socket'

// One ordinary account adds people to learn about them. Before, adding an address answered
// differently when it had an account, and the added person's presence, last seen, typing and
// read receipts reached the adder at once, without the added person ever agreeing. Now an add
// answers alike either way (an account waiting for its first sign-in is made, and an invitation
// mailed at most once a day per address), the added person sees a request they accept or block,
// and nothing of them reaches the adder until they accept. Under `services` the adder and the
// added person are on different instances; a contact of the added person who did accept sits on
// the adder's instance, so that what they hear shows what the adder would have heard.

const chat = useInstances()

/** An address nobody uses, as long as the people's (`label-xxxxxxxx@example.org`, label of 5). */
const lookAlike = () => `never-${randomUUID().slice(0, 8)}@example.org`

const invitationsTo = (email: string) => chat.mail.mails.filter((mail: ParsedMail) => /wants to chat with you/.test(mail.subject ?? '') && [mail.to].flat().some(to => to?.value.some(address => address.address === email)))

/** Everything an adder sees of an answer but the date, the request id and the page nonce, and the body's shape. */
function seen(answer: Answer) {
  const headers = [...answer.headers]
    .filter(([name]) => name !== 'date' && name !== 'x-request-id')
    .map(([name, value]) => [name, value.replace(/'nonce-[^']+'/g, `'nonce'`)])
  const shape = (value: unknown): unknown => value && typeof value === 'object' ? Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, shape(inner)])) : typeof value
  return { status: answer.status, headers, body: shape(answer.body) }
}

/** Someone's view of one direct conversation, in both lists. */
async function views(person: Person, conversationId: string) {
  const contact = (await person.client.get('/api/contacts')).body.find((entry: { conversationId: string }) => entry.conversationId === conversationId)
  const conversation = (await person.client.get('/api/conversations')).body.find((entry: { id: string }) => entry.id === conversationId)
  return { contact, conversation }
}

/** Opens and closes a socket of `person` on `server`, so their contacts hear them come and go. */
async function comeAndGo(person: Person, server = chat.other) {
  const socket = await chat.open(person, server)
  socket.close()
  await socket.closedWith()
}

describe('adding someone answers alike whether or not they have an account', () => {
  it('gives the same status, headers and body shape, and mails one invitation a day to an address without an account', async () => {
    const adder = await chat.person('adder')
    const known = await chat.person('known', 1)
    const unknown = lookAlike()
    expect(unknown.length).toBe(known.email.length)

    const toKnown = await adder.client.post('/api/contacts', { email: known.email })
    const toUnknown = await adder.client.post('/api/contacts', { email: unknown })
    expect(toKnown.status).toBe(201)
    expect(seen(toUnknown)).toEqual(seen(toKnown))
    // The name shown is what the address says in both cases (the known person never chose one).
    expect(toKnown.body.user).toEqual({ id: known.id, email: known.email, displayName: known.email.split('@')[0] })
    expect(toUnknown.body.user).toMatchObject({ email: unknown, displayName: unknown.split('@')[0] })

    // Added again, by the same person and by two others on either instance: still one invitation.
    expect((await adder.client.post('/api/contacts', { email: unknown })).status).toBe(201)
    for (const [index, label] of ['second', 'third'].entries()) {
      const other = await chat.person(label, index)
      expect((await other.client.post('/api/contacts', { email: unknown })).status).toBe(201)
    }
    // An invitation sent after all of them: once it is in, any second one to `unknown` would be too.
    const sentinel = lookAlike()
    expect((await adder.client.post('/api/contacts', { email: sentinel })).status).toBe(201)
    await vi.waitFor(() => expect(invitationsTo(sentinel).length).toBe(1), { timeout: 10_000 })
    expect(invitationsTo(unknown).length).toBe(1)
    expect(invitationsTo(known.email)).toEqual([])
  })

  it('answers alike even once the adder has no invitations left to send', async () => {
    const adder = await chat.person('adder')
    const known = await chat.person('known', 1)
    // A room with 20 addresses nobody uses spends the day's invitations in one request.
    const strangers = Array.from({ length: 20 }, () => lookAlike())
    expect((await adder.client.post('/api/rooms', { name: 'Many', visibility: 'private', members: strangers })).status).toBe(201)

    await vi.waitFor(() => expect(strangers.filter(email => invitationsTo(email).length === 1).length).toBe(20), { timeout: 10_000 })

    const toKnown = await adder.client.post('/api/contacts', { email: known.email })
    const unknown = lookAlike()
    const toUnknown = await adder.client.post('/api/contacts', { email: unknown })
    expect(toKnown.status).toBe(201)
    expect(seen(toUnknown)).toEqual(seen(toKnown))
    // The account waits for its owner, but the 21st mail of the day is not sent: a sign-in code
    // mailed after it has come, and no invitation before it.
    await chat.person('later')
    expect(invitationsTo(unknown)).toEqual([])
  })

  it(`throttles adds: 10 pass, then 429 with Retry-After, wherever they are sent`, async () => {
    const adder = await chat.person('adder')
    const answers: Answer[] = []
    for (let i = 0; i < 14; i++) answers.push(await onInstance(adder, chat.at(i)).post('/api/contacts', { email: `added${i}-${randomUUID().slice(0, 8)}@example.org` }))
    const passed = answers.filter(answer => answer.status === 201).length
    console.log(`[contacts] ${passed} of 14 adds passed`)
    expect(answers.slice(0, 10).map(answer => answer.status)).toEqual(Array.from({ length: 10 }, () => 201))
    expect(answers.slice(10).map(answer => answer.status)).toEqual([429, 429, 429, 429])
    const refusal = answers[10]!
    const retryAfter = Number(refusal.headers.get('retry-after'))
    expect(retryAfter).toBeGreaterThan(0)
    expect(refusal.body).toMatchObject({ statusCode: 429, data: { code: 'throttled', retryAfter } })
  })
})

describe('nothing of the added person reaches the adder until they accept', () => {
  it('hides presence, last seen, typing and read receipts; the added person sees a request and accepting opens them both ways', async () => {
    const adder = await chat.person('adder')
    const added = await chat.person('added', 1)
    const friend = await chat.person('friend')
    await pairUp(added, friend)
    // The added person has been on and off: they have a last-seen time to hide.
    await comeAndGo(added)

    const added1 = await adder.client.post('/api/contacts', { email: added.email })
    const conversationId = added1.body.conversationId as string
    const adderSocket = await chat.open(adder)
    const friendSocket = await chat.open(friend)
    // The added person comes online and goes: their friend hears it, the adder does not.
    const from = adderSocket.frames.length
    const heard = friendSocket.frames.length
    await comeAndGo(added)
    await friendSocket.next(frame => presenceOf(added.id)(frame) && frame.status === 'offline', { from: heard })
    await adderSocket.roundTrip()
    expect(framesOf(adderSocket, presenceOf(added.id), from)).toEqual([])
    expect(adderSocket.frames.filter(presenceOf(added.id))).toEqual([])

    const hidden = { status: 'offline', lastSeen: null }
    const { contact, conversation } = await views(adder, conversationId)
    expect(contact).toMatchObject({ presence: hidden, theirRead: { seq: 0, at: null }, request: 'outgoing' })
    expect(conversation).toMatchObject({ request: 'outgoing', peer: { presence: hidden, theirRead: { seq: 0, at: null } } })
    const theirs = await views(added, conversationId)
    expect(theirs.contact.request).toBe('incoming')
    expect(theirs.conversation.request).toBe('incoming')

    // Typing is refused, either way it is addressed.
    for (const frame of [{ type: 'typing.start', to: added.id }, { type: 'typing.start', conversationId }]) {
      const start = adderSocket.frames.length
      adderSocket.send(frame)
      expect(await adderSocket.next(f => f.type === 'error', { from: start })).toMatchObject({ code: 'forbidden' })
    }

    // The adder may write (that is the request); the added person reading it sends no receipt.
    const addedSocket = await chat.open(added, chat.other)
    const addedDevice = await chat.open(added)
    const message = await deliver(adderSocket, addedSocket, { to: added.id, body: 'hello?' })
    const before = adderSocket.frames.length
    addedSocket.send({ type: 'read.update', conversationId, seq: message.seq })
    await addedDevice.next(frame => frame.type === 'read.update' && frame.seq === message.seq)
    await adderSocket.roundTrip()
    expect(framesOf(adderSocket, frame => frame.type === 'read.update', before)).toEqual([])
    expect((await views(adder, conversationId)).contact.theirRead).toEqual({ seq: 0, at: null })

    // Accepted: the adder hears it at once, as the added person's presence; from then on their
    // comings and goings reach the adder, and the adder's reach them.
    const beforeAccept = adderSocket.frames.length
    expect((await added.client.post(`/api/contacts/${adder.id}/accept`)).status).toBe(204)
    await adderSocket.next(frame => presenceOf(added.id)(frame) && frame.status === 'online', { from: beforeAccept })
    addedSocket.close()
    addedDevice.close()
    await Promise.all([addedSocket.closedWith(), addedDevice.closedWith()])
    const back = await chat.open(added, chat.other)
    await adderSocket.next(frame => presenceOf(added.id)(frame) && frame.status === 'online', { from })
    expect((await views(adder, conversationId)).contact).toMatchObject({ presence: { status: 'online' }, request: null })
    // A socket opening learns its contacts' presence: the adder's is in it now.
    expect(back.frames.find(presenceOf(adder.id))).toMatchObject({ status: 'online' })
    // And typing goes through.
    adderSocket.send({ type: 'typing.start', conversationId })
    await back.next(frame => frame.type === 'typing.update' && frame.from === adder.id && frame.typing)
  })
})

describe('blocking', () => {
  it('refuses the adder\'s messages with blocked and lets nothing of the blocker reach them', async () => {
    const adder = await chat.person('adder')
    const blocker = await chat.person('blocker', 1)
    const friend = await chat.person('friend')
    await pairUp(blocker, friend)
    const conversationId = await pairUp(adder, blocker)
    const adderSocket = await chat.open(adder)
    const friendSocket = await chat.open(friend)
    // Accepted first: presence flows, so its stopping is the block's doing.
    await comeAndGo(blocker)
    await adderSocket.next(frame => presenceOf(blocker.id)(frame) && frame.status === 'offline')
    const blockerSocket = await chat.open(blocker, chat.other)
    const blockerDevice = await chat.open(blocker)
    const earlier = await deliver(adderSocket, blockerSocket, { to: blocker.id, body: 'before the block' })

    expect((await blocker.client.post(`/api/contacts/${adder.id}/block`)).status).toBe(204)
    expect((await views(blocker, conversationId)).contact.request).toBe('blocked')

    // The adder's messages are refused and stored nowhere.
    const clientId = randomUUID()
    const sent = adderSocket.frames.length
    adderSocket.send({ type: 'chat.send', to: blocker.id, body: 'hello?', clientId })
    expect(await adderSocket.next(frame => frame.type === 'error' || frame.type === 'chat.ack', { from: sent })).toMatchObject({ type: 'error', code: 'blocked', ref: clientId })

    // Nothing of the blocker reaches the adder: presence, typing, messages, receipts.
    const from = adderSocket.frames.length
    const heard = friendSocket.frames.length
    blockerSocket.send({ type: 'typing.start', conversationId })
    expect(await blockerSocket.next(errorOf('forbidden'))).toBeTruthy()
    const reply = randomUUID()
    const replied = blockerSocket.frames.length
    blockerSocket.send({ type: 'chat.send', conversationId, body: 'go away', clientId: reply })
    expect(await blockerSocket.next(frame => frame.type === 'error' || frame.type === 'chat.ack', { from: replied })).toMatchObject({ type: 'error', code: 'blocked', ref: reply })
    blockerSocket.send({ type: 'read.update', conversationId, seq: earlier.seq })
    await blockerDevice.next(frame => frame.type === 'read.update' && frame.seq === earlier.seq)
    await comeAndGo(blocker)
    blockerSocket.close()
    blockerDevice.close()
    await friendSocket.next(frame => presenceOf(blocker.id)(frame) && frame.status === 'offline', { from: heard })
    await adderSocket.roundTrip()
    expect(adderSocket.frames.slice(from).filter(frame => frame.type !== 'pong')).toEqual([])
    expect((await views(adder, conversationId)).contact).toMatchObject({ presence: { status: 'offline', lastSeen: null }, theirRead: { seq: 0, at: null } })
    const stored = (await adder.client.get(`/api/conversations/${conversationId}/messages?after=0`)).body.messages
    expect(stored.map((message: { body: string }) => message.body)).toEqual(['before the block'])
  })
})

/** Sends a message from one socket and waits until the other has it. */
async function deliver(from: TestSocket, to: TestSocket, frame: { to: string, body: string }): Promise<Frame> {
  const clientId = randomUUID()
  from.send({ type: 'chat.send', ...frame, clientId })
  await from.next(f => f.type === 'chat.ack' && f.clientId === clientId)
  return to.next(f => f.type === 'chat.receive' && f.body === frame.body)
}
