import { randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { migrateToLatest } from '../../server/database/migrate'
import type { Backends } from '../../server/utils/backends'
import { listContacts } from '../../server/utils/contacts/contacts'
import { openDirectConversation } from '../../server/utils/conversations/direct'
import { createPostgresDatabase, type DatabaseHandle } from '../../server/utils/database'
import { historyByTime, messagesPage } from '../../server/utils/messages/history'
import { ensureMessagePartitions, partitionName } from '../../server/utils/retention/partitions'
import { purgeExpired, RETENTION_LOCK_KEY } from '../../server/utils/retention/retention'
import { createMemoryStore } from '../../server/utils/store/memory'
import { realServices, serviceUrls, testDatabase, uniqueName } from '../support/backends'

const DAY = 86_400_000
const HOUR = 3_600_000
const real = new Date()
// Noon of today (UTC), frozen for the whole file: the read paths and the purge count the cutoff
// back from Date.now(), and a fixed noon keeps the boundary rows inside their day whenever this runs.
const NOW = Date.UTC(real.getUTCFullYear(), real.getUTCMonth(), real.getUTCDate(), 12)
const CUTOFF = NOW - 7 * DAY
const retentionDays = 7

// Days, counted back from NOW, and where each row should end up.
const wholeDays = [11, 10, 9, 8].flatMap(days => [NOW - days * DAY - HOUR, NOW - days * DAY + HOUR])
const boundaryExpired = [CUTOFF - 3 * HOUR, CUTOFF - 2 * HOUR, CUTOFF - HOUR, CUTOFF]
const boundaryKept = [CUTOFF + HOUR, CUTOFF + 2 * HOUR]
const recent = [NOW - 6 * DAY, NOW - 6 * DAY + HOUR, NOW - HOUR, NOW - HOUR / 2]
// No partition that old: the row lands in messages_default.
const inDefault = [NOW - 20 * DAY]

function daysAgo(days: number) {
  return partitionName(new Date(NOW - days * DAY))
}

describe(`retention (${realServices ? 'postgres' : 'pglite'})`, () => {
  let database: DatabaseHandle
  let a: string, b: string, c: string
  // `talk` has messages on every side of the cutoff; `bygone` only expired ones.
  let talk: string, bygone: string
  const seqOf = new Map<number, number>()

  async function seed(conversationId: string, times: number[], senders: string[]) {
    const rows = times.sort((x, y) => x - y).map((time, i) => ({
      id: randomUUID(),
      conversation_id: conversationId,
      seq: i + 1,
      sender_id: senders[i % senders.length]!,
      client_id: randomUUID(),
      body: `sent ${new Date(time).toISOString()}`,
      created_at: new Date(time)
    }))
    await database.db.insertInto('messages').values(rows).execute()
    await database.db.updateTable('conversations').set({ last_seq: rows.length, last_message_at: rows.at(-1)!.created_at }).where('id', '=', conversationId).execute()
    return rows
  }

  async function stored(conversationId: string) {
    const rows = await database.db.selectFrom('messages').select(['seq', 'created_at']).where('conversation_id', '=', conversationId).orderBy('seq').execute()
    return rows.map(row => row.created_at.getTime())
  }

  async function partitions() {
    const { rows } = await sql<{ name: string }>`
      select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid join pg_class p on p.oid = i.inhparent
      where p.relname = 'messages'`.execute(database.db)
    return rows.map(row => row.name)
  }

  beforeAll(async () => {
    database = await testDatabase()
    await migrateToLatest(database.db)
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(NOW)
    // On the shared database an earlier run may have left expired rows: clear them first, so the
    // counts below are this file's own. Other files only write rows of today.
    await purgeExpired(database.db, { retentionDays })
    await ensureMessagePartitions(database.db, { fromDaysAgo: 12 })
    const users = await database.db.insertInto('users')
      .values(['a', 'b', 'c'].map(label => ({ email: `${uniqueName(`retention-${label}`)}@example.org`, display_name: label.toUpperCase() })))
      .returning('id').execute()
    ;[a, b, c] = users.map(user => user.id) as [string, string, string]
    talk = await openDirectConversation(database.db, a, b)
    bygone = await openDirectConversation(database.db, a, c)
    const rows = await seed(talk, [...wholeDays, ...boundaryExpired, ...boundaryKept, ...recent, ...inDefault], [a, b])
    for (const row of rows) seqOf.set(row.created_at.getTime(), row.seq)
    await seed(bygone, [NOW - 9 * DAY], [c])
  })

  afterAll(async () => {
    vi.useRealTimers()
    await database.close()
  })

  const visible = [...boundaryKept, ...recent]

  it('hides expired messages from every read path before any purge', async () => {
    // Stored, every one of them…
    expect(await stored(talk)).toHaveLength(wholeDays.length + boundaryExpired.length + visible.length + inDefault.length)
    // …but history by seq and by time only ever show those after the cutoff.
    const bySeq = await messagesPage(database.db, talk, { kind: 'direct', members: [a, b] }, { limit: 100 })
    expect(bySeq.messages.map(m => Date.parse(m.timestamp))).toEqual(visible)
    const firstPage = await messagesPage(database.db, talk, { kind: 'direct', members: [a, b] }, { after: 0, limit: 2 })
    expect(firstPage.messages.map(m => m.seq)).toEqual(boundaryKept.map(time => seqOf.get(time)))
    const older = await messagesPage(database.db, talk, { kind: 'direct', members: [a, b] }, { before: seqOf.get(boundaryKept[0]!), limit: 100 })
    expect(older.messages).toEqual([])
    const byTime = await historyByTime(database.db, talk, { kind: 'direct', members: [a, b] }, { limit: 100 })
    expect(byTime.messages.map(m => Date.parse(m.timestamp))).toEqual(visible)
    expect(byTime.nextBefore).toBeNull()
    const beforeFirst = await historyByTime(database.db, talk, { kind: 'direct', members: [a, b] }, { before: new Date(boundaryKept[0]!).toISOString(), limit: 100 })
    expect(beforeFirst.messages).toEqual([])

    // The contact list: the last message and the unread count skip expired ones, and a
    // conversation with nothing left shows no last message at all.
    const contacts = await listContacts({ database, store: createMemoryStore() } as unknown as Backends, a)
    const withB = contacts.find(contact => contact.conversationId === talk)!
    expect(withB.lastMessage?.timestamp).toBe(new Date(recent.at(-1)!).toISOString())
    const fromB = visible.filter(time => (seqOf.get(time)! - 1) % 2 === 1)
    expect(withB.unread).toBe(fromB.length)
    const withC = contacts.find(contact => contact.conversationId === bygone)!
    expect(withC.lastMessage).toBeNull()
    expect(withC.unread).toBe(0)
  })

  it('drops the whole expired days, trims the boundary day, and keeps the rest', async () => {
    const before = await partitions()
    const dropped = [12, 11, 10, 9, 8].map(daysAgo)
    expect(before).toEqual(expect.arrayContaining([...dropped, daysAgo(7), daysAgo(6)]))
    const conversationsBefore = await database.db.selectFrom('conversations').selectAll().where('id', 'in', [talk, bygone]).orderBy('id').execute()

    const summary = await purgeExpired(database.db, { retentionDays, batchSize: 2 })
    expect(summary.skipped).toBeUndefined()
    expect(summary.cutoff).toBe(new Date(CUTOFF).toISOString())
    expect(summary.partitionsDropped).toEqual(dropped)
    expect(summary.partitionsDeferred).toEqual([])
    // Deleted row by row: the boundary day's four (two per statement) and the one in messages_default.
    expect(summary.rowsDeleted).toBe(boundaryExpired.length + inDefault.length)
    expect(Date.parse(summary.oldestRemaining!)).toBeGreaterThan(CUTOFF)
    expect(Date.parse(summary.oldestRemaining!)).toBeLessThanOrEqual(boundaryKept[0]!)
    expect(summary.durationMs).toBeGreaterThanOrEqual(0)

    const after = await partitions()
    for (const name of dropped) expect(after).not.toContain(name)
    expect(after).toContain(daysAgo(7))
    expect(after).toContain('messages_default')
    expect(await stored(talk)).toEqual(visible)
    expect(await stored(bygone)).toEqual([])
    // The boundary partition keeps exactly its rows after the cutoff.
    const { rows: boundary } = await sql<{ created_at: Date }>`
      select created_at from ${sql.table(daysAgo(7))} where conversation_id = ${talk} order by created_at`.execute(database.db)
    expect(boundary.map(row => row.created_at.getTime())).toEqual(boundaryKept)
    const { rows: fallback } = await sql<{ n: number }>`
      select count(*)::int8 as n from messages_default where conversation_id in (${talk}, ${bygone})`.execute(database.db)
    expect(fallback[0]!.n).toBe(0)

    // People, conversations and memberships stay; so do the counters, so seq never repeats.
    expect(await database.db.selectFrom('conversations').selectAll().where('id', 'in', [talk, bygone]).orderBy('id').execute()).toEqual(conversationsBefore)
    expect(await database.db.selectFrom('users').select('id').where('id', 'in', [a, b, c]).execute()).toHaveLength(3)
    expect(await database.db.selectFrom('conversation_members').select('user_id').where('conversation_id', 'in', [talk, bygone]).execute()).toHaveLength(4)
    // And what people see has not changed.
    const history = await messagesPage(database.db, talk, { kind: 'direct', members: [a, b] }, { limit: 100 })
    expect(history.messages.map(m => Date.parse(m.timestamp))).toEqual(visible)
  })

  it('finds nothing to do on the next run', async () => {
    const summary = await purgeExpired(database.db, { retentionDays })
    expect(summary).toMatchObject({ partitionsDropped: [], partitionsDeferred: [], rowsDeleted: 0 })
    expect(await stored(talk)).toEqual(visible)
  })

  it('removes a purged message\'s earlier bodies, reactions and change events, made whenever, and its replies show it gone', async () => {
    await ensureMessagePartitions(database.db, { fromDaysAgo: 12 })
    const changed = await openDirectConversation(database.db, b, c)
    const [old, young, reply] = await seed(changed, [NOW - 9 * DAY, NOW - HOUR, NOW - HOUR / 2], [b, c])
    await database.db.updateTable('messages').set({ reply_to: old!.id }).where('id', '=', reply!.id).execute()
    let seq = 3
    for (const message of [old!, young!]) {
      // Changed today: only the message's own day decides.
      await database.db.insertInto('message_versions').values({ message_id: message.id, conversation_id: changed, body: 'earlier', replaced_by: b, message_created_at: message.created_at }).execute()
      await database.db.insertInto('message_reactions').values({ message_id: message.id, conversation_id: changed, user_id: c, emoji: '👍', message_created_at: message.created_at }).execute()
      await database.db.insertInto('conversation_events').values({ conversation_id: changed, seq: ++seq, kind: 'edit', actor_id: b, message_id: message.id, message_created_at: message.created_at, payload: JSON.stringify({ messageId: message.id, body: 'later' }) }).execute()
    }
    const left = async () => Promise.all(['message_versions', 'message_reactions', 'conversation_events'].map(async table =>
      (await sql<{ message_id: string }>`select message_id from ${sql.table(table)} where conversation_id = ${changed} and message_id is not null`.execute(database.db)).rows.map(row => row.message_id)))

    expect(await left()).toEqual([[old!.id, young!.id], [old!.id, young!.id], [old!.id, young!.id]])
    const summary = await purgeExpired(database.db, { retentionDays })
    expect(summary.rowsDeleted).toBe(3)
    expect(await left()).toEqual([[young!.id], [young!.id], [young!.id]])

    const page = await messagesPage(database.db, changed, { kind: 'direct', members: [b, c] }, { limit: 10 }, c)
    expect(page.messages.map(message => [message.id, message.reactions, message.replyPreview])).toEqual([
      [young!.id, [{ emoji: '👍', count: 1, mine: true, users: [c] }], null],
      [reply!.id, [], { id: old!.id, from: null, body: null, deleted: false, gone: true }]
    ])
  })

  it('creates the partitions of the coming week', async () => {
    // As if the server had run for a week without a restart: the last day ahead is missing.
    const last = partitionName(new Date(NOW + 7 * DAY))
    await sql`drop table if exists ${sql.table(last)}`.execute(database.db)
    const summary = await purgeExpired(database.db, { retentionDays })
    expect(summary.partitionsCreated).toContain(last)
    const after = await partitions()
    for (let day = 0; day <= 7; day++) expect(after).toContain(partitionName(new Date(NOW + day * DAY)))
  })

  it('runs once at a time in a process: a second call returns skipped at once', async () => {
    await ensureMessagePartitions(database.db, { fromDaysAgo: 9 })
    const settled: string[] = []
    const [first, second] = await Promise.all([
      purgeExpired(database.db, { retentionDays }).finally(() => settled.push('first')),
      purgeExpired(database.db, { retentionDays }).finally(() => settled.push('second'))
    ])
    expect(second.skipped).toBe('locked')
    expect(second).toMatchObject({ partitionsDropped: [], rowsDeleted: 0 })
    expect(settled[0]).toBe('second')
    expect(first.skipped).toBeUndefined()
    expect(first.partitionsDropped).toEqual([9, 8].map(daysAgo))
  })

  // Advisory locks across sessions need PostgreSQL; PGlite has one connection in one process.
  describe.runIf(realServices)('across instances (PostgreSQL sessions)', () => {
    let other: DatabaseHandle
    beforeAll(() => {
      other = createPostgresDatabase(serviceUrls.DATABASE_URL, 2)
    })
    afterAll(() => other.close())

    it('skips at once while another session holds the lock, and runs once it is free', async () => {
      await ensureMessagePartitions(database.db, { fromDaysAgo: 9 })
      await other.db.connection().execute(async (session) => {
        await sql`select pg_advisory_lock(${RETENTION_LOCK_KEY})`.execute(session)
        try {
          const summary = await purgeExpired(database.db, { retentionDays })
          expect(summary.skipped).toBe('locked')
          expect(await partitions()).toContain(daysAgo(9))
        }
        finally {
          await sql`select pg_advisory_unlock(${RETENTION_LOCK_KEY})`.execute(session)
        }
      })
      const summary = await purgeExpired(database.db, { retentionDays })
      expect(summary.partitionsDropped).toEqual([9, 8].map(daysAgo))
    })

    it('lets two instances purging together drop each partition once, without errors', async () => {
      await ensureMessagePartitions(database.db, { fromDaysAgo: 12 })
      const runs = await Promise.all([purgeExpired(database.db, { retentionDays }), purgeExpired(other.db, { retentionDays })])
      // Either the second found the lock taken, or it came after the first and found nothing left.
      expect(runs.flatMap(run => run.partitionsDropped).sort()).toEqual([12, 11, 10, 9, 8].map(daysAgo))
      expect(runs.filter(run => run.skipped).length).toBeLessThanOrEqual(1)
    })

    it('leaves a partition whose lock does not come in time for the next run, and the rest with it', async () => {
      await ensureMessagePartitions(database.db, { fromDaysAgo: 12 })
      await other.db.transaction().execute(async (trx) => {
        // A long reader of one old day (a report, a pg_dump) holds its lock until it commits.
        await sql`select count(*) from ${sql.table(daysAgo(10))}`.execute(trx)
        const began = performance.now()
        const summary = await purgeExpired(database.db, { retentionDays, lockTimeoutMs: 200 })
        expect(performance.now() - began).toBeLessThan(5000)
        expect(summary.partitionsDropped).toEqual([12, 11].map(daysAgo))
        expect(summary.partitionsDeferred).toEqual([10, 9, 8].map(daysAgo))
      })
      const summary = await purgeExpired(database.db, { retentionDays })
      expect(summary.partitionsDropped).toEqual([10, 9, 8].map(daysAgo))
    })
  })
})
