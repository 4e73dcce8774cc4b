import { describe, expect, it } from 'vitest'
import { useChatServer } from '../support/chat-server'
import { natterOf } from '../support/natter'

const chat = useChatServer()

describe('a room, through the protocol client', () => {
  it('is created with its members, carries messages to all of them, and replays after an outage', async () => {
    const [ada, bob, cy] = await Promise.all([chat.person('ada'), chat.person('bob'), chat.person('cy')])
    const created = await ada.client.post('/api/rooms', { name: 'Design', topic: 'Pixels', visibility: 'private', members: [bob.email, cy.email] })
    expect(created.status).toBe(201)
    const room = created.body.conversation
    expect(room).toMatchObject({ kind: 'room', name: 'Design', topic: 'Pixels', visibility: 'private', memberCount: 3, role: 'owner', lastSeq: 3 })
    const [a, b, c] = await Promise.all([natterOf(ada).open(), natterOf(bob).open(), natterOf(cy).open()])
    for (const tab of [a, b, c]) tab.client.track(room.id, room.lastSeq)

    a.client.sendMessage(room.id, 'hello room')
    for (const tab of [a, b, c]) expect(await tab.next('chat.receive', frame => frame.body === 'hello room')).toMatchObject({ conversationId: room.id, seq: 4, from: ada.id, to: null })

    // Cy goes away; meanwhile two messages and a rename.
    c.close()
    b.client.sendMessage(room.id, 'while you were out')
    await a.next('chat.receive', frame => frame.body === 'while you were out')
    expect((await ada.client.request('PATCH', `/api/conversations/${room.id}`, { name: 'Design team' })).status).toBe(200)
    a.client.sendMessage(room.id, 'renamed it')
    await b.next('chat.receive', frame => frame.body === 'renamed it')

    const from = c.heard.length
    c.client.start()
    await c.next('chat.receive', frame => frame.body === 'renamed it', { from })
    expect(c.heard.slice(from).map(frame => 'seq' in frame ? [frame.type, frame.seq] : frame.type)).toEqual([['chat.receive', 5], ['room.update', 6], ['chat.receive', 7]])
    expect(c.client.appliedSeq(room.id)).toBe(7)
    for (const tab of [a, b, c]) tab.close()
  })
})
