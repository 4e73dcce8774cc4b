import { sql, type Kysely, type RawBuilder, type Selectable, type Transaction } from 'kysely'
import type { Database, MessagesTable } from '../../database/schema'
import { UNSPACED_SCRIPTS } from '../../database/migrations/0007_search'
import { MAX_SEARCH_DEPTH, type Search, type SearchAnswerBody, type SearchResult } from '#shared/types/search'
import type { ChatMessage } from '#shared/types/messages'
import { useConfig } from '../config'
import { fail } from '../http'
import { toChatMessage, withReactionsAndReplies } from '../messages/history'
import { retentionCutoff } from '../retention/cutoff'

/** Past this, PostgreSQL cancels the search: a slow search answers 503 instead of holding a connection. */
export const SEARCH_TIMEOUT_MS = 2000
/**
 * Searches running at once on one instance. Each holds one of the pool's connections, which the
 * persister shares: in the 10M benchmark, unbounded searches through the word index held the
 * connections for their two seconds each and messages waited seconds to be stored. Past this a
 * search answers 503 at once.
 */
export const MAX_CONCURRENT_SEARCHES = 4
let running = 0
/** About a sentence either side of the first match: enough to recognise the message. */
const SNIPPET_CHARS = 200

/** The JavaScript twin of the migration's UNSPACED_SCRIPTS (same ranges), to pick the substring path. */
const UNSPACED = /[\u0E00-\u0EFF\u1000-\u109F\u1780-\u17FF\u3040-\u30FF\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF\uFF66-\uFF9F]/u
/** A plain word: letters (with their combining marks) and digits only, so it is safe in to_tsquery. */
const LAST_PLAIN_WORD = /(^|\s)([\p{L}\p{M}\p{N}]+)$/u
const TRAILING_OR = /(^|\s)or$/iu

type Found = Selectable<MessagesTable>

/** The page a cursor points at: an offset into the ranked list, never past MAX_SEARCH_DEPTH. */
export function decodeCursor(cursor: string | undefined): number {
  if (cursor === undefined) return 0
  const offset = /^o(\d{1,6})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'))?.[1]
  const value = offset === undefined ? Number.NaN : Number(offset)
  if (!Number.isInteger(value) || value <= 0 || value >= MAX_SEARCH_DEPTH || Buffer.from(`o${value}`).toString('base64url') !== cursor) {
    throw fail(400, 'bad_request', 'This cursor is not one a search answered: start the search again.')
  }
  return value
}

function encodeCursor(offset: number): string {
  return Buffer.from(`o${offset}`).toString('base64url')
}

/**
 * The words of `q` as a tsquery: websearch_to_tsquery's syntax (quotes, `-word`, `or`), with the
 * last plain word matched as a prefix, since it is usually the one being typed. That word is
 * letters and digits only and goes through quote_literal, and websearch_to_tsquery takes any
 * text, so no query can raise a syntax error; one with no words at all matches nothing.
 */
export function wordsQuery(q: string): RawBuilder<unknown> {
  const text = q.trimEnd()
  const last = LAST_PLAIN_WORD.exec(text)
  const before = last ? text.slice(0, text.length - last[2]!.length) : text
  // Inside an open quote the word is part of a phrase: websearch_to_tsquery matches it whole.
  const quoted = (before.match(/"/g)?.length ?? 0) % 2 === 1
  if (!last || quoted) return sql`websearch_to_tsquery('simple', ${text})`
  const prefix = sql`to_tsquery('simple', quote_literal(${last[2]!}) || ':*')`
  const rest = before.trimEnd()
  if (!rest) return prefix
  if (TRAILING_OR.test(rest)) return sql`(websearch_to_tsquery('simple', ${rest.slice(0, -2)}) || ${prefix})`
  return sql`(websearch_to_tsquery('simple', ${rest}) && ${prefix})`
}

/** The terms of a substring search: each must appear (or, after `-`, must not), in any case. */
export function substringTerms(q: string): { include: string[], exclude: string[] } {
  const terms = q.replaceAll('"', ' ').split(/\s+/u).filter(Boolean)
  return {
    include: terms.filter(term => !term.startsWith('-') || term.length === 1),
    exclude: terms.filter(term => term.startsWith('-') && term.length > 1).map(term => term.slice(1))
  }
}

const likePattern = (term: string) => `%${term.replace(/[\\%_]/gu, '\\$&')}%`

/**
 * Searches the messages `viewerId` may read: in conversations they are an active member of (a
 * message request not yet accepted, or one they blocked, is not searched: its sender is a
 * stranger whose words the person has not agreed to take in, and history shows them only to be
 * answered), inside retention, never deleted. Best match first, newer first among equals.
 */
export async function searchMessages(db: Kysely<Database>, viewerId: string, search: Search): Promise<SearchAnswerBody> {
  // Control characters are nothing anyone searches for, and PostgreSQL refuses NUL in text.
  const q = search.q.replace(/\p{Cc}/gu, ' ').trim()
  const filtered = search.conversationId || search.from || search.after || search.before || search.has
  if (!q && !filtered) throw fail(400, 'bad_request', 'Type something to search for.')
  const offset = decodeCursor(search.cursor)
  const limit = Math.min(search.limit, MAX_SEARCH_DEPTH - offset)
  const substring = q ? substringTerms(q) : undefined
  const mode = !q ? 'none' : substring!.include.some(term => UNSPACED.test(term)) ? 'substring' : 'words'

  if (running >= MAX_CONCURRENT_SEARCHES) throw fail(503, 'unavailable', 'Search is busy: try again in a moment.')
  running++
  let rows: Found[]
  try {
    rows = await db.transaction().execute(async (trx) => {
      // Local to this transaction: the pool's connection goes back without it.
      await sql`set local statement_timeout = ${sql.lit(SEARCH_TIMEOUT_MS)}`.execute(trx)
      return findRows(trx, viewerId, search, q, mode, substring, offset, limit)
    })
  }
  catch (error) {
    if ((error as { code?: string }).code === '57014') throw fail(503, 'unavailable', 'This search took too long: add a word or a filter and try again.')
    throw error
  }
  finally {
    running--
  }

  const page = rows.slice(0, limit)
  const next = rows.length > limit && offset + limit < MAX_SEARCH_DEPTH ? encodeCursor(offset + limit) : null
  const marks = mode === 'substring' ? { patterns: substringPatterns(substring!.include), inTokens: true } : { patterns: mode === 'words' ? wordPatterns(q) : [], inTokens: false }
  return { results: await toResults(db, viewerId, page, marks), next }
}

async function findRows(trx: Transaction<Database>, viewerId: string, search: Search, q: string, mode: 'none' | 'words' | 'substring', substring: { include: string[], exclude: string[] } | undefined, offset: number, limit: number): Promise<Found[]> {
  const cutoff = retentionCutoff(useConfig().retentionDays)
  const { total } = await trx.selectFrom('conversation_members as me').innerJoin('conversations as c', 'c.id', 'me.conversation_id')
    .select(eb => eb.fn.coalesce(eb.fn.sum<number>('c.last_seq'), eb.lit(0)).as('total'))
    .where('me.user_id', '=', viewerId).where('me.state', '=', 'active')
    .$if(!!search.conversationId, query => query.where('c.id', '=', search.conversationId!))
    .executeTakeFirstOrThrow()
  // Up to `searchScanUpTo` messages in the person's conversations (by their seq counters, so
  // messages past retention count too), reading them all by conversation through the primary key
  // and testing each is faster than the word indexes: a common word's GIN entries cover a large
  // share of every partition, tens of milliseconds each, where a person's own messages are a few
  // thousand rows. Past it, the indexes narrow the search first. The planner is steered with the
  // same values through coalesce (neither is ever null), which no index serves.
  const own = Number(total) <= useConfig().searchScanUpTo
  const words = own ? sql`coalesce(m.search, ''::tsvector)` : sql`m.search`
  const body = own ? sql`coalesce(m.body, '')` : sql`m.body`
  const conditions = [
    // An array, not IN (subquery): each partition then probes its indexes with the list.
    sql`m.conversation_id = any(array(select conversation_id from conversation_members where user_id = ${viewerId} and state = 'active'))`,
    sql`m.created_at > ${cutoff}`,
    sql`m.deleted_at is null`
  ]
  if (search.conversationId) conditions.push(sql`m.conversation_id = ${search.conversationId}`)
  if (search.from) conditions.push(sql`m.sender_id = ${search.from}`)
  if (search.after) conditions.push(sql`m.created_at > ${new Date(search.after)}`)
  if (search.before) conditions.push(sql`m.created_at < ${new Date(search.before)}`)
  if (search.has === 'link') conditions.push(sql`m.body ~* 'https?://'`)
  // Messages have no attachments yet (files are a later issue): nothing has a file.
  if (search.has === 'file') conditions.push(sql`false`)

  const columns = sql`m.id, m.conversation_id, m.seq, m.sender_id, m.client_id, m.body, m.created_at, m.edited_at, m.deleted_at, m.deleted_by, m.reply_to, m.mentions, m.mentions_room`
  const where = sql.join(conditions, sql` and `)
  if (mode === 'words') {
    const { rows } = await sql<Found>`
      with q as (select ${wordsQuery(q)} as query)
      select ${columns}
      from messages m, q
      where ${words} @@ q.query and ${where}
      order by ts_rank_cd(m.search, q.query) desc, m.created_at desc, m.id
      offset ${offset} limit ${limit + 1}`.execute(trx)
    return rows
  }
  if (mode === 'substring') {
    const { include, exclude } = substring!
    // The same expression as the trigram index's predicate: the planner sees the index applies.
    if (!own) conditions.push(sql`m.body ~ ${sql.lit(UNSPACED_SCRIPTS)}`)
    for (const term of include) conditions.push(sql`${body} ilike ${likePattern(term)}`)
    for (const term of exclude) conditions.push(sql`${body} not ilike ${likePattern(term)}`)
  }
  const { rows } = await sql<Found>`
    select ${columns} from messages m
    where ${sql.join(conditions, sql` and `)}
    order by m.created_at desc, m.id
    offset ${offset} limit ${limit + 1}`.execute(trx)
  return rows
}

async function toResults(db: Kysely<Database>, viewerId: string, rows: Found[], marks: { patterns: RegExp[], inTokens: boolean }): Promise<SearchResult[]> {
  if (!rows.length) return []
  const ids = [...new Set(rows.map(row => row.conversation_id))]
  // One round trip: each conversation, with its two members when it is direct (for `to`).
  const described = await db.selectFrom('conversations as c')
    .leftJoin('conversation_members as cm', join => join.onRef('cm.conversation_id', '=', 'c.id').on('c.kind', '=', 'direct'))
    .select(['c.id', 'c.kind', 'c.name', 'cm.user_id']).where('c.id', 'in', ids).execute()
  const conversations = new Map(described.map(row => [row.id, row]))
  const members = described.filter(row => row.user_id !== null).map(row => ({ conversation_id: row.id, user_id: row.user_id! }))

  // Reactions and reply previews, a conversation at a time (withReactionsAndReplies reads one).
  const messages = new Map<string, ChatMessage>()
  for (const id of ids) {
    const conversation = conversations.get(id)!
    const recipients = conversation.kind === 'room' ? { kind: 'room' as const } : { kind: 'direct' as const, members: members.filter(member => member.conversation_id === id).map(member => member.user_id) }
    const own = rows.filter(row => row.conversation_id === id).map(row => toChatMessage(row, recipients))
    for (const message of await withReactionsAndReplies(db, viewerId, own)) messages.set(message.id, message)
  }

  return rows.map((row) => {
    const conversation = conversations.get(row.conversation_id)!
    const { snippet, highlights } = around(row.body, marks.patterns, marks.inTokens)
    return {
      message: messages.get(row.id)!,
      conversation: { id: conversation.id, kind: conversation.kind, name: conversation.kind === 'room' ? conversation.name : null },
      snippet,
      highlights
    }
  })
}

const WORD_CHAR = '[\\p{L}\\p{M}\\p{N}]'
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/gu, '\\$&')

/**
 * The words a words-search matched, as patterns to mark them in a snippet: every word of `q` but
 * the excluded (`-word`) and the operator `or`, whole words, the last one (being typed) as the
 * start of a word, marked whole, as the query matches them. Marked in JavaScript, not by ts_headline, which drops
 * anything shaped like an HTML tag from the text it returns: a snippet must be the message's text.
 */
export function wordPatterns(q: string): RegExp[] {
  const terms = q.trim().split(/\s+/u).filter(Boolean)
  const words: Array<{ word: string, prefix: boolean }> = []
  let quoted = false
  terms.forEach((term, index) => {
    const opens = !quoted && term.startsWith('"')
    const excluded = !quoted && term.startsWith('-') && term.length > 1
    quoted = ((term.match(/"/gu)?.length ?? 0) % 2 === 1) !== quoted
    if (excluded || (!opens && !quoted && term.toLowerCase() === 'or')) return
    const last = index === terms.length - 1 && !quoted && !term.includes('"')
    const parts = term.split(new RegExp(`[^\\p{L}\\p{M}\\p{N}]+`, 'u')).filter(Boolean)
    parts.forEach((word, at) => words.push({ word, prefix: last && at === parts.length - 1 }))
  })
  return words.map(({ word, prefix }) => new RegExp(`(?<!${WORD_CHAR})${escapeRegExp(word)}${prefix ? `${WORD_CHAR}*` : `(?!${WORD_CHAR})`}`, 'giu'))
}

/** The terms of a substring search as patterns: anywhere, in any case. */
export function substringPatterns(terms: string[]): RegExp[] {
  return terms.map(term => new RegExp(escapeRegExp(term), 'giu'))
}

// What the text-search parser takes as one token (a link, an address, a host name): a word
// inside one did not match, so it is not marked either.
const WHOLE_TOKENS = /\S*(?:https?:\/\/|www\.)\S*|\S+@\S+|[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)+/gu

/**
 * A window of the body around the first match of `patterns`, and every match in it, ignoring case
 * (a regular expression, so the offsets are the body's own even where lowercase changes a
 * string's length). `inTokens`: a substring search, which matches inside links too.
 */
export function around(body: string, patterns: RegExp[], inTokens = true): Pick<SearchResult, 'snippet' | 'highlights'> {
  const first = Math.min(...patterns.map(pattern => body.search(pattern)).filter(at => at >= 0), body.length)
  let start = first === body.length ? 0 : Math.max(0, first - Math.floor(SNIPPET_CHARS / 4))
  let end = Math.min(body.length, start + SNIPPET_CHARS)
  // Never split a surrogate pair at either end.
  const lowSurrogate = (at: number) => body.charCodeAt(at) >= 0xDC00 && body.charCodeAt(at) <= 0xDFFF
  if (start > 0 && lowSurrogate(start)) start--
  if (end < body.length && lowSurrogate(end)) end++
  const snippet = body.slice(start, end)
  const tokens = inTokens ? [] : [...snippet.matchAll(WHOLE_TOKENS)].map(match => ({ start: match.index, end: match.index + match[0].length }))
  const found = patterns.flatMap(pattern => [...snippet.matchAll(pattern)].map(match => ({ start: match.index, length: match[0].length })))
    .filter(hit => hit.length > 0 && !tokens.some(token => hit.start >= token.start && hit.start < token.end))
    .sort((a, b) => a.start - b.start || b.length - a.length)
  // Overlapping terms ("東京" and "京都" in "東京都") are kept apart: a client marks each once.
  const highlights: SearchResult['highlights'] = []
  for (const hit of found) {
    const previous = highlights.at(-1)
    if (previous && hit.start < previous.start + previous.length) {
      previous.length = Math.max(previous.length, hit.start + hit.length - previous.start)
      continue
    }
    highlights.push({ ...hit })
  }
  return { snippet, highlights }
}
