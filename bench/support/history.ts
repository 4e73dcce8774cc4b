import type { BenchUser } from '../seed'
import { histogram, percentiles, type Percentiles } from './load'
import { sleep } from './procs'

const DAY = 24 * 3600_000

export interface HistorySeed { rows: number, insertedRows: number, seconds: number, perConversation: number, spanDays: number }

/**
 * Fills the conversations with `rows` messages in all, spread evenly over the last six days (so
 * over seven daily partitions, as a week-old deployment has them), seq 1…M per conversation and
 * created_at growing with seq, as the persister writes them. Server-side INSERT … SELECT from
 * generate_series: no row crosses the wire, which beats COPY here. Resumable: a conversation whose
 * last_seq already reaches M is skipped, so a second run reuses the first one's rows.
 */
export async function seedHistory(databaseUrl: string, users: BenchUser[], rows: number, deadlineMs: number, log: (line: string) => void): Promise<HistorySeed> {
  const started = performance.now()
  const pg = (await import('pg')).default
  const { createPostgresDatabase } = await import('../../server/utils/database')
  const { ensureMessagePartitions } = await import('../../server/utils/retention/partitions')
  const handle = createPostgresDatabase(databaseUrl, 2)
  try {
    await ensureMessagePartitions(handle.db, { fromDaysAgo: 7 })
  }
  finally {
    await handle.close()
  }
  const pairs = users.filter((_, index) => index % 2 === 0).map(user => ({ id: user.conversationId, a: user.id, b: users[user.partner]!.id }))
  const perConversation = Math.ceil(rows / pairs.length)
  const spanMs = 6 * DAY
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  let insertedRows = 0
  try {
    const { rows: done } = await client.query<{ id: string }>('select id::text from conversations where id = any($1::uuid[]) and last_seq >= $2', [pairs.map(pair => pair.id), perConversation])
    const finished = new Set(done.map(row => row.id))
    const todo = pairs.filter(pair => !finished.has(pair.id))
    log(`history: ${pairs.length - todo.length} of ${pairs.length} conversations already hold ${perConversation} messages`)
    const start = new Date(Date.now() - spanMs - 60_000)
    // About half a million rows a statement: progress to report, and each statement bounded.
    const batch = Math.max(1, Math.floor(500_000 / perConversation))
    await client.query('set statement_timeout = \'15min\'')
    for (let i = 0; i < todo.length; i += batch) {
      if (performance.now() - started > deadlineMs) throw new Error(`history seeding passed its deadline of ${Math.round(deadlineMs / 1000)} s after ${insertedRows} rows; run again to resume`)
      const chunk = todo.slice(i, i + batch)
      await client.query('begin')
      // A chunk that a killed run left half-done starts over.
      await client.query('delete from messages where conversation_id = any($1::uuid[])', [chunk.map(pair => pair.id)])
      const result = await client.query(`
        insert into messages (id, conversation_id, seq, sender_id, client_id, body, created_at)
        select gen_random_uuid(), c.id, g.n, case when g.n % 2 = 0 then c.a else c.b end, gen_random_uuid(),
          'history ' || g.n || ' ' || md5(c.id::text || g.n) || ' ' || md5(g.n::text),
          $4::timestamptz + (g.n * ($5::float8 / $6::int)) * interval '1 millisecond'
        from unnest($1::uuid[], $2::uuid[], $3::uuid[]) as c(id, a, b)
        cross join generate_series(1, $6::int) as g(n)`,
      [chunk.map(pair => pair.id), chunk.map(pair => pair.a), chunk.map(pair => pair.b), start.toISOString(), spanMs, perConversation])
      await client.query('update conversations set last_seq = $2, last_message_at = $3 where id = any($1::uuid[])', [chunk.map(pair => pair.id), perConversation, new Date(start.getTime() + spanMs)])
      await client.query('commit')
      insertedRows += result.rowCount ?? 0
      log(`history: ${insertedRows} rows inserted (${Math.round(insertedRows / ((performance.now() - started) / 1000))}/s)`)
    }
    if (insertedRows) await client.query('analyze messages')
  }
  finally {
    await client.end()
  }
  return { rows: perConversation * pairs.length, insertedRows, seconds: (performance.now() - started) / 1000, perConversation, spanDays: spanMs / DAY }
}

export interface HistoryKind { name: string, path: string, latency: Percentiles, errors: number }
export interface HistoryResult { rate: number, seconds: number, requests: number, skipped: number, kinds: HistoryKind[], all: Percentiles }

/**
 * Open-loop history reads through the REST endpoints, as clients make them: the newest page when
 * a conversation opens, an older page by time when scrolling back, and a resync page by seq.
 */
export async function readHistory(base: string, users: BenchUser[], perConversation: number, spanDays: number, rate: number, seconds: number): Promise<HistoryResult> {
  const now = Date.now()
  const kinds = [
    { name: 'newest page (GET /api/messages/{userId}?limit=50)', path: (user: BenchUser) => `/api/messages/${users[user.partner]!.id}?limit=50` },
    { name: 'older page by time (…?before=ISO&limit=50)', path: (user: BenchUser) => `/api/messages/${users[user.partner]!.id}?before=${new Date(now - Math.random() * spanDays * DAY).toISOString()}&limit=50` },
    { name: 'resync by seq (GET /api/conversations/{id}/messages?after=seq&limit=50)', path: (user: BenchUser) => `/api/conversations/${user.conversationId}/messages?after=${Math.floor(Math.random() * perConversation)}&limit=50` }
  ]
  const histograms = kinds.map(() => histogram())
  const all = histogram()
  const errors = kinds.map(() => 0)
  let inFlight = 0
  let skipped = 0
  let requests = 0
  const total = Math.round(rate * seconds)
  const begin = performance.now()
  const pending: Array<Promise<void>> = []
  for (let sent = 0; sent < total;) {
    const due = Math.min(total, Math.floor((rate * (performance.now() - begin)) / 1000) + 1)
    while (sent < due) {
      const index = sent++
      // Bounded: a server that stops answering must not grow this process without end.
      if (inFlight >= 256) {
        skipped++
        continue
      }
      const kind = index % kinds.length
      const user = users[Math.floor(Math.random() * users.length)]!
      const at = performance.now()
      inFlight++
      requests++
      pending.push(fetch(base + kinds[kind]!.path(user), { headers: { cookie: user.cookie, origin: base } })
        .then(async (response) => {
          await response.arrayBuffer()
          const micros = Math.max(1, Math.round((performance.now() - at) * 1000))
          if (!response.ok) errors[kind]!++
          histograms[kind]!.recordValue(micros)
          all.recordValue(micros)
        }, () => {
          errors[kind]!++
        })
        .finally(() => {
          inFlight--
        }))
    }
    await sleep(1)
  }
  await Promise.all(pending)
  return {
    rate,
    seconds,
    requests,
    skipped,
    kinds: kinds.map((kind, index) => ({ name: kind.name, path: kind.path(users[0]!).replace(/[0-9a-f-]{36}/g, '…'), latency: percentiles(histograms[index]!), errors: errors[index]! })),
    all: percentiles(all)
  }
}

/** EXPLAIN ANALYZE of the two page queries as Kysely writes them (server/utils/messages.ts). */
export async function explainHistory(databaseUrl: string, user: BenchUser, retentionDays: number): Promise<Record<string, string>> {
  const pg = (await import('pg')).default
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    const cutoff = new Date(Date.now() - retentionDays * DAY).toISOString()
    const before = new Date(Date.now() - 3 * DAY).toISOString()
    const plans: Record<string, string> = {}
    const queries: Record<string, [string, unknown[]]> = {
      'historyByTime, older page': ['select * from messages where conversation_id = $1 and created_at > $2 and created_at < $3 order by seq desc limit 50', [user.conversationId, cutoff, before]],
      'historyByTime, newest page': ['select * from messages where conversation_id = $1 and created_at > $2 order by seq desc limit 50', [user.conversationId, cutoff]],
      'historyBySeq, after': ['select * from messages where conversation_id = $1 and created_at > $2 and seq > $3 order by seq asc limit 50', [user.conversationId, cutoff, 100]]
    }
    for (const [name, [text, params]] of Object.entries(queries)) {
      const { rows } = await client.query(`explain (analyze, buffers) ${text}`, params)
      plans[name] = rows.map(row => row['QUERY PLAN']).join('\n')
    }
    return plans
  }
  finally {
    await client.end()
  }
}
