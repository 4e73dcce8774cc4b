import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import type { WebSocket } from 'ws'
import type { Method, SocketLike } from '#shared/sdk/api'
import { NatterClient, type ClientOptions } from '#shared/sdk/client'
import { NodeTransport } from '#shared/sdk/node'
import type { Conversation, RoomUpdate } from '#shared/types/conversations'
import type { ServerFrame, StreamFrame } from '#shared/types/frames'
import { realServices, serviceUrls } from '../support/backends'
import { useChatServer } from '../support/chat-server'
import { Client } from '../support/client'
import { startMailCatcher, type MailCatcher } from '../support/mail-catcher'
import { aboutRoom, roundTrip, streamOf, Tab } from '../support/natter'
import { pairUp, signedInPerson, type Person } from '../support/people'
import { startServer, type TestServer } from '../support/server'

const chat = useChatServer()

/**
 * A Node transport that also keeps every frame its sockets got (before the client orders, holds or
 * drops any) and every path it fetched; hold() keeps frames from the client, as a slow network
 * would, until release().
 */
class WireTransport extends NodeTransport {
  readonly wire: ServerFrame[] = []
  readonly fetched: string[] = []
  private held: Array<() => void> | null = null

  hold() {
    this.held ??= []
  }

  release() {
    const held = this.held ?? []
    this.held = null
    for (const deliver of held) deliver()
  }

  override fetch(path: string, init: { method: Method, headers: Record<string, string>, body?: string }) {
    this.fetched.push(`${init.method} ${path}`)
    return super.fetch(path, init)
  }

  override openSocket(path: string): SocketLike {
    const ws = super.openSocket(path) as unknown as WebSocket
    const socket: SocketLike = {
      get readyState() {
        return ws.readyState
      },
      onopen: null,
      onmessage: null,
      onclose: null,
      onerror: null,
      send: text => ws.send(text),
      close: (code, reason) => ws.close(code, reason)
    }
    ws.onopen = event => socket.onopen?.(event)
    ws.onclose = event => socket.onclose?.(event)
    ws.onerror = event => socket.onerror?.(event)
    ws.onmessage = (event) => {
      const data = String(event.data)
      this.wire.push(JSON.parse(data) as ServerFrame)
      const deliver = () => socket.onmessage?.({ data })
      if (this.held) this.held.push(deliver)
      else deliver()
    }
    return socket
  }
}

type WireTab = Tab & { transport: WireTransport }
const tabs: WireTab[] = []
afterEach(() => {
  for (const tab of tabs.splice(0)) tab.close()
})

/** A person's tab on the protocol client, on their own server unless told another. Its own pings are rare, so a pong answers the test's. */
function tabOf(person: Person, options: Partial<ClientOptions> & { base?: string } = {}): WireTab {
  const { base = person.client.base, ...rest } = options
  const transport = new WireTransport(base, { cookies: person.client.cookies, headers: person.headers })
  const client = new NatterClient({ transport, userId: person.id, pingEveryMs: 60_000, pongTimeoutMs: 10_000, firstRetryMs: 100, maxRetryMs: 1000, ...rest })
  const tab = Object.assign(new Tab(client), { transport })
  tabs.push(tab)
  return tab
}

/** An open tab whose socket the server has finished opening (memberships read, presence told). */
async function open(person: Person, options: Partial<ClientOptions> & { base?: string } = {}): Promise<WireTab> {
  const tab = tabOf(person, options)
  await tab.open()
  await roundTrip(tab)
  return tab
}

async function named(person: Person, displayName: string) {
  expect((await person.client.request('PATCH', '/api/me', { displayName })).status).toBe(200)
}

async function createRoom(owner: Person, body: Record<string, unknown>): Promise<Conversation> {
  const created = await owner.client.post('/api/rooms', body)
  expect(created.status, JSON.stringify(created.body)).toBe(201)
  return created.body.conversation
}

async function conversation(person: Person, id: string) {
  const answer = await person.client.get(`/api/conversations/${id}`)
  expect(answer.status, JSON.stringify(answer.body)).toBe(200)
  return answer.body as { conversation: Conversation, members: Array<{ user: { id: string, displayName: string, email?: string }, role: string, presence: { status: string, lastSeen: string | null }, readSeq: number | null }> }
}

/** Every event of the conversation after `after`, through the endpoint's pages. */
async function allEvents(person: Person, id: string, after = 0): Promise<StreamFrame[]> {
  const events: StreamFrame[] = []
  for (;;) {
    const page = await person.client.get(`/api/conversations/${id}/events?after=${after}&limit=500`)
    expect(page.status).toBe(200)
    events.push(...page.body.events)
    if (page.body.events.length < 500) return events
    after = page.body.events.at(-1).seq
  }
}

async function allMessages(person: Person, id: string) {
  const messages: Array<{ seq: number }> = []
  for (let after = 0; ;) {
    const page = await person.client.get(`/api/conversations/${id}/messages?after=${after}&limit=200`)
    expect(page.status).toBe(200)
    messages.push(...page.body.messages)
    if (page.body.messages.length < 200) return messages
    after = page.body.messages.at(-1).seq
  }
}

/** History's messages without what it adds for the one asking (reactions with `mine`, reply previews), as the stream carries them. */
const withoutViewerFields = (messages: Array<{ seq: number }>) => messages.map(({ reactions: _reactions, replyPreview: _preview, ...message }: Record<string, unknown> & { seq: number }) => message)

/** Sends from a tab and resolves with its ack. */
async function say(tab: Tab, conversationId: string, body: string) {
  const entry = tab.client.sendMessage(conversationId, body)
  return tab.next('chat.ack', ack => ack.clientId === entry.clientId)
}

/** Waits for the next error frame the tab gets after `from`. */
const nextError = (tab: Tab, from: number) => tab.next('error', () => true, { from })

describe('creating a room', () => {
  it('takes members by address, with an account or without, and the invited address finds the room at its first sign-in', async () => {
    const [ada, bob] = await Promise.all([chat.person('ada'), chat.person('bob')])
    await named(ada, 'Ada Lovelace')
    const newcomer = `new-${randomUUID().slice(0, 8)}@example.org`
    const room = await createRoom(ada, { name: '  Design  ', topic: 'Pixels', visibility: 'private', members: [bob.email, newcomer.toUpperCase(), ada.email, bob.email] })
    expect(room).toEqual({
      id: expect.any(String), kind: 'room', name: 'Design', topic: 'Pixels', visibility: 'private', memberCount: 3, role: 'owner', muted: false,
      peer: null, lastMessage: null, lastSeq: 3, readSeq: 0, unread: 0, mentions: 0, request: null, membersCanInvite: true, roomMentions: true
    })

    // One invitation to the address without an account, none to Bob.
    const invitation = await vi.waitFor(() => {
      const mail = chat.mail.mails.find(m => m.subject?.includes('Ada Lovelace') && JSON.stringify(m.to).includes(newcomer))
      if (!mail) throw new Error('no invitation yet')
      return mail
    }, { timeout: 10_000, interval: 25 })
    expect(invitation.text).toContain('Sign in with this address')
    expect(chat.mail.mails.filter(m => JSON.stringify(m.to).includes(bob.email) && !/^\d{6} /.test(m.subject ?? ''))).toEqual([])

    // The members as Ada sees them: ordered by id, no addresses, the same for both kinds of address.
    const detail = await conversation(ada, room.id)
    expect(detail.conversation).toEqual(room)
    expect(detail.members.map(member => member.user.id)).toEqual([...detail.members.map(member => member.user.id)].sort())
    const byName = Object.fromEntries(detail.members.map(member => [member.user.displayName, member]))
    expect(byName['Ada Lovelace']).toMatchObject({ user: { id: ada.id }, role: 'owner', readSeq: 0 })
    const bobName = bob.email.split('@')[0]!
    const newName = newcomer.split('@')[0]!
    for (const name of [bobName, newName]) {
      expect(byName[name]).toEqual({ user: { id: expect.any(String), displayName: name }, role: 'member', presence: { status: 'offline', lastSeen: null }, readSeq: 0 })
    }

    // The newcomer's first sign-in: a new account, and the room is there, whole.
    const client = new Client(chat.server.url)
    const ip = { 'x-forwarded-for': `10.250.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}` }
    const since = chat.mail.mails.length
    expect((await client.request('POST', '/api/auth/request-otp', { email: newcomer }, { headers: ip })).status).toBe(202)
    const otp = await chat.mail.codeFor(newcomer, since)
    const verified = await client.request('POST', '/api/auth/verify-otp', { email: newcomer, otp }, { headers: ip })
    expect(verified.status).toBe(200)
    expect(verified.body.firstSignIn).toBe(true)
    expect(verified.body.user.id).toBe(byName[newName]!.user.id)
    const mine = (await client.request('GET', '/api/conversations', undefined, { headers: ip })).body as Conversation[]
    expect(mine).toEqual([{ ...room, role: 'member' }])
    const events = (await client.request('GET', `/api/conversations/${room.id}/events?after=0`, undefined, { headers: ip })).body.events as RoomUpdate[]
    expect(events.map(event => [event.seq, event.change, event.userId])).toEqual([[1, 'created', ada.id], [2, 'added', expect.any(String)], [3, 'added', expect.any(String)]])
  })

  it('answers an added address the same whether or not it has an account', async () => {
    const [ada, cy] = await Promise.all([chat.person('ada'), chat.person('cy')])
    const room = await createRoom(ada, { name: 'Adds', visibility: 'private' })
    expect(room).toMatchObject({ memberCount: 1, lastSeq: 1 })
    const a = await open(ada)
    a.client.track(room.id, room.lastSeq)
    const stranger = `stranger-${randomUUID().slice(0, 8)}@example.org`
    const answers = []
    for (const email of [cy.email, stranger]) {
      const added = await ada.client.post(`/api/rooms/${room.id}/members`, { email })
      expect(added.status).toBe(201)
      answers.push(added.body)
    }
    const shape = (answer: { member: { user: { id: string, displayName: string } } }) => ({ ...answer, member: { ...answer.member, user: { ...answer.member.user, id: 'id', displayName: 'name' } } })
    expect(shape(answers[0])).toEqual(shape(answers[1]))
    expect(answers[0].member).toEqual({ user: { id: cy.id, displayName: cy.email.split('@')[0] }, role: 'member', presence: { status: 'offline', lastSeen: null }, readSeq: 0 })
    // The room's stream says so for both, in the same words.
    const added = await a.next('room.update', frame => frame.seq === 3)
    const first = a.frames('room.update').find(frame => frame.seq === 2)!
    expect(Object.keys(first).sort()).toEqual(Object.keys(added).sort())
    expect([first.change, first.userId, added.change, added.userId]).toEqual(['added', cy.id, 'added', answers[1].member.user.id])
    // Adding someone already in the room changes nothing.
    expect((await ada.client.post(`/api/rooms/${room.id}/members`, { email: cy.email })).status).toBe(201)
    expect((await conversation(ada, room.id)).conversation).toMatchObject({ memberCount: 3, lastSeq: 3 })
  })

  it('lists rooms and direct conversations together, newest activity first, with what each one needs', async () => {
    const [ada, bob] = await Promise.all([chat.person('ada'), chat.person('bob')])
    const direct = await pairUp(ada, bob)
    const first = await createRoom(ada, { name: 'First', visibility: 'public', members: [bob.email] })
    const second = await createRoom(ada, { name: 'Second', visibility: 'private', members: [bob.email], membersCanInvite: false })
    const order = async (person: Person) => ((await person.client.get('/api/conversations')).body as Conversation[]).map(c => c.id)
    expect(await order(ada)).toEqual([second.id, first.id, direct])

    const a = await open(ada)
    await say(a, direct, 'hello you')
    expect(await order(ada)).toEqual([direct, second.id, first.id])
    const sent = await say(a, first.id, 'hello room')
    expect(await order(ada)).toEqual([first.id, direct, second.id])
    expect(await order(bob)).toEqual([first.id, direct, second.id])

    const list = (await bob.client.get('/api/conversations')).body as Conversation[]
    expect(list[0]).toMatchObject({
      kind: 'room', name: 'First', visibility: 'public', role: 'member', memberCount: 2, lastSeq: 3, readSeq: 0, unread: 1, peer: null, request: null, membersCanInvite: true,
      lastMessage: { id: sent.id, seq: 3, from: ada.id, to: null, body: 'hello room' }
    })
    expect(list[1]).toMatchObject({
      id: direct, kind: 'direct', name: ada.email.split('@')[0], topic: null, visibility: null, memberCount: 2, role: 'member', request: null, membersCanInvite: null,
      peer: { user: { id: ada.id, email: ada.email }, presence: { status: 'online' } }, unread: 1, lastMessage: { from: ada.id, to: bob.id, body: 'hello you' }
    })
    expect(list[2]).toMatchObject({ name: 'Second', visibility: 'private', membersCanInvite: false, unread: 0, lastMessage: null })

    // Reading clears the count, and the member list shows where Bob got to.
    const b = await open(bob)
    b.client.markRead(first.id, 3)
    await b.next('read.update', frame => frame.conversationId === first.id)
    expect((await conversation(bob, first.id)).conversation).toMatchObject({ unread: 0, readSeq: 3 })
    const { members } = await conversation(ada, first.id)
    expect(members.find(member => member.user.id === bob.id)).toMatchObject({ role: 'member', readSeq: 3, presence: { status: 'online' } })
    expect(members.find(member => member.user.id === ada.id)).toMatchObject({ role: 'owner', readSeq: 0, presence: { status: 'online' } })
    expect(members.every(member => member.user.email === undefined)).toBe(true)
  })
})

describe('what is refused', () => {
  const fine = { name: 'Fine', visibility: 'private' }
  const badBodies: Array<[string, unknown]> = [
    ['no body at all', {}],
    ['an empty name', { ...fine, name: '' }],
    ['a name of spaces', { ...fine, name: '    ' }],
    ['a name over 80 characters', { ...fine, name: 'x'.repeat(81) }],
    ['a name with a control character', { ...fine, name: 'ring\u0007' }],
    ['a name with a right-to-left override', { ...fine, name: 'evil\u202Egpj.exe' }],
    ['a name with a zero-width space', { ...fine, name: 'ad\u200Bmins' }],
    ['a name that is not text', { ...fine, name: 42 }],
    ['a topic over 250 characters', { ...fine, topic: 't'.repeat(251) }],
    ['a topic with a line separator', { ...fine, topic: 'one\u2028two' }],
    ['no visibility', { name: 'Fine' }],
    ['an unknown visibility', { ...fine, visibility: 'secret' }],
    ['members that are not a list', { ...fine, members: 'bob@example.org' }],
    ['more than 100 members', { ...fine, members: Array.from({ length: 101 }, (_, i) => `many-${i}@example.org`) }],
    ['a member with a display name', { ...fine, members: ['Eve <eve@example.org>'] }],
    ['a member with a header injected', { ...fine, members: ['eve@example.org\r\nBcc: all@example.org'] }],
    ['two members in one', { ...fine, members: ['eve@example.org,mallory@example.org'] }],
    ['a quoted member', { ...fine, members: ['"eve"@example.org'] }],
    ['a member with an invisible character', { ...fine, members: ['ev\u200Be@example.org'] }],
    ['a member at an address literal', { ...fine, members: ['eve@[127.0.0.1]'] }],
    ['a member without a domain', { ...fine, members: ['eve@localhost'] }],
    ['membersCanInvite that is not a boolean', { ...fine, membersCanInvite: 'yes' }]
  ]

  it('a bad room body is 400 with the fields named, and nothing is made', async () => {
    const ada = await chat.person('ada')
    const mails = chat.mail.mails.length
    for (const [why, body] of badBodies) {
      const answer = await ada.client.post('/api/rooms', body)
      expect(answer.status, why).toBe(400)
      expect(answer.body.data.code, why).toBe('invalid_body')
      expect(answer.body.data.issues.length, why).toBeGreaterThan(0)
      expect(JSON.stringify(answer.body), why).not.toMatch(/ at .*\.(?:ts|js|mjs):\d+/)
    }
    const raw = await ada.client.request('POST', '/api/rooms', undefined, { raw: '{"name": "Fine", "visibility": ' })
    expect([raw.status, raw.body.data.code]).toEqual([400, 'invalid_json'])
    const huge = await ada.client.post('/api/rooms', { ...fine, topic: 'x'.repeat(17 * 1024) })
    expect([huge.status, huge.body.data.code]).toEqual([413, 'body_too_large'])
    expect((await ada.client.get('/api/conversations')).body).toEqual([])
    expect((await ada.client.get('/api/rooms?q=Fine')).body.filter((row: { joined: boolean }) => row.joined)).toEqual([])
    // An invitation made after them is the first mail since: none of the refused addresses got one.
    const later = `later-${randomUUID().slice(0, 8)}@example.org`
    await createRoom(ada, { ...fine, members: [later] })
    await vi.waitFor(() => {
      if (!chat.mail.mails.slice(mails).some(m => JSON.stringify(m.to).includes(later))) throw new Error('no invitation yet')
    }, { timeout: 10_000, interval: 25 })
    expect(chat.mail.mails.slice(mails).map(m => (m.to as { text: string }).text)).toEqual([later])
  })

  it('a malformed path, query or socket frame about a room is refused and changes nothing; the socket stays open', async () => {
    const [ada, bob] = await Promise.all([chat.person('ada'), chat.person('bob')])
    const room = await createRoom(ada, { name: 'Strict', visibility: 'private', members: [bob.email] })
    const malformed: Array<[string, string, unknown?]> = [
      ['GET', '/api/conversations/not-a-uuid'],
      ['GET', `/api/conversations/${room.id}/events?after=-1`],
      ['GET', `/api/conversations/${room.id}/events?after=abc`],
      ['GET', `/api/conversations/${room.id}/events?limit=501`],
      ['GET', `/api/conversations/${room.id}/events?limit=0`],
      ['GET', `/api/conversations/${room.id}/messages?after=1&before=5`],
      ['GET', `/api/rooms/${room.id}/members?limit=201`],
      ['GET', `/api/rooms/${room.id}/members?after=not-a-uuid`],
      ['GET', `/api/rooms?q=${'q'.repeat(81)}`],
      ['PATCH', `/api/conversations/${room.id}`, {}],
      ['PATCH', `/api/conversations/${room.id}`, { muted: 'yes' }],
      ['POST', `/api/rooms/${room.id}/members`, {}],
      ['POST', `/api/rooms/${room.id}/members`, { email: 'not an address' }],
      ['DELETE', `/api/rooms/${room.id}/members/not-a-uuid`],
      ['PATCH', `/api/rooms/${room.id}/members/${bob.id}`, {}],
      ['PATCH', `/api/rooms/${room.id}/members/${bob.id}`, { role: 'overlord' }],
      ['POST', '/api/rooms/not-a-uuid/join']
    ]
    for (const [method, path, body] of malformed) {
      const answer = await ada.client.request(method, path, body)
      expect([method, path, answer.status, answer.body.data?.code]).toEqual([method, path, 400, 'invalid_body'])
    }

    // Hostile frames on a raw socket: each gets an error frame, nothing else happens.
    const socket = await chat.open(ada)
    const b = await open(bob)
    const clientId = randomUUID()
    const frames: Array<[unknown, string]> = [
      [{ type: 'chat.send', conversationId: room.id, to: bob.id, body: 'both', clientId }, 'invalid_frame'],
      [{ type: 'chat.send', conversationId: 'not-a-uuid', body: 'where?', clientId }, 'invalid_frame'],
      [{ type: 'chat.send', conversationId: room.id, body: 'ring\u0007', clientId }, 'invalid_frame'],
      [{ type: 'typing.start', conversationId: room.id, to: bob.id }, 'invalid_frame'],
      [{ type: 'read.update', conversationId: room.id }, 'invalid_frame'],
      [{ type: 'read.update', conversationId: room.id, seq: -1 }, 'invalid_frame'],
      [{ type: 'read.update', conversationId: room.id, seq: 1.5 }, 'invalid_frame'],
      [{ type: 'read.update', conversationId: room.id, seq: 1, messageIds: [randomUUID()] }, 'invalid_frame'],
      [{ type: 'presence.watch' }, 'invalid_frame'],
      [{ type: 'presence.watch', conversationId: 42 }, 'invalid_frame'],
      [{ type: 'room.update', conversationId: room.id, change: 'removed', userId: bob.id }, 'unknown_type']
    ]
    for (const [frame, code] of frames) {
      const from = socket.frames.length
      socket.send(frame)
      const error = await socket.next(f => f.type === 'error', { from })
      expect([frame, error.code]).toEqual([frame, code])
      if ((frame as { clientId?: string }).clientId) expect(error.ref).toBe(clientId)
    }
    await socket.roundTrip()
    await roundTrip(b)
    expect(aboutRoom(b.heard, room.id)).toEqual([])
    const detail = await conversation(ada, room.id)
    expect(detail.conversation).toMatchObject({ name: 'Strict', memberCount: 2, lastSeq: 2, muted: false })
    expect(detail.members.map(member => member.readSeq)).toEqual([0, 0])

    // A read past the end reads up to the end, no further.
    socket.send({ type: 'read.update', conversationId: room.id, seq: 1_000_000_000 })
    expect(await socket.next(f => f.type === 'read.update')).toMatchObject({ conversationId: room.id, by: ada.id, seq: 2 })
    expect((await conversation(ada, room.id)).conversation.readSeq).toBe(2)
  })

  it('every room path is 401 without a session, and 403 without the CSRF token', async () => {
    const [ada, bob] = await Promise.all([chat.person('ada'), chat.person('bob')])
    const room = await createRoom(ada, { name: 'Guarded', visibility: 'public', members: [bob.email] })
    const paths: Array<[string, string, unknown?]> = [
      ['GET', '/api/conversations'],
      ['GET', `/api/conversations/${room.id}`],
      ['PATCH', `/api/conversations/${room.id}`, { name: 'Taken' }],
      ['GET', `/api/conversations/${room.id}/messages`],
      ['GET', `/api/conversations/${room.id}/events?after=0`],
      ['POST', '/api/rooms', { name: 'Mine now', visibility: 'public' }],
      ['GET', '/api/rooms'],
      ['POST', `/api/rooms/${room.id}/join`],
      ['POST', `/api/rooms/${room.id}/leave`],
      ['GET', `/api/rooms/${room.id}/members`],
      ['POST', `/api/rooms/${room.id}/members`, { email: 'someone@example.org' }],
      ['DELETE', `/api/rooms/${room.id}/members/${bob.id}`],
      ['PATCH', `/api/rooms/${room.id}/members/${bob.id}`, { role: 'admin' }]
    ]
    const anonymous = new Client(chat.server.url)
    for (const [method, path, body] of paths) {
      const answer = await anonymous.request(method, path, body)
      expect([method, path, answer.status, answer.body?.data?.code]).toEqual([method, path, 401, 'unauthenticated'])
    }
    for (const [method, path, body] of paths.filter(([method]) => method !== 'GET')) {
      for (const headers of [{}, { 'x-csrf-token': 'not-the-token' }] as Array<Record<string, string>>) {
        const answer = await ada.client.request(method, path, body, { csrf: false, headers })
        expect([method, path, answer.status, answer.body?.data?.code]).toEqual([method, path, 403, 'csrf_failed'])
      }
    }
    // Nothing changed: not the name, not the members, no event, no second room.
    const detail = await conversation(ada, room.id)
    expect(detail.conversation).toMatchObject({ name: 'Guarded', memberCount: 2, lastSeq: 2 })
    expect(detail.members.find(member => member.user.id === bob.id)?.role).toBe('member')
    expect((await ada.client.get('/api/conversations')).body).toHaveLength(1)
  })

  it('a room one is not in is a 404 on every path and socket frame, the same as a room that does not exist', async () => {
    const [ada, bob, eve] = await Promise.all([chat.person('ada'), chat.person('bob'), chat.person('eve')])
    const room = await createRoom(ada, { name: 'Private', visibility: 'private', members: [bob.email] })
    const a = await open(ada)
    a.client.track(room.id, room.lastSeq)
    const nowhere = randomUUID()
    const paths = (id: string): Array<[string, string, unknown?]> => [
      ['GET', `/api/conversations/${id}`],
      ['GET', `/api/conversations/${id}/messages`],
      ['GET', `/api/conversations/${id}/events?after=0`],
      ['GET', `/api/rooms/${id}/members`],
      ['PATCH', `/api/conversations/${id}`, { name: 'Mine' }],
      ['PATCH', `/api/conversations/${id}`, { muted: true }],
      ['POST', `/api/rooms/${id}/members`, { email: eve.email }],
      ['DELETE', `/api/rooms/${id}/members/${bob.id}`],
      ['PATCH', `/api/rooms/${id}/members/${bob.id}`, { role: 'admin' }],
      ['POST', `/api/rooms/${id}/leave`],
      ['POST', `/api/rooms/${id}/join`]
    ]
    const existing = paths(room.id)
    const missing = paths(nowhere)
    for (const [index, [method, path, body]] of existing.entries()) {
      const answer = await eve.client.request(method, path, body)
      expect([method, path, answer.status, answer.body.data.code]).toEqual([method, path, 404, 'not_found'])
      // Word for word what a room that does not exist answers: nobody learns the room is there.
      const [, otherPath, otherBody] = missing[index]!
      const other = await eve.client.request(method, otherPath, otherBody)
      expect([other.status, other.body.message]).toEqual([404, answer.body.message])
    }

    const e = await open(eve)
    for (const id of [room.id, nowhere]) {
      let from = e.heard.length
      const entry = e.client.sendMessage(id, 'let me in')
      expect(await e.next('error', frame => frame.ref === entry.clientId, { from })).toMatchObject({ code: 'not_found' })
      expect(e.client.outbox.find(entry.clientId)).toMatchObject({ state: 'failed', errorCode: 'not_found' })
      const frames = [
        { type: 'typing.start', conversationId: id },
        { type: 'typing.stop', conversationId: id },
        { type: 'read.update', conversationId: id, seq: 1 },
        { type: 'presence.watch', conversationId: id }
      ] as const
      for (const frame of frames) {
        from = e.heard.length
        e.client.send(frame)
        expect((await nextError(e, from)).code, frame.type).toBe('not_found')
      }
    }
    // Nothing of Eve's got into the room.
    await roundTrip(a)
    expect(aboutRoom(a.heard, room.id).filter(frame => frame.type !== 'chat.ack')).toEqual([])
    const detail = await conversation(ada, room.id)
    expect(detail.conversation).toMatchObject({ name: 'Private', memberCount: 2, lastSeq: 2, muted: false })
    expect(detail.members.map(member => [member.user.id, member.role]).sort()).toEqual([[ada.id, 'owner'], [bob.id, 'member']].sort())
  })

  it('a member without the right is 403 and changes nothing; muting is anyone\'s', async () => {
    const [ada, bob, cy, dan] = await Promise.all([chat.person('ada'), chat.person('bob'), chat.person('cy'), chat.person('dan')])
    const room = await createRoom(ada, { name: 'Managed', topic: 'Rules', visibility: 'private', members: [bob.email, cy.email], membersCanInvite: false })
    const refusals: Array<[string, string, unknown?]> = [
      ['DELETE', `/api/rooms/${room.id}/members/${cy.id}`],
      ['DELETE', `/api/rooms/${room.id}/members/${ada.id}`],
      ['PATCH', `/api/rooms/${room.id}/members/${cy.id}`, { role: 'admin' }],
      ['PATCH', `/api/rooms/${room.id}/members/${bob.id}`, { role: 'admin' }],
      ['PATCH', `/api/conversations/${room.id}`, { name: 'Bob\'s now' }],
      ['PATCH', `/api/conversations/${room.id}`, { topic: 'Mine' }],
      ['PATCH', `/api/conversations/${room.id}`, { membersCanInvite: true }],
      ['PATCH', `/api/conversations/${room.id}`, { muted: true, name: 'Sneaky' }],
      ['POST', `/api/rooms/${room.id}/members`, { email: dan.email }]
    ]
    for (const [method, path, body] of refusals) {
      const answer = await bob.client.request(method, path, body)
      expect([method, path, body, answer.status, answer.body.data.code]).toEqual([method, path, body, 403, 'forbidden'])
    }
    // An admin may not hand out roles either: that is the owner's.
    expect((await ada.client.request('PATCH', `/api/rooms/${room.id}/members/${cy.id}`, { role: 'admin' })).status).toBe(200)
    for (const role of ['admin', 'member']) {
      const answer = await cy.client.request('PATCH', `/api/rooms/${room.id}/members/${bob.id}`, { role })
      expect([answer.status, answer.body.data.code]).toEqual([403, 'forbidden'])
    }
    // Nobody makes a second owner, and the owner keeps their role.
    expect((await ada.client.request('PATCH', `/api/rooms/${room.id}/members/${bob.id}`, { role: 'owner' })).status).toBe(400)
    expect((await ada.client.request('PATCH', `/api/rooms/${room.id}/members/${ada.id}`, { role: 'member' })).status).toBe(403)

    const detail = await conversation(ada, room.id)
    // Only the one role change (seq 4) happened.
    expect(detail.conversation).toMatchObject({ name: 'Managed', topic: 'Rules', memberCount: 3, lastSeq: 4, membersCanInvite: false })
    expect(Object.fromEntries(detail.members.map(member => [member.user.id, member.role]))).toEqual({ [ada.id]: 'owner', [bob.id]: 'member', [cy.id]: 'admin' })

    const muted = await bob.client.request('PATCH', `/api/conversations/${room.id}`, { muted: true })
    expect(muted.status).toBe(200)
    expect(muted.body.conversation).toMatchObject({ muted: true, role: 'member', lastSeq: 4 })
    expect((await conversation(ada, room.id)).conversation.muted).toBe(false)

    // With membersCanInvite on, any member adds people.
    expect((await ada.client.request('PATCH', `/api/conversations/${room.id}`, { membersCanInvite: true })).body.conversation.membersCanInvite).toBe(true)
    const added = await bob.client.post(`/api/rooms/${room.id}/members`, { email: dan.email })
    expect(added.status).toBe(201)
    expect(added.body.member).toMatchObject({ user: { id: dan.id }, role: 'member' })
  })

  it('a private room cannot be joined from outside; a public one can, and shows in the directory', async () => {
    const [ada, eve] = await Promise.all([chat.person('ada'), chat.person('eve')])
    const label = randomUUID().slice(0, 8)
    const hidden = await createRoom(ada, { name: `Hidden ${label}`, visibility: 'private' })
    const open_ = await createRoom(ada, { name: `Open 100%_ ${label}`, topic: 'All welcome', visibility: 'public' })
    const a = await open(ada)
    a.client.track(open_.id, open_.lastSeq)

    const directory = async (q: string) => (await eve.client.get(`/api/rooms?q=${encodeURIComponent(q)}`)).body as Array<{ conversation: Conversation, joined: boolean }>
    expect((await directory(label)).map(row => [row.conversation.id, row.joined])).toEqual([[open_.id, false]])
    expect((await directory(`100%_ ${label}`)).map(row => row.conversation.id)).toEqual([open_.id])
    expect(await directory(`100%x ${label}`)).toEqual([])
    expect((await directory(label))[0]!.conversation).toMatchObject({ name: `Open 100%_ ${label}`, topic: 'All welcome', memberCount: 1, visibility: 'public' })

    const refused = await eve.client.post(`/api/rooms/${hidden.id}/join`)
    expect([refused.status, refused.body.data.code]).toEqual([404, 'not_found'])
    const joined = await eve.client.post(`/api/rooms/${open_.id}/join`)
    expect(joined.status).toBe(200)
    expect(joined.body.conversation).toMatchObject({ id: open_.id, kind: 'room', role: 'member', memberCount: 2, lastSeq: 2 })
    expect(await a.next('room.update', frame => frame.seq === 2)).toMatchObject({ change: 'joined', userId: eve.id, names: { [eve.id]: eve.email.split('@')[0] } })
    expect((await directory(label)).map(row => [row.conversation.id, row.joined])).toEqual([[open_.id, true]])
    // Joining again changes nothing.
    expect((await eve.client.post(`/api/rooms/${open_.id}/join`)).body.conversation).toMatchObject({ memberCount: 2, lastSeq: 2 })
    // Nor can a direct conversation be joined.
    const bob = await chat.person('bob')
    const direct = await pairUp(ada, bob)
    expect((await eve.client.post(`/api/rooms/${direct}/join`)).status).toBe(404)
  })
})

describe('roles', () => {
  it('the owner makes admins; an admin removes members but not admins or the owner; a leaving owner hands the room on', async () => {
    const [ada, bob, cy, dan, fay] = await Promise.all([chat.person('ada'), chat.person('bob'), chat.person('cy'), chat.person('dan'), chat.person('fay')])
    const room = await createRoom(ada, { name: 'Roles', visibility: 'private', members: [bob.email, cy.email] })
    const c = await open(cy)
    c.client.track(room.id, room.lastSeq)
    // Fay and Dan come later than Bob.
    for (const person of [fay, dan]) expect((await ada.client.post(`/api/rooms/${room.id}/members`, { email: person.email })).status).toBe(201)

    // Fay is made admin before Bob; Bob has been in the room longer.
    for (const person of [fay, bob]) {
      const made = await ada.client.request('PATCH', `/api/rooms/${room.id}/members/${person.id}`, { role: 'admin' })
      expect(made.status).toBe(200)
      expect(made.body.member).toMatchObject({ user: { id: person.id }, role: 'admin' })
    }
    expect(await c.next('room.update', frame => frame.change === 'role' && frame.userId === bob.id)).toMatchObject({ by: ada.id, role: 'admin', seq: 7 })

    const removed = await bob.client.request('DELETE', `/api/rooms/${room.id}/members/${dan.id}`)
    expect(removed.status).toBe(204)
    expect(await c.next('room.update', frame => frame.change === 'removed')).toMatchObject({ userId: dan.id, by: bob.id, seq: 8 })
    for (const target of [fay, ada]) {
      const refused = await bob.client.request('DELETE', `/api/rooms/${room.id}/members/${target.id}`)
      expect([refused.status, refused.body.data.code]).toEqual([403, 'forbidden'])
    }
    // Nor does anyone remove themselves: they leave.
    expect((await bob.client.request('DELETE', `/api/rooms/${room.id}/members/${bob.id}`)).status).toBe(400)

    expect((await ada.client.post(`/api/rooms/${room.id}/leave`)).status).toBe(204)
    expect(await c.next('room.update', frame => frame.change === 'left')).toMatchObject({ userId: ada.id, seq: 9 })
    const handed = await c.next('room.update', frame => frame.seq === 10)
    expect(handed).toMatchObject({ change: 'role', userId: bob.id, role: 'owner', names: { [bob.id]: expect.any(String) } })
    expect(handed.by).toBeUndefined()

    const detail = await conversation(bob, room.id)
    expect(detail.conversation).toMatchObject({ role: 'owner', memberCount: 3, lastSeq: 10 })
    expect(Object.fromEntries(detail.members.map(member => [member.user.id, member.role]))).toEqual({ [bob.id]: 'owner', [cy.id]: 'member', [fay.id]: 'admin' })
    expect((await ada.client.get(`/api/conversations/${room.id}`)).status).toBe(404)
    // The new owner's powers are real: Bob removes the admin.
    expect((await bob.client.request('DELETE', `/api/rooms/${room.id}/members/${fay.id}`)).status).toBe(204)
  })

  it('an owner without admins hands the room to the longest-standing member', async () => {
    const [ada, bob, cy] = await Promise.all([chat.person('ada'), chat.person('bob'), chat.person('cy')])
    const room = await createRoom(ada, { name: 'Heirs', visibility: 'private', members: [bob.email] })
    expect((await ada.client.post(`/api/rooms/${room.id}/members`, { email: cy.email })).status).toBe(201)
    expect((await ada.client.post(`/api/rooms/${room.id}/leave`)).status).toBe(204)
    const events = await allEvents(bob, room.id) as RoomUpdate[]
    expect(events.slice(-2).map(event => [event.change, event.userId, event.role])).toEqual([['left', ada.id, undefined], ['role', bob.id, 'owner']])
    expect((await conversation(cy, room.id)).members.find(member => member.user.id === bob.id)?.role).toBe('owner')
  })

  it('a public room its last member left goes to the first who joins it, so it always has an owner', async () => {
    const [ada, bob] = await Promise.all([chat.person('ada'), chat.person('bob')])
    const room = await createRoom(ada, { name: 'Abandoned', visibility: 'public' })
    expect((await ada.client.post(`/api/rooms/${room.id}/leave`)).status).toBe(204)
    const joined = await bob.client.post(`/api/rooms/${room.id}/join`)
    expect(joined.status).toBe(200)
    expect(joined.body.conversation).toMatchObject({ role: 'owner', memberCount: 1 })
    const events = await allEvents(bob, room.id) as RoomUpdate[]
    expect(events.slice(-2).map(event => [event.change, event.userId, event.role])).toEqual([['joined', bob.id, undefined], ['role', bob.id, 'owner']])
    expect((await bob.client.request('PATCH', `/api/conversations/${room.id}`, { topic: 'Mine now' })).status).toBe(200)
  })
})

describe('the timeline', () => {
  it('gives every change the next seq, between the messages, with the names of the people in it', async () => {
    const [ada, bob, cy, dan] = await Promise.all([chat.person('ada'), chat.person('bob'), chat.person('cy'), chat.person('dan')])
    const names = { [ada.id]: 'Ada Lovelace', [bob.id]: 'Bob Babbage', [cy.id]: 'Cy Young', [dan.id]: 'Dan Brown' }
    await Promise.all([named(ada, 'Ada Lovelace'), named(bob, 'Bob Babbage'), named(cy, 'Cy Young'), named(dan, 'Dan Brown')])
    const room = await createRoom(ada, { name: 'Timeline', topic: 'Order', visibility: 'public', members: [bob.email] })
    const [a, b] = await Promise.all([open(ada), open(bob)])
    // Both follow the room from its start: the first frame is a gap the client fills from the events.
    a.client.track(room.id, 0)
    b.client.track(room.id, 0)

    await say(a, room.id, 'one')
    expect((await ada.client.request('PATCH', `/api/conversations/${room.id}`, { name: 'Timeline 2', topic: 'New order' })).status).toBe(200)
    await say(b, room.id, 'two')
    expect((await ada.client.post(`/api/rooms/${room.id}/members`, { email: cy.email })).status).toBe(201)
    expect((await ada.client.request('PATCH', `/api/rooms/${room.id}/members/${bob.id}`, { role: 'admin' })).status).toBe(200)
    expect((await dan.client.post(`/api/rooms/${room.id}/join`)).status).toBe(200)
    expect((await bob.client.request('DELETE', `/api/rooms/${room.id}/members/${cy.id}`)).status).toBe(204)
    expect((await dan.client.post(`/api/rooms/${room.id}/leave`)).status).toBe(204)
    expect((await ada.client.request('PATCH', `/api/rooms/${room.id}/members/${bob.id}`, { role: 'member' })).status).toBe(200)
    await say(a, room.id, 'three')

    const events = await allEvents(ada, room.id)
    expect(events.map(event => event.seq)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1))
    const summary = events.map(event => event.type === 'chat.receive' ? ['message', event.body] : event.type === 'chat.update' ? ['update'] : [event.change, event.userId, event.by, event.name, event.topic, event.role, event.names])
    const only = (...ids: string[]) => Object.fromEntries(ids.map(id => [id, names[id]]))
    expect(summary).toEqual([
      ['created', ada.id, ada.id, 'Timeline', 'Order', undefined, only(ada.id)],
      ['added', bob.id, ada.id, undefined, undefined, undefined, only(bob.id, ada.id)],
      ['message', 'one'],
      ['renamed', undefined, ada.id, 'Timeline 2', 'New order', undefined, only(ada.id)],
      ['message', 'two'],
      ['added', cy.id, ada.id, undefined, undefined, undefined, only(cy.id, ada.id)],
      ['role', bob.id, ada.id, undefined, undefined, 'admin', only(bob.id, ada.id)],
      ['joined', dan.id, undefined, undefined, undefined, undefined, only(dan.id)],
      ['removed', cy.id, bob.id, undefined, undefined, undefined, only(cy.id, bob.id)],
      ['left', dan.id, undefined, undefined, undefined, undefined, only(dan.id)],
      ['role', bob.id, ada.id, undefined, undefined, 'member', only(bob.id, ada.id)],
      ['message', 'three']
    ])
    for (const event of events) {
      expect(event.conversationId).toBe(room.id)
      expect(new Date(event.timestamp).toISOString()).toBe(event.timestamp)
    }
    // What both tabs applied live is exactly the replay, frame for frame.
    for (const tab of [a, b]) {
      await tab.until(() => tab.client.appliedSeq(room.id) === 12)
      expect(streamOf(tab.heard, room.id)).toEqual(events)
    }
    expect(withoutViewerFields(await allMessages(ada, room.id))).toEqual(events.filter(event => event.type === 'chat.receive').map(({ type: _type, ...message }) => message))
    expect((await conversation(ada, room.id)).conversation).toMatchObject({ name: 'Timeline 2', topic: 'New order', memberCount: 2, lastSeq: 12 })
    // Someone removed sees the room up to their removal, and no further.
    expect((await cy.client.get(`/api/conversations/${room.id}/events?after=0`)).status).toBe(404)
  })
})

describe('removing a member', () => {
  it('takes effect at once: nothing more of the room reaches them, and their client finds the room gone', async () => {
    const [ada, bob, cy, dan] = await Promise.all([chat.person('ada'), chat.person('bob'), chat.person('cy'), chat.person('dan')])
    const room = await createRoom(ada, { name: 'Removal', visibility: 'private', members: [bob.email, cy.email, dan.email] })
    const [a, b, c] = await Promise.all([open(ada), open(bob), open(cy)])
    for (const tab of [a, b, c]) tab.client.track(room.id, room.lastSeq)
    b.client.watch(room.id)
    c.client.watch(room.id)
    const gone: Array<[string, string]> = []
    b.client.onGap((id, reason) => gone.push([id, reason]))

    await say(a, room.id, 'before')
    await b.next('chat.receive', frame => frame.body === 'before')
    await say(b, room.id, 'from bob')
    b.client.send({ type: 'typing.start', conversationId: room.id })
    await c.next('typing.update', frame => frame.from === bob.id && frame.typing)

    expect((await ada.client.request('DELETE', `/api/rooms/${room.id}/members/${bob.id}`)).status).toBe(204)
    const removal = await b.next('room.update', frame => frame.change === 'removed')
    expect(removal).toMatchObject({ userId: bob.id, by: ada.id, seq: 7 })
    const wireAtRemoval = b.transport.wire.findIndex(frame => frame.type === 'room.update' && frame.change === 'removed')

    // After it: a message, typing, a watched member coming online, and Cy reading Bob's message.
    const after = await say(a, room.id, 'after')
    a.client.send({ type: 'typing.start', conversationId: room.id })
    const d = await open(dan)
    await c.next('chat.receive', frame => frame.body === 'after')
    await c.next('typing.update', frame => frame.from === ada.id && frame.typing)
    await c.next('presence.update', frame => frame.userId === dan.id && frame.status === 'online')
    c.client.markRead(room.id, after.seq)
    await a.next('read.update', frame => frame.by === cy.id)
    await roundTrip(b)
    const heardSince = b.transport.wire.slice(wireAtRemoval + 1)
    expect(aboutRoom(heardSince, room.id)).toEqual([])
    expect(heardSince.filter(frame => frame.type === 'presence.update')).toEqual([])

    // What Bob tries now is refused as for any room he is not in.
    let from = b.heard.length
    const entry = b.client.sendMessage(room.id, 'still here?')
    expect(await b.next('error', frame => frame.ref === entry.clientId, { from })).toMatchObject({ code: 'not_found' })
    for (const frame of [{ type: 'typing.start', conversationId: room.id }, { type: 'read.update', conversationId: room.id, seq: 7 }, { type: 'presence.watch', conversationId: room.id }] as const) {
      from = b.heard.length
      b.client.send(frame)
      expect((await nextError(b, from)).code, frame.type).toBe('not_found')
    }
    for (const path of [`/api/conversations/${room.id}/events?after=7`, `/api/conversations/${room.id}/messages`, `/api/conversations/${room.id}`]) {
      expect((await bob.client.get(path)).status).toBe(404)
    }
    expect((await bob.client.get('/api/conversations')).body).toEqual([])
    await c.next('chat.receive', frame => frame.body === 'after')
    expect(streamOf(c.heard, room.id).map(frame => frame.seq)).toEqual([5, 6, 7, 8])

    // His client, reconnecting, asks for what it missed and learns the room is gone.
    b.client.stop()
    b.client.start()
    await b.until(() => gone.length > 0)
    expect(gone[0]).toEqual([room.id, 'gone'])
    expect(b.client.tracked().has(room.id)).toBe(false)
    expect((await conversation(ada, room.id)).conversation.memberCount).toBe(3)
    d.close()
  })
  it('keeps a room its client was told is gone, or forgot, gone: its frames still on the way are not applied, until I am added again', async () => {
    const [ada, bob] = await Promise.all([chat.person('ada'), chat.person('bob')])
    const room = await createRoom(ada, { name: 'Late frames', visibility: 'public', members: [bob.email] })
    const [a, b] = await Promise.all([open(ada), open(bob)])
    for (const tab of [a, b]) tab.client.track(room.id, room.lastSeq)
    const gaps: Array<[string, string]> = []
    b.client.onGap((id, reason) => gaps.push([id, reason]))
    const arrived = (change: string) => b.transport.wire.some(frame => frame.type === 'room.update' && frame.change === change && frame.userId === bob.id)

    // Removed while the room's last frames to Bob are still on their way; his client asks first.
    b.transport.hold()
    await say(a, room.id, 'last words')
    expect((await ada.client.request('DELETE', `/api/rooms/${room.id}/members/${bob.id}`)).status).toBe(204)
    await b.until(() => arrived('removed'))
    expect(await b.client.resync(room.id)).toBe(true)
    expect(gaps).toEqual([[room.id, 'gone']])
    let from = b.heard.length
    b.transport.release()
    await roundTrip(b)
    expect(streamOf(b.heard.slice(from), room.id)).toEqual([])
    expect(b.client.tracked().has(room.id)).toBe(false)

    // Added again: his own "added" brings the room back, and its stream goes on from there.
    expect((await ada.client.post(`/api/rooms/${room.id}/members`, { email: bob.email })).status).toBe(201)
    const added = await b.next('room.update', frame => frame.change === 'added' && frame.userId === bob.id, { from })
    expect(b.client.appliedSeq(room.id)).toBe(added.seq)
    await say(a, room.id, 'welcome back')
    expect(await b.next('chat.receive', frame => frame.body === 'welcome back', { from })).toMatchObject({ seq: added.seq + 1 })

    // The page forgets a room it leaves: its own "left", arriving after that, is not applied either.
    b.transport.hold()
    expect((await bob.client.post(`/api/rooms/${room.id}/leave`)).status).toBe(204)
    b.client.forget(room.id)
    await b.until(() => arrived('left'))
    from = b.heard.length
    b.transport.release()
    await roundTrip(b)
    expect(streamOf(b.heard.slice(from), room.id)).toEqual([])
    expect(b.client.tracked().has(room.id)).toBe(false)
    // Joining again brings it back.
    expect((await bob.client.post(`/api/rooms/${room.id}/join`)).status).toBe(200)
    const joined = await b.next('room.update', frame => frame.change === 'joined' && frame.userId === bob.id, { from })
    expect(b.client.appliedSeq(room.id)).toBe(joined.seq)
  })
})

describe('typing in a room', () => {
  it('shows each typist to the others, once per start burst, until it expires or their socket closes', async () => {
    const [ada, bob, cy] = await Promise.all([chat.person('ada'), chat.person('bob'), chat.person('cy')])
    const room = await createRoom(ada, { name: 'Typing', visibility: 'private', members: [bob.email, cy.email] })
    const [a, b, c] = await Promise.all([open(ada), open(bob), open(cy)])
    const typing = (from: string) => (tab: Tab, start = 0) => tab.frames('typing.update', start).filter(frame => frame.from === from)

    a.client.send({ type: 'typing.start', conversationId: room.id })
    b.client.send({ type: 'typing.start', conversationId: room.id })
    expect(await c.next('typing.update', frame => frame.from === ada.id)).toEqual({ type: 'typing.update', conversationId: room.id, from: ada.id, typing: true })
    expect(await c.next('typing.update', frame => frame.from === bob.id)).toEqual({ type: 'typing.update', conversationId: room.id, from: bob.id, typing: true })
    await b.next('typing.update', frame => frame.from === ada.id && frame.typing)
    await a.next('typing.update', frame => frame.from === bob.id && frame.typing)

    // Starts repeated within 2 s are not relayed again; the stop after them is.
    a.client.send({ type: 'typing.start', conversationId: room.id })
    a.client.send({ type: 'typing.start', conversationId: room.id })
    a.client.send({ type: 'typing.stop', conversationId: room.id })
    await c.next('typing.update', frame => frame.from === ada.id && !frame.typing)
    expect(typing(ada.id)(c).map(frame => frame.typing)).toEqual([true, false])
    // Nobody hears their own typing.
    await roundTrip(a)
    expect(typing(ada.id)(a)).toEqual([])

    // Nobody refreshes it: it clears itself 5 s after the start.
    let from = c.heard.length
    a.client.send({ type: 'typing.start', conversationId: room.id })
    await c.next('typing.update', frame => frame.from === ada.id && frame.typing, { from })
    const shownAt = Date.now()
    await c.next('typing.update', frame => frame.from === ada.id && !frame.typing, { from, timeout: 8000 })
    const shown = Date.now() - shownAt
    expect(shown).toBeGreaterThanOrEqual(4500)
    expect(shown).toBeLessThan(6500)
    // After it expired, a start shows again at once.
    from = c.heard.length
    a.client.send({ type: 'typing.start', conversationId: room.id })
    await c.next('typing.update', frame => frame.from === ada.id && frame.typing, { from })

    // Bob's socket closes while he types: his indicator clears at once, not at expiry.
    from = c.heard.length
    b.client.send({ type: 'typing.start', conversationId: room.id })
    await c.next('typing.update', frame => frame.from === bob.id && frame.typing, { from })
    from = c.heard.length
    const closedAt = Date.now()
    b.close()
    await c.next('typing.update', frame => frame.from === bob.id && !frame.typing, { from, timeout: 2000 })
    expect(Date.now() - closedAt).toBeLessThan(2000)
  }, 30_000)
})

describe('read receipts in a room', () => {
  it('tell each author about their own messages, and nobody when either side turned receipts off', async () => {
    const [ada, bob, cy, dan] = await Promise.all([chat.person('ada'), chat.person('bob'), chat.person('cy'), chat.person('dan')])
    const room = await createRoom(ada, { name: 'Receipts', visibility: 'private', members: [bob.email, cy.email, dan.email] })
    const [a, b, otherB, c, d] = await Promise.all([open(ada), open(bob), open(bob), open(cy), open(dan)])
    const a1 = await say(a, room.id, 'a1')
    const c1 = await say(c, room.id, 'c1')
    const a2 = await say(a, room.id, 'a2')
    const receiptsBy = (tab: Tab, reader: string, start = 0) => tab.frames('read.update', start).filter(frame => frame.by === reader)

    b.client.markRead(room.id, a2.seq)
    const toAda = await a.next('read.update', frame => frame.by === bob.id)
    expect({ ...toAda, messageIds: [...toAda.messageIds].sort() }).toEqual({ type: 'read.update', conversationId: room.id, by: bob.id, seq: a2.seq, messageIds: [a1.id, a2.id].sort(), readAt: expect.any(String) })
    expect(await c.next('read.update', frame => frame.by === bob.id)).toMatchObject({ seq: a2.seq, messageIds: [c1.id] })
    const mine = await otherB.next('read.update', frame => frame.by === bob.id)
    expect([...mine.messageIds].sort()).toEqual([a1.id, a2.id, c1.id].sort())
    // Dan wrote nothing: he hears nothing of Bob's reading.
    await roundTrip(d)
    expect(receiptsBy(d, bob.id)).toEqual([])
    const seen = async (viewer: Person) => Object.fromEntries((await conversation(viewer, room.id)).members.map(member => [member.user.id, member.readSeq]))
    expect(await seen(ada)).toEqual({ [ada.id]: 0, [bob.id]: a2.seq, [cy.id]: 0, [dan.id]: 0 })

    // Cy turns receipts off: she hears of nobody's reading, and nobody of hers.
    expect((await cy.client.request('PATCH', '/api/me', { readReceipts: false })).status).toBe(200)
    const a3 = await say(a, room.id, 'a3')
    const c2 = await say(c, room.id, 'c2')
    const fromC = c.heard.length
    b.client.markRead(room.id, c2.seq)
    expect(await a.next('read.update', frame => frame.by === bob.id && frame.seq === c2.seq)).toMatchObject({ messageIds: [a3.id] })
    await roundTrip(c)
    expect(receiptsBy(c, bob.id, fromC)).toEqual([])
    c.client.markRead(room.id, c2.seq)
    await c.next('read.update', frame => frame.by === cy.id)
    await roundTrip(a)
    expect(receiptsBy(a, cy.id)).toEqual([])
    expect(await seen(ada)).toEqual({ [ada.id]: 0, [bob.id]: c2.seq, [cy.id]: null, [dan.id]: 0 })
    expect(await seen(cy)).toEqual({ [ada.id]: null, [bob.id]: null, [cy.id]: null, [dan.id]: null })

    // Bob turns them off: Ada hears nothing of his reading any more.
    expect((await bob.client.request('PATCH', '/api/me', { readReceipts: false })).status).toBe(200)
    const a4 = await say(a, room.id, 'a4')
    const fromA = a.heard.length
    b.client.markRead(room.id, a4.seq)
    await otherB.next('read.update', frame => frame.seq === a4.seq)
    await roundTrip(a)
    expect(receiptsBy(a, bob.id, fromA)).toEqual([])
    expect((await seen(ada))[bob.id]).toBeNull()
  })
})

describe('presence.watch', () => {
  const presenceOf = (tab: Tab, userId: string, start = 0) => tab.frames('presence.update', start).filter(frame => frame.userId === userId)

  it('shows a watched room\'s members coming and going, at most once a second each; nothing unwatched; contacts always', async () => {
    const [ada, cy, eve, dan] = await Promise.all([chat.person('ada'), chat.person('cy'), chat.person('eve'), chat.person('dan')])
    // Cy and Dan are contacts; Cy and Ada share only the room.
    await pairUp(cy, dan)
    const room = await createRoom(ada, { name: 'Presence', visibility: 'private', members: [cy.email, eve.email] })
    const [c, e] = await Promise.all([open(cy), open(eve)])
    e.client.watch(room.id)

    // Cy does not watch: Ada coming online reaches Eve (who watches) and not Cy.
    let a = await open(ada)
    await e.next('presence.update', frame => frame.userId === ada.id && frame.status === 'online')
    await roundTrip(c)
    expect(presenceOf(c, ada.id)).toEqual([])
    // A contact's presence comes without watching anything.
    const d = await open(dan)
    await c.next('presence.update', frame => frame.userId === dan.id && frame.status === 'online')

    // Watching starts with the members online now.
    let from = c.heard.length
    c.client.watch(room.id)
    expect(await c.next('presence.update', frame => frame.userId === ada.id, { from })).toEqual({ type: 'presence.update', userId: ada.id, status: 'online', lastSeen: null })
    await c.next('presence.update', frame => frame.userId === eve.id, { from })

    // Ada flickers: closes, opens, closes, opens, closes. Cy sees it coalesced, and ends with offline.
    from = c.heard.length
    const arrivals: number[] = []
    c.client.on('presence.update', (frame) => {
      if (frame.userId === ada.id) arrivals.push(Date.now())
    })
    const startedAt = Date.now()
    a.close()
    for (let i = 0; i < 2; i++) {
      a = await open(ada)
      a.close()
    }
    await c.until(() => presenceOf(c, ada.id, from).at(-1)?.status === 'offline' && Date.now() - startedAt > 2500, 10_000)
    const flicker = presenceOf(c, ada.id, from)
    expect(flicker.at(-1)).toMatchObject({ status: 'offline', lastSeen: expect.any(String) })
    // Five changes in well under a second: at most one frame a second, never one per change.
    expect(flicker.length).toBeLessThanOrEqual(Math.ceil((Date.now() - startedAt) / 1000) + 1)
    expect(flicker.length).toBeLessThan(5)
    for (let i = 1; i < arrivals.length; i++) expect(arrivals[i]! - arrivals[i - 1]!).toBeGreaterThan(800)

    // Watching nothing again: Ada comes back, Eve sees it, Cy does not.
    c.client.watch(null)
    await roundTrip(c)
    from = c.heard.length
    const fromE = e.heard.length
    await open(ada)
    await e.next('presence.update', frame => frame.userId === ada.id && frame.status === 'online', { from: fromE })
    await roundTrip(c)
    expect(presenceOf(c, ada.id, from)).toEqual([])
    d.close()
    await c.next('presence.update', frame => frame.userId === dan.id && frame.status === 'offline', { from })
  }, 30_000)

  it('shows a member added while it is watched, when they are online already', async () => {
    const [ada, cy, fay] = await Promise.all([chat.person('ada'), chat.person('cy'), chat.person('fay')])
    const room = await createRoom(ada, { name: 'Newcomers', visibility: 'private', members: [cy.email] })
    const [c] = await Promise.all([open(cy), open(fay)])
    c.client.watch(room.id)
    await roundTrip(c)
    const from = c.heard.length
    expect((await ada.client.post(`/api/rooms/${room.id}/members`, { email: fay.email })).status).toBe(201)
    expect(await c.next('presence.update', frame => frame.userId === fay.id, { from })).toMatchObject({ status: 'online' })
  })
})

describe('resync', () => {
  it('brings a client that was away to exactly the server\'s state', async () => {
    const [ada, bob, cy, dan, eve] = await Promise.all([chat.person('ada'), chat.person('bob'), chat.person('cy'), chat.person('dan'), chat.person('eve')])
    const room = await createRoom(ada, { name: 'Away', visibility: 'private', members: [bob.email, cy.email, eve.email] })
    const [a, b, c] = await Promise.all([open(ada), open(bob), open(cy)])
    b.client.track(room.id, 0)
    expect(await b.client.resync(room.id)).toBe(true)
    await say(a, room.id, 'while you are here')
    await b.next('chat.receive', frame => frame.body === 'while you are here')

    b.close()
    await say(a, room.id, 'first while away')
    await say(c, room.id, 'second while away')
    expect((await ada.client.post(`/api/rooms/${room.id}/members`, { email: dan.email })).status).toBe(201)
    expect((await ada.client.request('PATCH', `/api/conversations/${room.id}`, { name: 'Away and back' })).status).toBe(200)
    expect((await eve.client.post(`/api/rooms/${room.id}/leave`)).status).toBe(204)
    await say(a, room.id, 'last while away')
    const { conversation: now } = await conversation(ada, room.id)
    expect(now.lastSeq).toBe(11)

    b.client.start()
    await b.until(() => b.client.appliedSeq(room.id) === now.lastSeq)
    const events = await allEvents(ada, room.id)
    expect(streamOf(b.heard, room.id)).toEqual(events)
    expect(streamOf(b.heard, room.id).filter(frame => frame.type === 'chat.receive').map(({ type: _type, ...message }) => message)).toEqual(withoutViewerFields(await allMessages(bob, room.id)))
  })

  it('pages through more than 500 missed events', async () => {
    const [ada, bob, ...senders] = await Promise.all(['ada', 'bob', 'cy', 'dan', 'eve', 'fay', 'gus', 'hal'].map(label => chat.person(label))) as [Person, Person, ...Person[]]
    const room = await createRoom(ada, { name: 'Busy', visibility: 'private', members: [bob.email, ...senders.map(person => person.email)] })
    const b = await open(bob)
    b.client.track(room.id, room.lastSeq)
    const writers = await Promise.all(senders.map(person => open(person, { outbox: { perSecond: 9, burst: 18 } })))
    for (const tab of writers) tab.client.track(room.id, room.lastSeq)
    b.close()
    const before = b.client.appliedSeq(room.id)

    const perWriter = 90
    for (let i = 0; i < perWriter; i++) writers.forEach((tab, w) => tab.client.sendMessage(room.id, `w${w}-${i}`))
    expect((await ada.client.request('PATCH', `/api/conversations/${room.id}`, { topic: 'Mid-flight' })).status).toBe(200)
    for (const tab of writers) await tab.until(() => tab.client.outbox.entries.length === 0, 60_000, () => `${tab.client.outbox.entries.length} messages not acknowledged`)
    const lastSeq = (await conversation(ada, room.id)).conversation.lastSeq
    expect(lastSeq - before).toBe(perWriter * writers.length + 1)

    b.client.start()
    await b.until(() => b.client.appliedSeq(room.id) === lastSeq, 30_000)
    const events = await allEvents(ada, room.id, before)
    expect(events).toHaveLength(lastSeq - before)
    expect(streamOf(b.heard, room.id).filter(frame => frame.seq > before)).toEqual(events)
    // It took more than one page of the events endpoint.
    const pages = b.transport.fetched.filter(path => path.startsWith(`GET /api/conversations/${room.id}/events`))
    expect(pages.length).toBeGreaterThanOrEqual(2)
    expect(pages[0]).toContain(`after=${before}&limit=500`)
    // Everyone who was there applied the same stream.
    for (const tab of writers) {
      await tab.until(() => tab.client.appliedSeq(room.id) === lastSeq, 20_000)
      expect(streamOf(tab.heard, room.id).filter(frame => frame.seq > before)).toEqual(events)
    }
  }, 120_000)
})

// PGlite keeps the embedded database in one process: the test edits it while the server is stopped.
describe('a room of 1,000', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'natter-full-room-'))
  const env = { NATTER_TRUST_PROXY: '1' }
  let server: TestServer
  let mail: MailCatcher

  beforeAll(async () => {
    mail = await startMailCatcher()
    server = await startServer({ SMTP_URL: mail.url, ...env }, { cwd })
  })
  afterAll(async () => {
    await server?.stop()
    await mail?.close()
    rmSync(cwd, { recursive: true, force: true })
  })

  /** The same person on a restarted server: the same cookies and address, the new port. */
  function moved(person: Person): Person {
    const client = new Client(server.url)
    for (const [name, value] of person.client.cookies) client.cookies.set(name, value)
    const request = client.request.bind(client)
    client.request = (method, path, body, options = {}) => request(method, path, body, { ...options, headers: { ...person.headers, ...options.headers } })
    return { ...person, client }
  }

  /**
   * Fills the room to `total` members with people inserted straight into the database: a real
   * member row and account each, and the member count the cap reads. Through the API it would take
   * 999 sign-ins, or invitations past the 20-a-day limit.
   */
  async function fill(roomId: string, total: number) {
    const statements = (run: (text: string, values: unknown[]) => Promise<unknown>) => run(`
      with seeded as (
        insert into users (email, display_name, verified_at)
        select 'seed-' || $2 || '-' || g || '@example.org', 'Seed ' || g, now()
        from generate_series(1, $3::int - (select member_count from conversations where id = $1)) g
        returning id
      ), joined as (
        insert into conversation_members (conversation_id, user_id) select $1, id from seeded returning user_id
      )
      update conversations set member_count = member_count + (select count(*) from joined) where id = $1`, [roomId, randomUUID().slice(0, 8), total])
    if (realServices) {
      const client = new pg.Client(serviceUrls.DATABASE_URL)
      await client.connect()
      await statements((text, values) => client.query(text, values)).finally(() => client.end())
      return
    }
    expect(await server.stop()).toBe(0)
    const database = new PGlite(join(cwd, '.data', 'db'))
    await statements((text, values) => database.query(text, values)).finally(() => database.close())
    server = await startServer({ SMTP_URL: mail.url, ...env }, { cwd })
  }

  it('refuses the 1,001st member with 409 room_full, joining or added, also when many join at once', async () => {
    let [ada, eve, fay] = await Promise.all(['ada', 'eve', 'fay'].map(label => signedInPerson(server, mail, label)))
    const room = await createRoom(ada!, { name: 'Full house', visibility: 'public', members: [fay!.email] })
    await fill(room.id, 995)
    ;[ada, eve, fay] = [ada!, eve!, fay!].map(moved)

    // Eight join at once for the last five places: the room's order decides who gets one.
    const joiners = await Promise.all(Array.from({ length: 8 }, () => signedInPerson(server, mail, 'joiner')))
    const answers = await Promise.all(joiners.map(joiner => joiner.client.post(`/api/rooms/${room.id}/join`)))
    expect(answers.map(answer => answer.status).sort()).toEqual([200, 200, 200, 200, 200, 409, 409, 409])
    for (const refused of answers.filter(answer => answer.status === 409)) expect(refused.body.data.code).toBe('room_full')
    const events = await allEvents(ada!, room.id) as RoomUpdate[]
    expect(events.map(event => [event.seq, event.change])).toEqual([[1, 'created'], [2, 'added'], [3, 'joined'], [4, 'joined'], [5, 'joined'], [6, 'joined'], [7, 'joined']])

    const full = await conversation(ada!, room.id)
    expect(full.conversation).toMatchObject({ memberCount: 1000, lastSeq: 7 })
    expect(full.members).toHaveLength(200)
    // The member list pages through all of them, by id.
    const ids: string[] = []
    for (let after = ''; ;) {
      const page = await ada!.client.get(`/api/rooms/${room.id}/members?limit=200${after && `&after=${after}`}`)
      expect(page.status).toBe(200)
      ids.push(...page.body.members.map((member: { user: { id: string } }) => member.user.id))
      if (page.body.members.length < 200) break
      after = ids.at(-1)!
    }
    expect(ids).toHaveLength(1000)
    expect(ids).toEqual([...ids].sort())

    const joined = await eve!.client.post(`/api/rooms/${room.id}/join`)
    expect([joined.status, joined.body.data.code]).toEqual([409, 'room_full'])
    const added = await ada!.client.post(`/api/rooms/${room.id}/members`, { email: eve!.email })
    expect([added.status, added.body.data.code]).toEqual([409, 'room_full'])
    expect((await conversation(ada!, room.id)).conversation).toMatchObject({ memberCount: 1000, lastSeq: 7 })

    // Fay leaves: there is room for exactly one.
    expect((await fay!.client.post(`/api/rooms/${room.id}/leave`)).status).toBe(204)
    expect((await eve!.client.post(`/api/rooms/${room.id}/join`)).status).toBe(200)
    expect((await fay!.client.post(`/api/rooms/${room.id}/join`)).status).toBe(409)
    expect((await conversation(eve!, room.id)).conversation).toMatchObject({ memberCount: 1000, lastSeq: 9, role: 'member' })
  })
})
