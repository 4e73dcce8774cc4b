import { randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { migrateToLatest } from '../../server/database/migrate'
import { openDirectConversation, setDirectState } from '../../server/utils/conversations/direct'
import type { DatabaseHandle } from '../../server/utils/database'
import { ensureMessagePartitions, partitionName } from '../../server/utils/retention/partitions'
import { persistBatch, storeRecords, type SendEvent, type SendOutcome } from '../../server/utils/messages/persister'
import type { CommandEvent } from '../../server/utils/conversations/commands'
import { realServices, testDatabase, uniqueName } from '../support/backends'

describe(`persister (${realServices ? 'postgres' : 'pglite'})`, () => {
  let database: DatabaseHandle
  beforeAll(async () => {
    database = await testDatabase()
    await migrateToLatest(database.db)
    await ensureMessagePartitions(database.db)
  })
  afterAll(() => database.close())

  async function conversation() {
    const [a, b] = await database.db.insertInto('users')
      .values([{ email: `${uniqueName('a')}@example.org`, display_name: 'A' }, { email: `${uniqueName('b')}@example.org`, display_name: 'B' }])
      .returning('id').execute()
    const id = await openDirectConversation(database.db, a!.id, b!.id)
    // b accepts a, as writing back does.
    await setDirectState(database.db, id, b!.id, 'active')
    return { id, a: a!.id, b: b!.id }
  }

  /** The stored message of an outcome; fails the test when it was refused. */
  function messageOf(outcome: SendOutcome | undefined) {
    if (!outcome || !('message' in outcome)) throw new Error(`expected a stored message, got ${JSON.stringify(outcome)}`)
    return outcome.message
  }

  function events(c: { id: string, a: string, b: string }, count: number): SendEvent[] {
    return Array.from({ length: count }, (_, i) => ({
      conversationId: c.id,
      senderId: i % 3 === 0 ? c.b : c.a,
      recipientId: i % 3 === 0 ? c.a : c.b,
      clientId: randomUUID(),
      body: `message ${i}`,
      sentAt: Date.now(),
      origin: 'test:1'
    }))
  }

  async function stored(conversationId: string) {
    return database.db.selectFrom('messages').selectAll().where('conversation_id', '=', conversationId).orderBy('seq').execute()
  }

  it('stores a batch in order with seq 1, 2, 3… and strictly increasing times', async () => {
    const c = await conversation()
    const batch = events(c, 20)
    const outcomes = await persistBatch(database.db, batch)
    expect(outcomes.map(outcome => messageOf(outcome).seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
    const rows = await stored(c.id)
    expect(rows.map(row => row.body)).toEqual(batch.map(event => event.body))
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.created_at.getTime()).toBeGreaterThan(rows[i - 1]!.created_at.getTime())
  })

  it('keeps each conversation\'s order around its changes, and does not hold other conversations\' messages behind them', async () => {
    const [x, y] = await Promise.all([conversation(), conversation()])
    const [first] = await persistBatch(database.db, events(x, 1))
    const react = (conversationId: string, actorId: string, messageId: string): CommandEvent => ({ kind: 'command', id: randomUUID(), conversationId, actorId, command: { action: 'react', messageId, emoji: '👍', on: true }, sentAt: Date.now(), origin: 'test:1' })
    const [x1, x2] = events(x, 2).map((event, i) => ({ ...event, body: `x${i + 1}` }))
    const [y1, y2] = events(y, 2).map((event, i) => ({ ...event, body: `y${i + 1}` }))
    // One partition's batch, interleaved: X's reaction sits between X's messages, in front of Y's.
    const envelopes = await storeRecords(database.db, [x1!, react(x.id, x.a, messageOf(first).id), x2!, y1!, y2!])
    const frames = envelopes.flatMap(envelope => envelope.frame ? [envelope.frame] : [])
    const said = frames.map(frame => frame.type === 'chat.receive' ? frame.body : frame.type)
    // X: its message before the reaction, the reaction, then the one after, seq in that order.
    expect(said.filter(item => item !== y1!.body && item !== y2!.body)).toEqual([x1!.body, 'chat.update', x2!.body])
    expect(frames.filter(frame => frame.type !== 'room.update' && 'conversationId' in frame && frame.conversationId === x.id).map(frame => 'seq' in frame ? frame.seq : 0)).toEqual([2, 3, 4])
    // Y's messages went in the same statement as X's first, ahead of X's reaction.
    expect(said.indexOf(y2!.body)).toBeLessThan(said.indexOf('chat.update'))
  })

  it('stores each (sender, clientId) once across redelivery, overlapping persisters and in-batch repeats', async () => {
    const c = await conversation()
    const all = events(c, 60)
    const first = await persistBatch(database.db, all.slice(0, 20))
    // Two persisters after a rebalance, both handed overlapping records, plus a full redelivery.
    // A consumer resumes from the last committed offset (here 20: the first batch's end), so
    // every batch starts at or before the first record not stored yet; one that began past it
    // (30) could store 30-59 before another stored 20-29, which no rebalance can hand out, and
    // made this test fail whenever that one won the lock.
    const [left, right, again] = await Promise.all([
      persistBatch(database.db, all.slice(10, 45)),
      persistBatch(database.db, all.slice(20, 60)),
      persistBatch(database.db, [...all, ...all.slice(0, 5)])
    ])
    const rows = await stored(c.id)
    expect(rows).toHaveLength(60)
    expect(rows.map(row => row.seq)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1))
    expect(new Set(rows.map(row => `${row.sender_id}/${row.client_id}`)).size).toBe(60)
    // Whoever delivers a message names the same id and seq.
    const byClient = new Map(rows.map(row => [row.client_id, row]))
    for (const outcome of [...first, ...left, ...right, ...again]) {
      const row = byClient.get(outcome.event.clientId)!
      expect(messageOf(outcome)).toMatchObject({ id: row.id, seq: row.seq, body: row.body })
    }
    // Per sender, the order of sending is the order of seq.
    for (const sender of [c.a, c.b]) {
      const bodies = rows.filter(row => row.sender_id === sender).map(row => row.body)
      expect(bodies).toEqual(all.filter(event => event.senderId === sender).map(event => event.body))
    }
  })

  it('refuses a clientId reused in another conversation with its reason, storing nothing of it', async () => {
    const first = await conversation()
    const second = await conversation()
    const [original] = events(first, 1)
    await persistBatch(database.db, [original!])
    const reuse = { ...original!, conversationId: second.id, recipientId: second.b, body: 'elsewhere' }
    const [next] = events(second, 1)
    const outcomes = await persistBatch(database.db, [reuse, next!])
    expect(outcomes[0]).toMatchObject({ refused: 'duplicate_client_id' })
    expect(messageOf(outcomes[1])).toMatchObject({ seq: 1, body: next!.body, conversationId: second.id })
    expect((await stored(second.id)).map(row => row.body)).toEqual([next!.body])
    expect((await stored(first.id)).map(row => row.body)).toEqual([original!.body])
  })

  it('refuses a sender who is not in the conversation, or whom the other person blocked, without taking a seq', async () => {
    const c = await conversation()
    const [stranger] = await database.db.insertInto('users').values({ email: `${uniqueName('s')}@example.org`, display_name: 'S' }).returning('id').execute()
    const [fromStranger] = events(c, 1).map(event => ({ ...event, senderId: stranger!.id }))
    const [fromA, fromA2] = events(c, 3).filter(event => event.senderId === c.a)
    expect(await persistBatch(database.db, [fromStranger!, fromA!])).toMatchObject([{ refused: 'not_found' }, { message: { seq: 1 } }])
    await setDirectState(database.db, c.id, c.b, 'blocked')
    expect(await persistBatch(database.db, [fromA2!])).toMatchObject([{ refused: 'blocked' }])
    expect((await stored(c.id)).map(row => row.seq)).toEqual([1])
  })

  it('recognises a resend whose original is in an earlier day\'s partition', async () => {
    const c = await conversation()
    const [event] = events(c, 1)
    const first = messageOf((await persistBatch(database.db, [event!]))[0])
    // As if the first copy had been stored three days ago: the lookup must reach older partitions.
    await ensureMessagePartitions(database.db, { fromDaysAgo: 3 })
    await database.db.updateTable('messages').set({ created_at: new Date(Date.now() - 3 * 86_400_000) }).where('id', '=', first.id).execute()
    const [again] = await persistBatch(database.db, [{ ...event!, sentAt: Date.now() }])
    expect(again).toMatchObject({ duplicate: true, message: { id: first.id, seq: 1, body: event!.body } })
    const rows = await stored(c.id)
    expect(rows).toHaveLength(1)
    const { rows: where } = await sql<{ partition: string }>`select tableoid::regclass::text as partition from messages where id = ${first.id}`.execute(database.db)
    expect(where[0]!.partition).toBe(partitionName(new Date(Date.now() - 3 * 86_400_000)))
  })

  it('writes into the day\'s partition, not the default one', async () => {
    const c = await conversation()
    await persistBatch(database.db, events(c, 3))
    const { rows } = await sql<{ partition: string }>`select tableoid::regclass::text as partition from messages where conversation_id = ${c.id}`.execute(database.db)
    expect(rows.every(row => /^messages_p\d{8}$/.test(row.partition))).toBe(true)
  })

  it('has partitions for the coming week', async () => {
    const created = await ensureMessagePartitions(database.db, { daysAhead: 7 })
    expect(created).toEqual([])
    const { rows } = await sql<{ name: string }>`
      select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid join pg_class p on p.oid = i.inhparent
      where p.relname = 'messages'`.execute(database.db)
    const today = new Date()
    for (let day = 0; day <= 7; day++) {
      const name = `messages_p${new Date(today.getTime() + day * 86_400_000).toISOString().slice(0, 10).replaceAll('-', '')}`
      expect(rows.map(row => row.name)).toContain(name)
    }
  })
})
