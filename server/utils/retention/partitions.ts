import { sql, type Kysely } from 'kysely'
import type { Database } from '../../database/schema'

const DAY = 24 * 3600_000

export function partitionName(day: Date): string {
  return `messages_p${day.toISOString().slice(0, 10).replaceAll('-', '')}`
}

function startOfDay(time: number): Date {
  return new Date(Math.floor(time / DAY) * DAY)
}

/**
 * Makes sure a daily partition (UTC days) exists for each day from `fromDaysAgo` ago to
 * `daysAhead` days from now, so inserts land in a droppable table and never in the default one.
 */
export async function ensureMessagePartitions(db: Kysely<Database>, { daysAhead = 7, fromDaysAgo = 1, now = Date.now() } = {}): Promise<string[]> {
  const existing = new Set((await sql<{ name: string }>`
    select c.relname as name from pg_inherits i
    join pg_class c on c.oid = i.inhrelid
    join pg_class p on p.oid = i.inhparent
    where p.relname = 'messages'`.execute(db)).rows.map(row => row.name))
  const created: string[] = []
  for (let offset = -fromDaysAgo; offset <= daysAhead; offset++) {
    const day = startOfDay(now + offset * DAY)
    const name = partitionName(day)
    if (existing.has(name)) continue
    const next = new Date(day.getTime() + DAY)
    await sql`create table if not exists ${sql.table(name)} partition of messages
      for values from (${sql.lit(day.toISOString())}) to (${sql.lit(next.toISOString())})`.execute(db)
    created.push(name)
  }
  return created
}
