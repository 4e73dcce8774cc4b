import { describe, expect, it } from 'vitest'
import type { Conversation } from '#shared/types/conversations'
import type { StreamFrame } from '#shared/types/frames'
import type { Client } from '../support/client'
import { onInstance } from '../support/attack'
import { useTwoInstances } from '../support/two-instances'
import { aboutRoom, isStream, roundTrip, streamOf, type Tab } from '../support/natter'
import { signedInPerson, type Person } from '../support/people'

// Two app processes on one PostgreSQL, Redis and Kafka: a room whose members sit on both.
const instances = useTwoInstances()
const tabOn = instances.tabOn

async function createRoom(owner: Person, body: Record<string, unknown>): Promise<Conversation> {
  const created = await owner.client.post('/api/rooms', body)
  expect(created.status, JSON.stringify(created.body)).toBe(201)
  return created.body.conversation
}

async function lastSeq(client: Client, id: string): Promise<number> {
  const answer = await client.get(`/api/conversations/${id}`)
  expect(answer.status).toBe(200)
  return answer.body.conversation.lastSeq
}

async function allEvents(client: Client, id: string, after = 0): Promise<StreamFrame[]> {
  const events: StreamFrame[] = []
  for (;;) {
    const page = await client.get(`/api/conversations/${id}/events?after=${after}&limit=500`)
    expect(page.status).toBe(200)
    events.push(...page.body.events)
    if (page.body.events.length < 500) return events
    after = page.body.events.at(-1).seq
  }
}

const settled = (tab: Tab) => tab.until(() => tab.client.outbox.entries.length === 0, 30_000, () => `${tab.client.outbox.entries.length} messages not acknowledged`)

describe('a room across two instances', () => {
  it('carries messages, room changes and typing to everyone, in one contiguous seq', async () => {
    const [ada, bob, cy, dan, eve] = await Promise.all(['ada', 'bob', 'cy', 'dan', 'eve'].map(label => signedInPerson(instances.one, instances.mail, label)))
    const room = await createRoom(ada!, { name: 'Split', visibility: 'private', members: [bob!.email, cy!.email, dan!.email] })
    expect((await onInstance(ada!, instances.two).request('PATCH', `/api/rooms/${room.id}/members/${bob!.id}`, { role: 'admin' })).status).toBe(200)
    const fast = { perSecond: 9, burst: 18 }
    const [a, b, c, d, e] = await Promise.all([tabOn(instances.one, ada!, fast), tabOn(instances.two, bob!, fast), tabOn(instances.two, cy!, fast), tabOn(instances.one, dan!), tabOn(instances.two, eve!)])
    const start = await lastSeq(ada!.client, room.id)
    for (const tab of [a, b, c, d]) tab.client.track(room.id, start)

    // Writers on both instances at once; changes made through both instances meanwhile.
    const count = 15
    for (let i = 0; i < count; i++) {
      for (const [tab, who] of [[a, 'a'], [b, 'b'], [c, 'c']] as const) tab.client.sendMessage(room.id, `${who}${i}`)
    }
    const changes = await Promise.all([
      onInstance(ada!, instances.two).request('PATCH', `/api/conversations/${room.id}`, { name: 'Split across' }),
      bob!.client.post(`/api/rooms/${room.id}/members`, { email: eve!.email }),
      onInstance(dan!, instances.two).post(`/api/rooms/${room.id}/leave`)
    ])
    expect(changes.map(answer => answer.status)).toEqual([200, 201, 204])
    for (const tab of [a, b, c]) await settled(tab)

    const last = await lastSeq(ada!.client, room.id)
    // created, 3 added, role, then the messages and the three changes.
    expect(last).toBe(5 + 3 * count + 3)
    const events = await allEvents(onInstance(ada!, instances.two), room.id)
    expect(events.map(event => event.seq)).toEqual(Array.from({ length: last }, (_, i) => i + 1))
    for (const tab of [a, b, c]) {
      await tab.until(() => tab.client.appliedSeq(room.id) === last)
      expect(streamOf(tab.heard, room.id)).toEqual(events.slice(start))
    }
    // Eve, on instance two, hears the room from her "added" on; Dan, on one, up to his "left".
    const added = events.find(event => event.type === 'room.update' && event.change === 'added' && event.userId === eve!.id)!
    const left = events.find(event => event.type === 'room.update' && event.change === 'left')!
    await e.until(() => e.client.appliedSeq(room.id) === last)
    expect(streamOf(e.heard, room.id)).toEqual(events.slice(added.seq - 1))
    await roundTrip(d)
    expect(streamOf(d.wire, room.id)).toEqual(events.slice(start, left.seq))
    expect(streamOf(d.heard, room.id)).toEqual(events.slice(start, left.seq))

    // Typing from instance two reaches members on both; not Dan, who left.
    b.client.send({ type: 'typing.start', conversationId: room.id })
    for (const tab of [a, c, e]) expect(await tab.next('typing.update', frame => frame.from === bob!.id)).toMatchObject({ conversationId: room.id, typing: true })
    await roundTrip(d)
    expect(aboutRoom(d.wire, room.id).filter(frame => frame.type === 'typing.update')).toEqual([])
  }, 60_000)

  it('stops delivery to a member removed through the other instance at once, even with messages racing the removal', async () => {
    const [ada, bob, cy, dan] = await Promise.all(['ada', 'bob', 'cy', 'dan'].map(label => signedInPerson(instances.one, instances.mail, label)))
    const room = await createRoom(ada!, { name: 'Cut', visibility: 'private', members: [bob!.email, cy!.email, dan!.email] })
    const fast = { perSecond: 9, burst: 18 }
    const [a, b, c, d] = await Promise.all([tabOn(instances.one, ada!, fast), tabOn(instances.two, bob!), tabOn(instances.two, cy!), tabOn(instances.one, dan!, fast)])
    for (const tab of [a, c, d]) tab.client.track(room.id, room.lastSeq)
    b.client.track(room.id, room.lastSeq)

    for (let round = 0; round < 3; round++) {
      const start = b.wire.length
      // The removal, through instance one, and two bursts from instance one racing it.
      const removal = ada!.client.request('DELETE', `/api/rooms/${room.id}/members/${bob!.id}`)
      for (let i = 0; i < 12; i++) {
        a.client.sendMessage(room.id, `round ${round} a${i}`)
        d.client.sendMessage(room.id, `round ${round} d${i}`)
      }
      expect((await removal).status).toBe(204)
      for (const tab of [a, d]) await settled(tab)
      const last = await lastSeq(ada!.client, room.id)
      // Cy sits on Bob's instance: once she has everything, so would Bob have.
      await c.until(() => c.client.appliedSeq(room.id) === last)
      await roundTrip(b)

      const events = await allEvents(ada!.client, room.id)
      // Rounds do not overlap: this round's removal is the latest.
      const removed = events.filter(event => event.type === 'room.update' && event.change === 'removed' && event.userId === bob!.id).at(-1)!
      expect(removed.seq).toBeGreaterThan(Math.max(0, ...streamOf(b.wire.slice(0, start), room.id).map(frame => frame.seq)))
      const heard = streamOf(b.wire.slice(start), room.id)
      // Everything up to and including his removal, nothing after it.
      expect(heard.at(-1), `round ${round}`).toEqual(removed)
      expect(heard.map(frame => frame.seq), `round ${round}`).toEqual(Array.from({ length: heard.length }, (_, i) => removed.seq - heard.length + 1 + i))
      expect(aboutRoom(b.wire.slice(start), room.id).filter(frame => !isStream(frame) || frame.seq > removed.seq), `round ${round}`).toEqual([])
      // His own send through instance two is refused.
      const from = b.heard.length
      const entry = b.client.sendMessage(room.id, 'am I still here?')
      expect(await b.next('error', frame => frame.ref === entry.clientId, { from })).toMatchObject({ code: 'not_found' })
      b.client.outbox.discard(entry.clientId)

      // Back in, through instance two, for the next round.
      const readded = b.wire.length
      expect((await onInstance(ada!, instances.two).post(`/api/rooms/${room.id}/members`, { email: bob!.email })).status).toBe(201)
      await b.until(() => b.wire.slice(readded).some(frame => frame.type === 'room.update' && frame.change === 'added' && frame.userId === bob!.id))
    }
  }, 90_000)

  it('shows a watched room\'s members coming and going across instances, coalesced, and nothing to those not watching', async () => {
    const [ada, cy, dan, eve] = await Promise.all(['ada', 'cy', 'dan', 'eve'].map(label => signedInPerson(instances.one, instances.mail, label)))
    const room = await createRoom(ada!, { name: 'Seen', visibility: 'private', members: [cy!.email, dan!.email, eve!.email] })
    // Cy watches on instance two, Dan on instance one; Eve, on two, does not watch.
    const [c, d, e] = await Promise.all([tabOn(instances.two, cy!), tabOn(instances.one, dan!), tabOn(instances.two, eve!)])
    c.client.watch(room.id)
    d.client.watch(room.id)
    const presenceOf = (tab: Tab, userId: string, from = 0) => tab.frames('presence.update', from).filter(frame => frame.userId === userId)
    await Promise.all([c, d].map(tab => tab.next('presence.update', frame => frame.userId === eve!.id && frame.status === 'online')))

    const arrivals: number[] = []
    c.client.on('presence.update', (frame) => {
      if (frame.userId === ada!.id) arrivals.push(Date.now())
    })
    let a = await tabOn(instances.one, ada!)
    for (const tab of [c, d]) expect(await tab.next('presence.update', frame => frame.userId === ada!.id)).toMatchObject({ status: 'online' })
    await roundTrip(e)
    expect(presenceOf(e, ada!.id)).toEqual([])

    // Ada flickers on instance one; both watchers end with offline, at most a frame a second.
    const startedAt = Date.now()
    const from = c.heard.length
    a.close()
    a = await tabOn(instances.one, ada!)
    a.close()
    for (const tab of [c, d]) await tab.until(() => presenceOf(tab, ada!.id, from).at(-1)?.status === 'offline' && Date.now() - startedAt > 2500, 10_000)
    expect(presenceOf(c, ada!.id, from).length).toBeLessThan(3)
    for (let i = 1; i < arrivals.length; i++) expect(arrivals[i]! - arrivals[i - 1]!).toBeGreaterThan(800)
    await roundTrip(e)
    expect(presenceOf(e, ada!.id)).toEqual([])

    // Watching starts with who is online now, wherever their socket is.
    await tabOn(instances.one, ada!)
    const fromE = e.heard.length
    e.client.watch(room.id)
    expect(await e.next('presence.update', frame => frame.userId === ada!.id, { from: fromE })).toMatchObject({ status: 'online' })
  }, 60_000)
})
