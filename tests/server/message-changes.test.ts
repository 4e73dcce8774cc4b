import { randomUUID } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import type { ChatUpdate } from '#shared/types/changes'
import type { Conversation } from '#shared/types/conversations'
import type { ChatMessage } from '#shared/types/messages'
import type { ServerFrame } from '#shared/types/frames'
import { useChatServer } from '../support/chat-server'
import { natterOf, roundTrip, type Tab } from '../support/natter'
import type { Person } from '../support/people'

const chat = useChatServer()
const tabs: Tab[] = []
afterEach(() => {
  for (const tab of tabs.splice(0)) tab.close()
})

async function open(person: Person) {
  const tab = natterOf(person, { pingEveryMs: 60_000 })
  tabs.push(tab)
  await tab.open()
  await roundTrip(tab)
  return tab
}

/** A room of `owner` with the others as members. */
async function roomOf(owner: Person, ...members: Person[]): Promise<Conversation> {
  const created = await owner.client.post('/api/rooms', { name: 'Changes', visibility: 'private', members: members.map(member => member.email) })
  expect(created.status, JSON.stringify(created.body)).toBe(201)
  return created.body.conversation
}

async function say(tab: Tab, conversationId: string, body: string, replyTo?: string) {
  const entry = tab.client.sendMessage(conversationId, body, { replyTo })
  return tab.next('chat.ack', ack => ack.clientId === entry.clientId)
}

async function history(person: Person, conversationId: string): Promise<ChatMessage[]> {
  const page = await person.client.get(`/api/conversations/${conversationId}/messages?after=0&limit=200`)
  expect(page.status).toBe(200)
  return page.body.messages
}

async function events(person: Person, conversationId: string): Promise<ServerFrame[]> {
  const page = await person.client.get(`/api/conversations/${conversationId}/events?after=0&limit=500`)
  expect(page.status).toBe(200)
  return page.body.events
}

/** What a page shows, built from the frames it heard in order. */
function stateOf(frames: ServerFrame[]) {
  const state = new Map<string, { body: string, deleted: boolean, edited: boolean, reactions: Record<string, number> }>()
  for (const frame of frames) {
    if (frame.type === 'chat.receive') state.set(frame.id, { body: frame.body, deleted: false, edited: false, reactions: {} })
    if (frame.type !== 'chat.update') continue
    const message = state.get(frame.messageId)!
    if (frame.body !== undefined) Object.assign(message, { body: frame.body, edited: true })
    if (frame.deleted) Object.assign(message, { body: '', deleted: true, reactions: {} })
    if (frame.reactions) message.reactions = Object.fromEntries(frame.reactions.map(tally => [tally.emoji, tally.count]))
  }
  return state
}

const lastSeq = async (person: Person, conversationId: string) => (await person.client.get(`/api/conversations/${conversationId}`)).body.conversation.lastSeq as number
const react = (person: Person, messageId: string, emoji: string, on = true) => person.client.request(on ? 'PUT' : 'DELETE', `/api/messages/${messageId}/reactions/${encodeURIComponent(emoji)}`)

describe('editing', () => {
  it('changes the author\'s message for everyone, in the stream, and refuses anyone else', async () => {
    const { a: ada, b: bob, conversationId } = await chat.pair()
    const stranger = await chat.person('eve')
    const [a, b] = await Promise.all([open(ada), open(bob)])
    const sent = await say(a, conversationId, 'helo')

    const change = a.client.edit(sent.id, 'hello')
    const update = await b.next('chat.update', frame => frame.messageId === sent.id)
    expect(update).toMatchObject({ conversationId, seq: sent.seq + 1, by: ada.id, body: 'hello', editedAt: expect.any(String), changeId: change.changeId })
    await a.next('change.ack', ack => ack.changeId === change.changeId && ack.seq === sent.seq + 1)
    expect(a.client.outbox.changes).toEqual([])

    const patched = await ada.client.request('PATCH', `/api/messages/${sent.id}`, { body: '  hello, Bob  ' })
    expect(patched.status).toBe(200)
    expect(patched.body.message).toMatchObject({ id: sent.id, body: 'hello, Bob', editedAt: expect.any(String), reactions: [], replyTo: null })
    // The same text again is no change: no new event.
    const seq = await lastSeq(ada, conversationId)
    expect((await ada.client.request('PATCH', `/api/messages/${sent.id}`, { body: 'hello, Bob' })).status).toBe(200)
    expect(await lastSeq(ada, conversationId)).toBe(seq)

    expect((await bob.client.request('PATCH', `/api/messages/${sent.id}`, { body: 'mine now' })).status).toBe(403)
    expect((await stranger.client.request('PATCH', `/api/messages/${sent.id}`, { body: 'mine now' })).status).toBe(404)
    expect((await ada.client.request('PATCH', `/api/messages/${randomUUID()}`, { body: 'x' })).status).toBe(404)
    expect((await ada.client.request('PATCH', `/api/messages/${sent.id}`, { body: '   ' })).status).toBe(400)
    const from = b.heard.length
    b.client.send({ type: 'chat.edit', messageId: sent.id, body: 'mine now', changeId: randomUUID() })
    expect(await b.next('error', () => true, { from })).toMatchObject({ code: 'forbidden' })

    expect((await history(bob, conversationId)).map(message => [message.body, !!message.editedAt])).toEqual([['hello, Bob', true]])
  })

  it('applies a change sent twice with one changeId once, and answers both', async () => {
    const { a: ada, conversationId } = await chat.pair()
    const a = await open(ada)
    const sent = await say(a, conversationId, 'one')
    const changeId = randomUUID()
    a.client.send({ type: 'chat.react', messageId: sent.id, emoji: '🎉', on: true, changeId })
    const first = await a.next('change.ack', ack => ack.changeId === changeId)
    const from = a.heard.indexOf(first) + 1
    a.client.send({ type: 'chat.react', messageId: sent.id, emoji: '🎉', on: true, changeId })
    const second = await a.next('change.ack', ack => ack.changeId === changeId, { from })
    expect(second.seq).toBe(first.seq)
    expect(a.frames('chat.update').length).toBe(1)
    expect(await lastSeq(ada, conversationId)).toBe(sent.seq + 1)
  })
})

describe('deleting', () => {
  it('lets the author and a room\'s owner and admins delete, leaves no text anywhere a member reaches, and refuses edits after', async () => {
    const [ada, bob, cy, dan] = await Promise.all([chat.person('ada'), chat.person('bob'), chat.person('cy'), chat.person('dan')])
    const room = await roomOf(ada, bob, cy)
    const [b, c] = await Promise.all([open(bob), open(cy)])
    const secret = await say(b, room.id, 'the secret plan')
    const edited = await say(b, room.id, 'first draft')
    expect((await bob.client.request('PATCH', `/api/messages/${edited.id}`, { body: 'second draft' })).status).toBe(200)

    expect((await cy.client.request('DELETE', `/api/messages/${secret.id}`)).status).toBe(403)
    expect((await dan.client.request('DELETE', `/api/messages/${secret.id}`)).status).toBe(404)
    expect((await ada.client.request('DELETE', `/api/messages/${secret.id}`)).status).toBe(204)
    const removed = await c.next('chat.update', frame => frame.messageId === secret.id)
    expect(removed).toMatchObject({ deleted: true, deletedBy: ada.id, by: ada.id })
    expect(removed.body).toBeUndefined()
    // Deleting again changes nothing.
    const seq = await lastSeq(ada, room.id)
    expect((await bob.client.request('DELETE', `/api/messages/${secret.id}`)).status).toBe(204)
    expect(await lastSeq(ada, room.id)).toBe(seq)

    expect((await bob.client.request('DELETE', `/api/messages/${edited.id}`)).status).toBe(204)
    expect((await bob.client.request('PATCH', `/api/messages/${edited.id}`, { body: 'back' })).status).toBe(410)
    expect((await bob.client.request('PATCH', `/api/messages/${edited.id}`, { body: 'back' })).body.data.code).toBe('gone')
    expect((await react(cy, edited.id, '👍')).status).toBe(410)

    const messages = await history(cy, room.id)
    expect(messages.filter(message => message.deleted).map(message => [message.id, message.body, message.deletedBy])).toEqual([[secret.id, '', ada.id], [edited.id, '', bob.id]])
    const replay = await events(cy, room.id)
    const everything = JSON.stringify([messages, replay, (await cy.client.get('/api/conversations')).body])
    for (const text of ['secret plan', 'first draft', 'second draft']) expect(everything).not.toContain(text)
    const updates = replay.filter((frame): frame is ChatUpdate => frame.type === 'chat.update')
    expect(updates.map(frame => [frame.messageId, frame.deleted ?? false, 'body' in frame])).toEqual([[edited.id, false, false], [secret.id, true, false], [edited.id, true, false]])
  })
})

describe('reactions', () => {
  it('toggles one emoji per person, idempotently, with counts and mine in history', async () => {
    const { a: ada, b: bob, conversationId } = await chat.pair()
    const [a, b] = await Promise.all([open(ada), open(bob)])
    const sent = await say(a, conversationId, 'react to me')
    expect((await react(bob, sent.id, '👍🏽')).status).toBe(204)
    const update = await a.next('chat.update', frame => frame.messageId === sent.id)
    expect(update).toMatchObject({ reactions: [{ emoji: '👍🏽', count: 1, users: [bob.id] }], reaction: { userId: bob.id, emoji: '👍🏽', on: true } })
    const seq = await lastSeq(ada, conversationId)
    expect((await react(bob, sent.id, '👍🏽')).status).toBe(204)
    expect(await lastSeq(ada, conversationId)).toBe(seq)
    b.client.react(sent.id, '🇫🇷', true)
    await a.next('chat.update', frame => frame.reaction?.emoji === '🇫🇷')
    expect((await react(ada, sent.id, '👍🏽')).status).toBe(204)
    await b.next('chat.update', frame => frame.reaction?.userId === ada.id)

    // Who reacted, oldest first, in history as in the frames: the names on hover after a reload.
    expect((await history(ada, conversationId))[0]!.reactions).toEqual([{ emoji: '👍🏽', count: 2, mine: true, users: [bob.id, ada.id] }, { emoji: '🇫🇷', count: 1, mine: false, users: [bob.id] }])
    expect((await react(bob, sent.id, '👍🏽', false)).status).toBe(204)
    // Ordered by their oldest reaction still there: Ada's 👍🏽 came after Bob's 🇫🇷.
    expect((await history(bob, conversationId))[0]!.reactions).toEqual([{ emoji: '🇫🇷', count: 1, mine: true, users: [bob.id] }, { emoji: '👍🏽', count: 1, mine: false, users: [ada.id] }])

    for (const wrong of ['a', '👍👍', ':)', '1']) expect((await react(bob, sent.id, wrong)).status, wrong).toBe(400)
    const from = b.heard.length
    b.client.send({ type: 'chat.react', messageId: sent.id, emoji: 'no', on: true })
    expect(await b.next('error', () => true, { from })).toMatchObject({ code: 'invalid_frame' })
  })

  it('takes at most 20 different emoji on a message, and holds each person to a rate', async () => {
    const [ada, bob, cy] = await Promise.all([chat.person('ada'), chat.person('bob'), chat.person('cy')])
    const room = await roomOf(ada, bob, cy)
    const a = await open(ada)
    const sent = await say(a, room.id, 'many')
    const emoji = ['😀', '😁', '😂', '🤣', '😃', '😄', '😅', '😆', '😉', '😊', '😋', '😎', '😍', '😘', '🥰', '😗', '😙', '🥲', '😚', '🙂', '🤗']
    for (const [i, one] of emoji.slice(0, 20).entries()) expect((await react(i < 10 ? ada : bob, sent.id, one)).status).toBe(204)
    const over = await react(cy, sent.id, emoji[20]!)
    expect(over.status).toBe(409)
    expect(over.body.data.code).toBe('too_many_reactions')
    // One already there can still be added to.
    expect((await react(cy, sent.id, emoji[0]!)).status).toBe(204)

    let limited
    for (let i = 0; i < 40 && !limited; i++) {
      const answer = await react(cy, sent.id, emoji[1]!, i % 2 === 0)
      if (answer.status === 429) limited = answer
      else expect(answer.status).toBe(204)
    }
    expect(limited?.headers.get('retry-after')).toMatch(/^\d+$/)
  })
})

describe('replies', () => {
  it('answers a message of the same conversation only, with a preview that follows its deletion', async () => {
    const { a: ada, b: bob, conversationId } = await chat.pair()
    const cy = await chat.person('cy')
    const elsewhere = await roomOf(ada, cy)
    const [a, b] = await Promise.all([open(ada), open(bob)])
    const original = await say(b, conversationId, 'what time?')
    const other = await say(a, elsewhere.id, 'not here')

    const wrong = a.client.sendMessage(conversationId, 'noon', { replyTo: other.id })
    const refused = await a.next('error', frame => frame.ref === wrong.clientId)
    expect(refused.code).toBe('invalid_reply')
    a.client.outbox.discard(wrong.clientId)

    const reply = await say(a, conversationId, 'noon', original.id)
    // Live as in history: the quote, with where the original is, for a page that has not loaded it.
    const preview = { id: original.id, seq: original.seq, from: bob.id, body: 'what time?', deleted: false, gone: false }
    expect(await b.next('chat.receive', frame => frame.id === reply.id)).toMatchObject({ replyTo: original.id, replyPreview: preview })
    const shown = (await history(bob, conversationId)).find(message => message.id === reply.id)
    expect(shown).toMatchObject({ replyTo: original.id, replyPreview: preview })

    expect((await bob.client.request('DELETE', `/api/messages/${original.id}`)).status).toBe(204)
    const after = (await history(ada, conversationId)).find(message => message.id === reply.id)
    expect(after?.replyPreview).toEqual({ id: original.id, seq: original.seq, from: bob.id, body: null, deleted: true, gone: false })
  })
})

describe('mentions', () => {
  it('names members only, @room everyone unless the room turns it off, and counts unread mentions', async () => {
    const [ada, bob, cy, eve] = await Promise.all([chat.person('ada'), chat.person('bob'), chat.person('cy'), chat.person('eve')])
    const room = await roomOf(ada, bob, cy)
    const [a, c] = await Promise.all([open(ada), open(cy)])
    const first = await say(a, room.id, `hi <@${bob.id}> and <@${eve.id}>`)
    expect(await c.next('chat.receive', frame => frame.id === first.id)).toMatchObject({ mentions: [bob.id] })
    const second = await say(a, room.id, '@room lunch?')
    expect(await c.next('chat.receive', frame => frame.id === second.id)).toMatchObject({ mentions: [], mentionsRoom: true })

    const counter = async (person: Person) => ((await person.client.get('/api/conversations')).body as Conversation[]).find(one => one.id === room.id)!.mentions
    expect(await counter(bob)).toBe(2)
    expect(await counter(cy)).toBe(1)
    expect(await counter(ada)).toBe(0)

    expect((await bob.client.request('PATCH', `/api/conversations/${room.id}`, { roomMentions: false })).status).toBe(403)
    const patched = await ada.client.request('PATCH', `/api/conversations/${room.id}`, { roomMentions: false })
    expect(patched.body.conversation.roomMentions).toBe(false)
    const third = await say(a, room.id, '@room again')
    expect(await c.next('chat.receive', frame => frame.id === third.id)).toMatchObject({ mentions: [] })
    expect(await counter(cy)).toBe(1)

    // An edit recomputes them.
    expect((await ada.client.request('PATCH', `/api/messages/${third.id}`, { body: `<@${cy.id}> again` })).status).toBe(200)
    expect(await counter(cy)).toBe(2)
    // Reading clears the counter.
    c.client.markRead(room.id, await lastSeq(cy, room.id))
    await expect.poll(() => counter(cy)).toBe(0)
  })
})

describe('the protocol client', () => {
  it('sends an edit made before its message was acknowledged after the ack, once', async () => {
    const { a: ada, b: bob, conversationId } = await chat.pair()
    const b = await open(bob)
    const tab = natterOf(ada, { pingEveryMs: 60_000 })
    tabs.push(tab)
    const entry = tab.client.sendMessage(conversationId, 'tpyo')
    const change = tab.client.edit(entry.clientId, 'typo fixed')
    expect(change.waiting).toBe(true)
    await tab.open()
    const ack = await tab.next('chat.ack', frame => frame.clientId === entry.clientId)
    await tab.next('change.ack', frame => frame.changeId === change.changeId)
    const update = await b.next('chat.update', frame => frame.messageId === ack.id)
    expect(update).toMatchObject({ seq: ack.seq + 1, body: 'typo fixed' })
    expect((await history(bob, conversationId)).map(message => message.body)).toEqual(['typo fixed'])
  })

  it('brings an offline client to exactly the server\'s state when it comes back', async () => {
    const [ada, bob, cy] = await Promise.all([chat.person('ada'), chat.person('bob'), chat.person('cy')])
    const room = await roomOf(ada, bob, cy)
    const [a, b] = await Promise.all([open(ada), open(bob)])
    const kept = await say(a, room.id, 'kept')
    const gone = await say(a, room.id, 'gone soon')
    await b.next('chat.receive', frame => frame.id === gone.id)
    b.client.networkChanged(false)

    expect((await ada.client.request('PATCH', `/api/messages/${kept.id}`, { body: 'kept, edited' })).status).toBe(200)
    expect((await react(cy, kept.id, '❤️')).status).toBe(204)
    expect((await react(ada, kept.id, '❤️')).status).toBe(204)
    expect((await react(cy, kept.id, '❤️', false)).status).toBe(204)
    expect((await ada.client.request('DELETE', `/api/messages/${gone.id}`)).status).toBe(204)
    await say(a, room.id, 'new one')
    // Made while offline: it goes out on the next connection.
    b.client.react(kept.id, '👀', true)

    b.client.networkChanged(true)
    await b.until(() => b.client.appliedSeq(room.id) === room.lastSeq + 9 && b.client.outbox.changes.length === 0, 10_000, () => `applied ${b.client.appliedSeq(room.id)}`)
    const state = stateOf(b.heard)
    const server = await history(bob, room.id)
    expect(Object.fromEntries(state)).toEqual(Object.fromEntries(server.map(message => [message.id, {
      body: message.body, deleted: !!message.deleted, edited: !!message.editedAt, reactions: Object.fromEntries((message.reactions ?? []).map(tally => [tally.emoji, tally.count]))
    }])))
  })
})
