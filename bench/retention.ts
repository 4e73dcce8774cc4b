// `npx tsx bench/retention.ts`: what the hourly purge costs on real PostgreSQL. Seeds a million
// expired messages in whole daily partitions, a boundary day half expired, then measures each
// purge's wall time and the WAL it wrote, and the p99 of live persistBatch calls with and without
// a purge running. Options: --database URL (default DATABASE_URL or …/natter_bench),
// --rows 1000000, --days 8, --boundary 125000, --traffic 10 (seconds of baseline traffic a round),
// --rounds 2 (baseline, then a purge under the same traffic, this many times; pooled).
import { randomUUID } from 'node:crypto'
import os from 'node:os'
import { parseArgs } from 'node:util'
import { sql, type Kysely } from 'kysely'
import pg from 'pg'
import { migrateToLatest } from '../server/database/migrate'
import type { Database } from '../server/database/schema'
import { openDirectConversation } from '../server/utils/conversations/direct'
import { createPostgresDatabase } from '../server/utils/database'
import { ensureMessagePartitions, partitionName } from '../server/utils/retention/partitions'
import { persistBatch, type SendEvent } from '../server/utils/messages/persister'
import { purgeExpired, type PurgeSummary } from '../server/utils/retention/retention'

process.env.NATTER_LOG_LEVEL ??= 'warn'

const { values } = parseArgs({
  options: {
    database: { type: 'string', default: process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/natter_bench' },
    rows: { type: 'string', default: '1000000' },
    days: { type: 'string', default: '8' },
    boundary: { type: 'string', default: '125000' },
    traffic: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '2' }
  }
})
const ROWS = Number(values.rows)
const DAYS = Number(values.days)
const BOUNDARY = Number(values.boundary)
const TRAFFIC_SECONDS = Number(values.traffic)
const ROUNDS = Number(values.rounds)

const DAY = 86_400_000
const HOUR = 3_600_000
const today = new Date()
// Noon (UTC) of today: the boundary day then has exactly half of its rows expired, whenever this runs.
const NOW = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate(), 12)
const CUTOFF = NOW - 7 * DAY

async function ensureDatabase(url: string) {
  const target = new URL(url)
  const name = target.pathname.slice(1)
  const admin = new URL(url)
  admin.pathname = '/postgres'
  const client = new pg.Client({ connectionString: admin.toString() })
  await client.connect()
  try {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [name])
    if (!rowCount) await client.query(`create database "${name.replaceAll('"', '""')}"`)
  }
  finally {
    await client.end()
  }
}

let nextSeq = 1
/** `count` rows spread evenly over [from, to), in a fresh set of 1,000 conversations. */
async function seed(db: Kysely<Database>, from: number, to: number, count: number) {
  const salt = randomUUID()
  const first = nextSeq
  nextSeq += count
  const step = (to - from) / count
  await sql`
    insert into messages (id, conversation_id, seq, sender_id, client_id, body, created_at)
    select md5(${salt} || 'm' || g)::uuid, md5(${salt} || 'c' || (g % 1000))::uuid, g,
      md5(${salt} || 'u' || (g % 2000))::uuid, md5(${salt} || 'k' || g)::uuid,
      substr(repeat(md5(g::text), 4), 1, (40 + g % 80)::int),
      ${new Date(from)}::timestamptz + ((g - ${first}) * ${step}::float8) * interval '1 millisecond'
    from generate_series(${first}::int8, ${first + count - 1}::int8) g`.execute(db)
}

/** Whole expired days, `ROWS` messages in all, from 7 + DAYS days ago to 8 days ago (midnights). */
async function seedExpiredDays(db: Kysely<Database>) {
  await ensureMessagePartitions(db, { now: NOW, fromDaysAgo: 7 + DAYS })
  const perDay = Math.ceil(ROWS / DAYS)
  for (let day = 7 + DAYS; day > 7; day--) {
    const start = Math.floor((NOW - day * DAY) / DAY) * DAY
    await seed(db, start, start + DAY, perDay)
  }
  await sql`vacuum analyze messages`.execute(db)
}

async function measure(db: Kysely<Database>, label: string, run: () => Promise<PurgeSummary>) {
  await sql`checkpoint`.execute(db)
  const before = (await sql<{ lsn: string }>`select pg_current_wal_lsn()::text as lsn`.execute(db)).rows[0]!.lsn
  const began = performance.now()
  const summary = await run()
  const ms = performance.now() - began
  const { rows } = await sql<{ bytes: number }>`select pg_wal_lsn_diff(pg_current_wal_lsn(), ${before}::pg_lsn)::float8 as bytes`.execute(db)
  const row = {
    scenario: label,
    dropped: summary.partitionsDropped.length,
    rowsDeleted: summary.rowsDeleted,
    wallMs: Math.round(ms),
    walMB: +(rows[0]!.bytes / 1048576).toFixed(1)
  }
  console.log(JSON.stringify(row))
  return row
}

interface Traffic { stop: () => Promise<number[]> }

/**
 * Live sends: `workers` persisters, each storing a batch of 10 at most every 20 ms. Each owns its
 * own conversations, as each Kafka partition (keyed by conversation) has one persister.
 */
function startTraffic(db: Kysely<Database>, conversations: Array<{ id: string, a: string, b: string }>, workers = 4): Traffic {
  const latencies: number[] = []
  let running = true
  const loops = Array.from({ length: workers }, async (_, worker) => {
    const mine = conversations.filter((_, i) => i % workers === worker)
    while (running) {
      const tick = performance.now()
      const batch: SendEvent[] = Array.from({ length: 10 }, () => {
        const c = mine[Math.floor(Math.random() * mine.length)]!
        return { conversationId: c.id, senderId: c.a, recipientId: c.b, clientId: randomUUID(), body: 'live message during the purge', sentAt: Date.now(), origin: 'bench:1' }
      })
      await persistBatch(db, batch)
      const took = performance.now() - tick
      latencies.push(took)
      await new Promise(resolve => setTimeout(resolve, Math.max(0, 20 - took)))
    }
  })
  return {
    async stop() {
      running = false
      await Promise.all(loops)
      return latencies
    }
  }
}

function percentile(sorted: number[], p: number) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : 0
}

function summarize(label: string, latencies: number[], seconds: number) {
  const sorted = [...latencies].sort((x, y) => x - y)
  const row = {
    traffic: label,
    batches: sorted.length,
    seconds: +seconds.toFixed(1),
    messagesPerSecond: Math.round(sorted.length * 10 / seconds),
    p50: +percentile(sorted, 0.5).toFixed(1),
    p99: +percentile(sorted, 0.99).toFixed(1),
    max: +(sorted.at(-1) ?? 0).toFixed(1)
  }
  console.log(JSON.stringify(row))
  return row
}

function table(rows: Array<Record<string, unknown>>) {
  const keys = Object.keys(rows[0]!)
  return [`| ${keys.join(' | ')} |`, `| ${keys.map(() => '---').join(' | ')} |`, ...rows.map(row => `| ${keys.map(key => String(row[key])).join(' | ')} |`)].join('\n')
}

const loadAtStart = os.loadavg()[0]!
await ensureDatabase(values.database)
const database = createPostgresDatabase(values.database, 2)
const live = createPostgresDatabase(values.database, 8)
const db = database.db
try {
  await migrateToLatest(db)
  const purge = (now = NOW) => purgeExpired(db, { retentionDays: 7, now })
  // Whatever an earlier run left goes first, unmeasured: expired rows, and the boundary day's.
  await purge()
  await sql`drop table if exists ${sql.table(partitionName(new Date(CUTOFF)))}`.execute(db)
  await ensureMessagePartitions(db, { now: NOW, fromDaysAgo: 7 })
  const { rows: [server] } = await sql<{ version: string }>`select version()`.execute(db)

  const purges: Array<Record<string, unknown>> = []
  let t = performance.now()
  await seedExpiredDays(db)
  console.log(`seeded ${ROWS} expired messages in ${DAYS} days: ${((performance.now() - t) / 1000).toFixed(0)} s`)
  purges.push(await measure(db, `${ROWS.toLocaleString('en')} expired in ${DAYS} whole days`, () => purge()))

  // The boundary day: BOUNDARY rows over the day 7 days ago, the first half before the cutoff (noon).
  const boundaryStart = Math.floor(CUTOFF / DAY) * DAY
  await seed(db, boundaryStart, boundaryStart + DAY, BOUNDARY)
  await sql`vacuum analyze ${sql.table(partitionName(new Date(CUTOFF)))}`.execute(db)
  purges.push(await measure(db, `boundary day: ${(BOUNDARY / 2).toLocaleString('en')} of ${BOUNDARY.toLocaleString('en')} rows expired`, () => purge()))
  purges.push(await measure(db, 'the next hourly run (one hour expires)', () => purge(NOW + HOUR)))
  purges.push(await measure(db, 'nothing to do', () => purge(NOW + HOUR)))

  // Live traffic: 200 direct conversations, persistBatch as the persister calls it.
  const users = await db.insertInto('users')
    .values(Array.from({ length: 400 }, (_, i) => ({ email: `retention-bench-${randomUUID().slice(0, 8)}-${i}@bench.example.org`, display_name: `Bench ${i}` })))
    .returning('id').execute()
  const conversations: Array<{ id: string, a: string, b: string }> = []
  for (let i = 0; i < users.length; i += 2) {
    const a = users[i]!.id
    const b = users[i + 1]!.id
    conversations.push({ id: await openDirectConversation(db, a, b), a, b })
  }
  // Rounds of the same traffic without, then with a purge running, pooled: a busy machine's
  // noise then falls on both sides alike.
  const quiet: number[] = []
  const purging: number[] = []
  let quietSeconds = 0
  let purgingSeconds = 0
  for (let round = 1; round <= ROUNDS; round++) {
    await seedExpiredDays(db)
    t = performance.now()
    let load = startTraffic(live.db, conversations)
    await new Promise(resolve => setTimeout(resolve, TRAFFIC_SECONDS * 1000))
    quiet.push(...await load.stop())
    quietSeconds += (performance.now() - t) / 1000
    load = startTraffic(live.db, conversations)
    t = performance.now()
    purges.push(await measure(db, `${ROWS.toLocaleString('en')} expired, under live traffic (round ${round})`, () => purge()))
    purging.push(...await load.stop())
    purgingSeconds += (performance.now() - t) / 1000
  }
  const traffic = [summarize('no purge', quiet, quietSeconds), summarize(`during the ${ROWS.toLocaleString('en')}-row purges`, purging, purgingSeconds)]

  console.log(`\nmachine: ${os.cpus().length} cores (${os.cpus()[0]?.model}), ${Math.round(os.totalmem() / 2 ** 30)} GB RAM; ${server!.version.split(' on ')[0]}`)
  // Other work on the machine skews every figure: say how busy it was.
  console.log(`load average (1 min): ${loadAtStart.toFixed(1)} at the start, ${os.loadavg()[0]!.toFixed(1)} at the end`)
  console.log('\n' + table(purges))
  console.log(`\npersistBatch latency (ms): 4 persisters with 50 conversations each, batches of 10, ${ROUNDS} rounds pooled:\n`)
  console.log(table(traffic))
}
finally {
  await live.close()
  await database.close()
}
