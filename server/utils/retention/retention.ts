import { sql, type Kysely } from 'kysely'
import type { Database } from '../../database/schema'
import { retentionCutoff } from './cutoff'
import { log } from '../log'
import { ensureMessagePartitions } from './partitions'

const DAY = 24 * 3600_000
/** The session advisory lock that lets one purge run at a time across every instance ('Natter' in ASCII). */
export const RETENTION_LOCK_KEY = 0x4E6174746572
const LOCK_NOT_AVAILABLE = '55P03'

export interface PurgeOptions {
  retentionDays: number
  /** Epoch ms the cutoff is counted back from. */
  now?: number
  /** Rows per DELETE statement: each batch is its own short transaction. */
  batchSize?: number
  /** How long dropping a partition may wait for its lock before it is left for the next run. */
  lockTimeoutMs?: number
}

export interface PurgeSummary {
  /** Another run holds the lock: this one did nothing. */
  skipped?: 'locked'
  cutoff: string
  partitionsDropped: string[]
  /** Expired partitions whose lock did not come within lockTimeoutMs; the next run drops them. */
  partitionsDeferred: string[]
  partitionsCreated: string[]
  rowsDeleted: number
  /** The oldest message still stored, or null when there is none. */
  oldestRemaining: string | null
  durationMs: number
}

// The same database handle twice in one process: the second run steps aside. PGlite needs it
// (one session, where advisory locks are re-entrant); on PostgreSQL it saves a connection.
const running = new WeakSet<Kysely<Database>>()

/**
 * Removes what the read paths already hide (created_at at or before the cutoff): drops the daily
 * partitions lying wholly before the cutoff, deletes the expired rows of the boundary partition
 * and of messages_default in batches, and creates partitions ahead. The idempotency keys are
 * columns of the messages themselves (migration 0003), so they go with their rows. A conversation's
 * other events (conversation_events) go by the same cutoff. Conversations, members and users stay. Read receipts are a watermark on conversation_members
 * (read_seq), so no other table refers to a message row and nothing else needs cleaning.
 *
 * One run at a time: on PostgreSQL the whole run holds a session advisory lock on one connection,
 * and a run that cannot take it returns `{ skipped: 'locked' }` at once. Every step is atomic on
 * its own, so a run cut short (a crash, a shutdown) leaves nothing half-done for the next one.
 */
export async function purgeExpired(db: Kysely<Database>, options: PurgeOptions): Promise<PurgeSummary> {
  const started = performance.now()
  const cutoff = retentionCutoff(options.retentionDays, options.now)
  if (running.has(db)) return skipped(cutoff, started)
  running.add(db)
  try {
    const summary = db.getExecutor().adapter.supportsMultipleConnections
      ? await db.connection().execute(conn => underLock(conn, () => purge(conn, cutoff, options)))
      // PGlite: one session, used by this process alone, which the running set above keeps to
      // one run; working on `db` rather than holding its one connection lets live queries in
      // between the statements.
      : await purge(db, cutoff, options)
    if (!summary) return skipped(cutoff, started)
    summary.durationMs = Math.round(performance.now() - started)
    const { partitionsDropped, partitionsDeferred, partitionsCreated, rowsDeleted, durationMs, oldestRemaining } = summary
    log.info('retention: purge', { cutoff: summary.cutoff, partitionsDropped, partitionsDeferred, partitionsCreated, rowsDeleted, durationMs, oldestRemaining })
    return summary
  }
  catch (error) {
    log.error('retention: purge failed', { error, durationMs: Math.round(performance.now() - started) })
    throw error
  }
  finally {
    running.delete(db)
  }
}

function skipped(cutoff: Date, started: number): PurgeSummary {
  const durationMs = Math.round(performance.now() - started)
  log.info('retention: purge skipped, another run holds the lock', { durationMs })
  return { skipped: 'locked', cutoff: cutoff.toISOString(), partitionsDropped: [], partitionsDeferred: [], partitionsCreated: [], rowsDeleted: 0, oldestRemaining: null, durationMs }
}

/** Runs `work` holding the advisory lock on this connection's session; undefined when another session holds it. */
async function underLock<T>(conn: Kysely<Database>, work: () => Promise<T>): Promise<T | undefined> {
  const { rows } = await sql<{ locked: boolean }>`select pg_try_advisory_lock(${RETENTION_LOCK_KEY}) as locked`.execute(conn)
  if (!rows[0]?.locked) return undefined
  try {
    return await work()
  }
  finally {
    // A lost connection has released the lock with its session already.
    await sql`select pg_advisory_unlock(${RETENTION_LOCK_KEY})`.execute(conn).catch(() => {})
  }
}

async function purge(db: Kysely<Database>, cutoff: Date, options: PurgeOptions): Promise<PurgeSummary> {
  const batchSize = options.batchSize ?? 5000
  const lockTimeoutMs = options.lockTimeoutMs ?? 1000
  const summary: PurgeSummary = {
    cutoff: cutoff.toISOString(),
    partitionsDropped: [],
    partitionsDeferred: [],
    partitionsCreated: [],
    rowsDeleted: 0,
    oldestRemaining: null,
    durationMs: 0
  }

  // First, so a server that runs for weeks never writes into messages_default.
  try {
    summary.partitionsCreated = await ensureMessagePartitions(db, { now: options.now ?? Date.now(), daysAhead: 7, fromDaysAgo: 0 })
  }
  catch (error) {
    // Most likely rows in messages_default for a day that now wants its partition; the purge
    // itself does not depend on it, so go on and say so.
    log.error('retention: could not create the partitions ahead', { error })
  }

  const partitions = await messagePartitions(db)
  for (const partition of partitions.filter(p => p.end <= cutoff.getTime())) {
    // After one lock timeout the rest wait for the next run: whatever held that lock (a long
    // transaction, a pg_dump) most likely holds theirs too, and each try stalls live traffic.
    if (!summary.partitionsDeferred.length && await dropPartition(db, partition.name, lockTimeoutMs)) summary.partitionsDropped.push(partition.name)
    else summary.partitionsDeferred.push(partition.name)
  }
  const boundary = partitions.filter(p => p.start <= cutoff.getTime() && cutoff.getTime() < p.end).map(p => p.name)
  // A room's other changes (joined, renamed) are kept exactly as long as its messages.
  for (const table of [...boundary, 'messages_default', 'conversation_events']) {
    summary.rowsDeleted += await deleteExpired(db, table, cutoff, batchSize)
  }
  // A message's changes go with the message, whenever they were made: its earlier bodies, its
  // reactions, and the edit, deletion and reaction events of its stream.
  for (const table of ['message_versions', 'message_reactions', 'conversation_events']) {
    summary.rowsDeleted += await deleteExpired(db, table, cutoff, batchSize, 'message_created_at')
  }

  // Every partition has an index on created_at (migration 0003): one probe per partition.
  const oldest = await db.selectFrom('messages').select(eb => eb.fn.min('created_at').as('oldest')).executeTakeFirst()
  summary.oldestRemaining = oldest?.oldest ? new Date(oldest.oldest).toISOString() : null
  return summary
}

interface Partition { name: string, start: number, end: number }

/** The daily partitions of messages (see partitions.ts for the names), oldest first. */
async function messagePartitions(db: Kysely<Database>): Promise<Partition[]> {
  const { rows } = await sql<{ name: string }>`
    select c.relname as name from pg_inherits i
    join pg_class c on c.oid = i.inhrelid
    join pg_class p on p.oid = i.inhparent
    where p.relname = 'messages'`.execute(db)
  const partitions: Partition[] = []
  for (const { name } of rows) {
    const day = /^messages_p(\d{4})(\d{2})(\d{2})$/.exec(name)
    if (!day) continue
    const start = Date.UTC(Number(day[1]), Number(day[2]) - 1, Number(day[3]))
    partitions.push({ name, start, end: start + DAY })
  }
  return partitions.sort((a, b) => a.start - b.start)
}

/**
 * Detaches and drops one partition in one transaction. Both need an ACCESS EXCLUSIVE lock on
 * messages, and while the lock is awaited every new query on messages queues behind it: the lock
 * timeout bounds that stall for live traffic. False when it timed out (the partition stays).
 */
async function dropPartition(db: Kysely<Database>, name: string, lockTimeoutMs: number): Promise<boolean> {
  try {
    await db.transaction().execute(async (trx) => {
      await sql`select set_config('lock_timeout', ${`${Math.max(1, Math.round(lockTimeoutMs))}ms`}, true)`.execute(trx)
      // NOTE: not DETACH … CONCURRENTLY: PostgreSQL refuses it while messages has a default
      // partition, and it cannot run inside a transaction block.
      await sql`alter table messages detach partition ${sql.table(name)}`.execute(trx)
      await sql`drop table ${sql.table(name)}`.execute(trx)
    })
    return true
  }
  catch (error) {
    if ((error as { code?: string }).code !== LOCK_NOT_AVAILABLE) throw error
    log.warn('retention: partition busy, left for the next run', { partition: name, lockTimeoutMs })
    return false
  }
}

/**
 * Deletes the rows at or before the cutoff from one leaf partition (ctid is only unique within
 * one table), `batchSize` rows per statement so no transaction
 * grows large and row locks are held only briefly.
 */
async function deleteExpired(db: Kysely<Database>, table: string, cutoff: Date, batchSize: number, column = 'created_at'): Promise<number> {
  let deleted = 0
  for (;;) {
    const result = await sql`
      delete from ${sql.table(table)} where ctid = any(array(
        select ctid from ${sql.table(table)} where ${sql.ref(column)} <= ${cutoff} limit ${batchSize}))`.execute(db)
    const count = Number(result.numAffectedRows ?? 0)
    deleted += count
    if (count < batchSize) return deleted
  }
}
