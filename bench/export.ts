// `npx tsx bench/export.ts`: what one person's data export (GET /api/me/export) costs on real
// PostgreSQL, and whether its memory stays flat. Seeds one person with --rows messages (default
// 1,000,000) in a fresh database (--database, default …/natter_bench_export, dropped again at the
// end), streams the export into a counting sink that reads as fast as it can, and samples the
// process's heap and RSS every 50 ms. Prints JSON.
import { parseArgs } from 'node:util'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { sql } from 'kysely'
import pg from 'pg'
import { migrateToLatest } from '../server/database/migrate'
import { createPostgresDatabase } from '../server/utils/database'
import { exportOf } from '../server/utils/own-data/export'

process.env.NATTER_LOG_LEVEL ??= 'warn'

const { values } = parseArgs({
  options: {
    database: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/natter_bench_export' },
    rows: { type: 'string', default: '1000000' }
  }
})
const ROWS = Number(values.rows)
const url = new URL(values.database!)
const name = url.pathname.slice(1)
const admin = new pg.Client({ connectionString: values.database!.replace(/\/[^/]*$/, '/postgres') })
await admin.connect()
await admin.query(`drop database if exists ${name}`)
await admin.query(`create database ${name}`)

const database = createPostgresDatabase(values.database!, 2)
const mb = (bytes: number) => Math.round(bytes / 1024 / 1024 * 10) / 10
try {
  const db = database.db
  await migrateToLatest(db)
  const me = await db.insertInto('users').values({ email: 'me@example.org', display_name: 'Me' }).returning('id').executeTakeFirstOrThrow()
  const room = await db.insertInto('conversations').values({ kind: 'room', name: 'Everything' }).returning('id').executeTakeFirstOrThrow()
  await db.insertInto('conversation_members').values({ conversation_id: room.id, user_id: me.id }).execute()
  const seeding = Date.now()
  // Spread over the last 6 days (the default partition takes whatever has no daily one), 100-400 characters each.
  await sql`insert into messages (id, conversation_id, seq, sender_id, client_id, body, created_at)
    select gen_random_uuid(), ${room.id}, n, ${me.id}, gen_random_uuid(), repeat('natter ', 15 + n % 45), now() - interval '6 days' + (n * interval '6 days' / ${ROWS})
    from generate_series(1, ${ROWS}::int) n`.execute(db)
  await sql`analyze messages`.execute(db)
  const seededIn = (Date.now() - seeding) / 1000

  globalThis.gc?.()
  const before = process.memoryUsage()
  let peakHeap = before.heapUsed
  let peakRss = before.rss
  const sampler = setInterval(() => {
    const now = process.memoryUsage()
    peakHeap = Math.max(peakHeap, now.heapUsed)
    peakRss = Math.max(peakRss, now.rss)
  }, 50)
  let bytes = 0
  let lines = 0
  const started = Date.now()
  await pipeline(exportOf(db, me.id), new Writable({
    write(chunk: Buffer, _encoding, done) {
      bytes += chunk.length
      for (const byte of chunk) if (byte === 10) lines++
      done()
    }
  }))
  clearInterval(sampler)
  const seconds = (Date.now() - started) / 1000
  console.log(JSON.stringify({
    rows: ROWS,
    seededInSeconds: seededIn,
    exportSeconds: seconds,
    lines,
    megabytes: mb(bytes),
    messagesPerSecond: Math.round(ROWS / seconds),
    heapBeforeMb: mb(before.heapUsed),
    heapPeakMb: mb(peakHeap),
    rssBeforeMb: mb(before.rss),
    rssPeakMb: mb(peakRss)
  }, null, 2))
}
finally {
  await database.close()
  await admin.query(`drop database if exists ${name}`)
  await admin.end()
}
