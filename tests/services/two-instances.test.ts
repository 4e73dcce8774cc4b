import { randomUUID } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { pairUp, signedInPerson, type Person } from '../support/people'
import { useTwoInstances } from '../support/two-instances'
import { TestSocket } from '../support/socket'

// Two app processes on one PostgreSQL, Redis and Kafka: people on different instances chat as if
// there were one.
const instances = useTwoInstances()
const sockets: TestSocket[] = []
afterAll(() => {
  sockets.forEach(socket => socket.close())
})

async function open(person: Person) {
  const socket = await TestSocket.open(person.client)
  sockets.push(socket)
  await socket.roundTrip()
  return socket
}

describe('two instances', () => {
  it('deliver, ack, presence, typing and receipts across instances', async () => {
    const a = await signedInPerson(instances.one, instances.mail, 'ada')
    const b = await signedInPerson(instances.two, instances.mail, 'bob')
    const conversationId = await pairUp(a, b)
    const sb = await open(b)
    const sa = await open(a)
    await sb.next(f => f.type === 'presence.update' && f.userId === a.id && f.status === 'online')

    const clientId = randomUUID()
    sa.send({ type: 'chat.send', to: b.id, body: 'from instance one', clientId })
    const received = await sb.next(f => f.type === 'chat.receive')
    expect(received).toMatchObject({ conversationId, from: a.id, body: 'from instance one', seq: 1 })
    expect(await sa.next(f => f.type === 'chat.ack')).toMatchObject({ clientId, id: received.id })

    sb.send({ type: 'typing.start', to: a.id })
    await sa.next(f => f.type === 'typing.update' && f.from === b.id && f.typing)
    sb.send({ type: 'read.update', messageIds: [received.id] })
    await sa.next(f => f.type === 'read.update' && f.by === b.id)

    const from = sb.frames.length
    sa.close()
    await sb.next(f => f.type === 'presence.update' && f.userId === a.id && f.status === 'offline', { from, timeout: 1000 })
  })

  it('keep seq contiguous when both instances persist one conversation at once', async () => {
    const a = await signedInPerson(instances.one, instances.mail, 'ada')
    const b = await signedInPerson(instances.two, instances.mail, 'bob')
    const conversationId = await pairUp(a, b)
    const [sa, sb] = [await open(a), await open(b)]
    const count = 15
    for (let i = 0; i < count; i++) {
      sa.send({ type: 'chat.send', to: b.id, body: `a${i}`, clientId: randomUUID() })
      sb.send({ type: 'chat.send', to: a.id, body: `b${i}`, clientId: randomUUID() })
    }
    for (const socket of [sa, sb]) await socket.next(() => socket.frames.filter(f => f.type === 'chat.ack').length === count, { timeout: 20_000 })
    const stored = (await a.client.get(`/api/conversations/${conversationId}/messages?after=0&limit=200`)).body.messages
    expect(stored.map((m: any) => m.seq)).toEqual(Array.from({ length: 2 * count }, (_, i) => i + 1))
    // Both people's live views equal the stored history.
    const live = (socket: TestSocket) => socket.frames
      .filter(f => f.type === 'chat.receive' || f.type === 'chat.ack')
      .map(f => f.seq).sort((x, y) => x - y)
    expect(live(sa)).toEqual(stored.map((m: any) => m.seq))
    expect(live(sb)).toEqual(stored.map((m: any) => m.seq))
  })
})
