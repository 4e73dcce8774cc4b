import { describe, expect, it } from 'vitest'
import type { Conversation } from '#shared/types/conversations'
import type { StreamFrame } from '#shared/types/frames'
import type { ChatMessage } from '#shared/types/messages'
import { onInstance } from '../support/attack'
import { useTwoInstances } from '../support/two-instances'
import { streamOf } from '../support/natter'
import { signedInPerson } from '../support/people'

// Two app processes on one PostgreSQL, Redis and Kafka: changes made on one reach sockets on both.
const instances = useTwoInstances()
const tabOn = instances.tabOn

describe('message changes across two instances', () => {
  it('reach the members on the other instance in the conversation\'s order, as the events endpoint replays them', async () => {
    const [ada, bob, cy] = await Promise.all(['ada', 'bob', 'cy'].map(label => signedInPerson(instances.one, instances.mail, label)))
    const created = await ada!.client.post('/api/rooms', { name: 'Changes', visibility: 'private', members: [bob!.email, cy!.email] })
    expect(created.status).toBe(201)
    const room = created.body.conversation as Conversation
    const [a, b, c] = await Promise.all([tabOn(instances.one, ada!), tabOn(instances.two, bob!), tabOn(instances.two, cy!)])
    for (const tab of [a, b, c]) tab.client.track(room.id, room.lastSeq)

    const first = a.client.sendMessage(room.id, 'first')
    const second = b.client.sendMessage(room.id, 'second')
    const ids = await Promise.all([
      a.next('chat.ack', ack => ack.clientId === first.clientId).then(ack => ack.id),
      b.next('chat.ack', ack => ack.clientId === second.clientId).then(ack => ack.id)
    ])
    // Changes through both instances, by frame and by REST, racing each other.
    a.client.edit(ids[0], 'first, edited')
    b.client.react(ids[0], '👍', true)
    c.client.react(ids[1], '🎉', true)
    const answers = await Promise.all([
      onInstance(bob!, instances.one).request('PATCH', `/api/messages/${ids[1]}`, { body: 'second, edited' }),
      onInstance(ada!, instances.two).request('PUT', `/api/messages/${ids[1]}/reactions/${encodeURIComponent('👀')}`)
    ])
    expect(answers.map(answer => answer.status)).toEqual([200, 204])
    for (const tab of [a, b, c]) await tab.until(() => tab.client.outbox.changes.length === 0)
    expect((await onInstance(ada!, instances.two).request('DELETE', `/api/messages/${ids[0]}`)).status).toBe(204)

    const page = await onInstance(cy!, instances.one).get(`/api/conversations/${room.id}/events?after=${room.lastSeq}`)
    const events = page.body.events as StreamFrame[]
    expect(page.body.lastSeq).toBe(room.lastSeq + 2 + 6)
    expect(events.map(event => event.seq)).toEqual(Array.from({ length: 8 }, (_, i) => room.lastSeq + i + 1))
    const order = (frames: StreamFrame[]) => frames.map(frame => [frame.seq, frame.type, frame.type === 'chat.update' ? frame.messageId : frame.type === 'chat.receive' ? frame.id : null])
    for (const tab of [a, b, c]) {
      await tab.until(() => tab.client.appliedSeq(room.id) === page.body.lastSeq)
      expect(order(streamOf(tab.heard, room.id))).toEqual(order(events))
    }
    const messages = (await onInstance(bob!, instances.two).get(`/api/conversations/${room.id}/messages?after=0`)).body.messages as ChatMessage[]
    // The two sends raced from two instances: either may have the lower seq, so each is found by its id.
    const state = (id: string) => {
      const message = messages.find(candidate => candidate.id === id)
      return message && [message.body, !!message.deleted, (message.reactions ?? []).map(r => r.emoji).sort()]
    }
    expect(messages).toHaveLength(2)
    expect([state(ids[0]), state(ids[1])]).toEqual([['', true, []], ['second, edited', false, ['👀', '🎉'].sort()]])
  }, 60_000)
})
