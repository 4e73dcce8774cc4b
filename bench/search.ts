// Search at scale (issue 16): seeds millions of messages straight into PostgreSQL, then measures
// GET /api/search while the same people chat through the app. Run through bench/run.ts:
//
//   npm run bench -- search --backend real [--messages N] [--rate R] [--duration S] [--write-rate R]
import type { BenchUser } from './seed'
import { histogram, percentiles, type Percentiles } from './support/load'
import { sleep } from './support/procs'

const DAY = 24 * 3600_000

/**
 * A small vocabulary in the languages search promises (English, German, French, Spanish,
 * Russian, and Chinese and Japanese for the substring path), drawn with a skew so that a few words
 * are in many messages and most in few, as in real chat.
 */
export const VOCABULARY = [
  'the', 'meeting', 'budget', 'review', 'tomorrow', 'deploy', 'release', 'coffee', 'lunch', 'design', 'invoice', 'customer', 'server', 'database', 'holiday',
  'weekend', 'report', 'figures', 'thanks', 'question', 'answer', 'ticket', 'bug', 'feature', 'office', 'train', 'flight', 'hotel', 'project', 'deadline',
  'morgen', 'Besprechung', 'Straße', 'Brücke', 'über', 'müssen', 'Rechnung', 'Kunde', 'Urlaub', 'Frühstück', 'Größe', 'schön', 'danke', 'Termin', 'Zug',
  'café', 'église', 'réunion', 'demain', 'facture', 'très', 'déjà', 'été', 'hôtel', 'garçon', 'leçon', 'où', 'voilà', 'merci', 'bientôt',
  'mañana', 'reunión', 'estación', 'año', 'niño', 'señor', 'cumpleaños', 'gracias', 'dónde', 'información', 'canción', 'corazón', 'jamás', 'fácil', 'difícil',
  'встреча', 'пятница', 'завтра', 'календарь', 'отчёт', 'спасибо', 'проект', 'сервер', 'клиент', 'поезд', 'гостиница', 'вопрос', 'ответ', 'работа', 'обед',
  '会议', '预算', '明天', '北京', '谢谢', '项目', '东京', '待ち合わせ', 'タワー', 'ありがとう', '会議', '予算', '明日', '新幹線', 'ラーメン'
]

/** Pure Latin and Cyrillic words, for the word-path kinds (the CJK ones go the substring path). */
const SPACED = VOCABULARY.filter(word => !/[\u3040-\u30FF\u4E00-\u9FFF]/u.test(word))

export interface SearchSeed { messages: number, insertedMessages: number, seconds: number, perConversation: number, spanDays: number, statements: number }

/**
 * Fills the pairs' direct conversations with `messages` in all, over the last six days (seven
 * daily partitions, as a week-old deployment has them), seq 1…M per conversation and created_at
 * growing with seq, as the persister writes them. One INSERT … SELECT generate_series per day
 * partition: no row crosses the wire, and each statement fills one partition's tsvector and GIN
 * index. Each body is 6 to 14 words of the vocabulary, with the low indices likelier, plus a
 * message-specific token ("n12345"), so a rare word is searchable too. Resumable: when every
 * conversation already holds M messages the seeding is skipped.
 */
export async function seedSearch(databaseUrl: string, users: BenchUser[], messages: number, deadlineMs: number, log: (line: string) => void): Promise<SearchSeed> {
  const started = performance.now()
  const pg = (await import('pg')).default
  const { createPostgresDatabase } = await import('../server/utils/database')
  const { ensureMessagePartitions } = await import('../server/utils/retention/partitions')
  const handle = createPostgresDatabase(databaseUrl, 2)
  try {
    await ensureMessagePartitions(handle.db, { fromDaysAgo: 7 })
  }
  finally {
    await handle.close()
  }
  const pairs = users.filter((_, index) => index % 2 === 0).map(user => ({ id: user.conversationId, a: user.id, b: users[user.partner]!.id }))
  const perConversation = Math.ceil(messages / pairs.length)
  const spanMs = 6 * DAY
  const step = spanMs / perConversation
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  let insertedMessages = 0
  let statements = 0
  try {
    const { rows: [done] } = await client.query<{ n: string }>('select count(*) as n from conversations where id = any($1::uuid[]) and last_seq >= $2', [pairs.map(pair => pair.id), perConversation])
    if (Number(done!.n) === pairs.length) {
      log(`search: all ${pairs.length} conversations already hold ${perConversation} messages`)
      return { messages: perConversation * pairs.length, insertedMessages: 0, seconds: (performance.now() - started) / 1000, perConversation, spanDays: spanMs / DAY, statements }
    }
    await client.query('set statement_timeout = \'60min\'')
    // A run killed half-way starts over.
    log('search: removing what an earlier run left in these conversations')
    await client.query('delete from messages where conversation_id = any($1::uuid[])', [pairs.map(pair => pair.id)])
    const start = Date.now() - spanMs - 60_000
    // seq n is at start + n·step: each UTC day's partition holds the seqs whose time falls in it.
    for (let dayStart = Math.floor(start / DAY) * DAY; dayStart < start + spanMs + step; dayStart += DAY) {
      if (performance.now() - started > deadlineMs) throw new Error(`search seeding passed its deadline of ${Math.round(deadlineMs / 1000)} s after ${insertedMessages} messages; run again`)
      const first = Math.max(1, Math.ceil((dayStart - start) / step))
      const last = Math.min(perConversation, Math.ceil((dayStart + DAY - start) / step) - 1)
      if (last < first) continue
      const result = await client.query(`
        insert into messages (id, conversation_id, seq, sender_id, client_id, body, created_at)
        select gen_random_uuid(), c.id, g.n, case when g.n % 2 = 0 then c.a else c.b end, gen_random_uuid(),
          w.words || ' n' || g.n, $4::timestamptz + (g.n * $5::float8) * interval '1 millisecond'
        from unnest($1::uuid[], $2::uuid[], $3::uuid[]) as c(id, a, b)
        cross join generate_series($7::int, $8::int) as g(n)
        -- Refers to g.n, so it is drawn again for every row.
        cross join lateral (
          select string_agg(($6::text[])[1 + floor(power(random(), 2.5) * array_length($6::text[], 1))::int], ' ') as words
          from generate_series(1, 6 + g.n % 9)
        ) w`,
      [pairs.map(pair => pair.id), pairs.map(pair => pair.a), pairs.map(pair => pair.b), new Date(start).toISOString(), step, VOCABULARY, first, last])
      statements++
      insertedMessages += result.rowCount ?? 0
      log(`search: ${insertedMessages} messages inserted (${new Date(dayStart).toISOString().slice(0, 10)}, ${Math.round(insertedMessages / ((performance.now() - started) / 1000))}/s)`)
    }
    await client.query('update conversations set last_seq = $2, last_message_at = $3 where id = any($1::uuid[])', [pairs.map(pair => pair.id), perConversation, new Date(start + perConversation * step)])
    await client.query('vacuum analyze messages')
  }
  finally {
    await client.end()
  }
  return { messages: perConversation * pairs.length, insertedMessages, seconds: (performance.now() - started) / 1000, perConversation, spanDays: spanMs / DAY, statements }
}

export interface IndexSizes { searchMiB: number, trigramMiB: number, tableMiB: number, partitions: number }

/** The GIN indexes' size, summed over every partition, beside the messages' own. */
export async function searchIndexSizes(databaseUrl: string): Promise<IndexSizes> {
  const pg = (await import('pg')).default
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    const sum = async (parent: string) => Number((await client.query<{ bytes: string }>(`select coalesce(sum(pg_relation_size(inhrelid)), 0) as bytes from pg_inherits where inhparent = $1::regclass`, [parent])).rows[0]!.bytes)
    const MiB = 2 ** 20
    const partitions = Number((await client.query<{ n: string }>(`select count(*) as n from pg_inherits where inhparent = 'messages'::regclass`)).rows[0]!.n)
    return { searchMiB: await sum('messages_search') / MiB, trigramMiB: await sum('messages_body_trigrams') / MiB, tableMiB: await sum('messages') / MiB, partitions }
  }
  finally {
    await client.end()
  }
}

export interface SearchKind { name: string, example: string, latency: Percentiles, errors: number, results: number }
export interface SearchReads { rate: number, seconds: number, requests: number, skipped: number, kinds: SearchKind[], all: Percentiles, statuses: Record<string, number> }

/** A word of the vocabulary with the same skew as the seeding: the common ones are searched most. */
const someWord = (words: string[]) => words[Math.floor(Math.random() ** 2.5 * words.length)]!

/**
 * Open-loop searches through GET /api/search as the box sends them, by random people (each sees
 * their own conversation's messages only): one word, two words, the prefix of a word being typed,
 * and one word with filters (from the other person, the last three days).
 */
export async function readSearch(base: string, users: BenchUser[], rate: number, seconds: number): Promise<SearchReads> {
  const kinds: Array<{ name: string, query: (user: BenchUser) => Record<string, string> }> = [
    { name: 'one word', query: () => ({ q: someWord(SPACED) }) },
    { name: 'two words', query: () => ({ q: `${someWord(SPACED)} ${someWord(SPACED)}` }) },
    { name: 'prefix (3 letters of a word)', query: () => ({ q: [...someWord(SPACED.filter(word => [...word].length > 3))].slice(0, 3).join('') }) },
    { name: 'one word, from: and after:', query: user => ({ q: someWord(SPACED), from: users[user.partner]!.id, after: new Date(Date.now() - 3 * DAY).toISOString() }) }
  ]
  const histograms = kinds.map(() => histogram())
  const all = histogram()
  const errors = kinds.map(() => 0)
  const results = kinds.map(() => 0)
  const statuses: Record<string, number> = {}
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
      const path = `/api/search?${new URLSearchParams(kinds[kind]!.query(user))}`
      const at = performance.now()
      inFlight++
      requests++
      pending.push(fetch(base + path, { headers: { 'cookie': user.cookie, 'origin': base, 'x-forwarded-for': user.ip } })
        .then(async (response) => {
          const body = await response.json().catch(() => undefined) as { results?: unknown[] } | undefined
          const micros = Math.max(1, Math.round((performance.now() - at) * 1000))
          statuses[response.status] = (statuses[response.status] ?? 0) + 1
          if (!response.ok) errors[kind]!++
          else results[kind]! += body?.results?.length ?? 0
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
    statuses,
    kinds: kinds.map((kind, index) => ({
      name: kind.name,
      example: new URLSearchParams(kind.query(users[0]!)).toString().replace(/[0-9a-f-]{36}/g, '…'),
      latency: percentiles(histograms[index]!),
      errors: errors[index]!,
      results: histograms[index]!.totalCount ? Math.round((10 * results[index]!) / histograms[index]!.totalCount) / 10 : 0
    })),
    all: percentiles(all)
  }
}

/**
 * EXPLAIN ANALYZE of the word query as search.ts writes it, for one person and word: through the
 * person's own messages (`own`, what a person with up to NATTER_SEARCH_SCAN_UP_TO messages gets)
 * or through the word index.
 */
export async function explainSearch(databaseUrl: string, user: BenchUser, word: string, retentionDays: number, own: boolean): Promise<string> {
  const pg = (await import('pg')).default
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    const cutoff = new Date(Date.now() - retentionDays * DAY).toISOString()
    const { rows } = await client.query(`explain (analyze, buffers)
      with q as (select to_tsquery('simple', quote_literal($3::text) || ':*') as query)
      select m.id, ts_rank_cd(m.search, q.query) as rank
      from messages m, q
      where ${own ? 'coalesce(m.search, \'\'::tsvector)' : 'm.search'} @@ q.query
        and m.conversation_id = any(array(select conversation_id from conversation_members where user_id = $1 and state = 'active'))
        and m.created_at > $2 and m.deleted_at is null
      order by rank desc, m.created_at desc, m.id limit 21`, [user.id, cutoff, word])
    return rows.map(row => row['QUERY PLAN']).join('\n')
  }
  finally {
    await client.end()
  }
}
