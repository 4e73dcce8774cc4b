// The search box's text, read the way a person writes it: `from:alice in:#design before:2026-11-01
// has:link budget "final draft"`. Pure (no stores, no requests), so the unit tests pin it down.

export type SearchFilterKey = 'from' | 'in' | 'before' | 'after' | 'has'
export const SEARCH_FILTER_KEYS: readonly SearchFilterKey[] = ['from', 'in', 'before', 'after', 'has']

/** One `key:value` in the box, with where it stands in the text (to remove or replace it). */
export interface SearchToken {
  key: SearchFilterKey
  /** Without quotes; `in:` keeps its `#` or `@`. Empty while the person is still typing it. */
  value: string
  start: number
  end: number
}

export interface ParsedSearch {
  /** The words, as written (quotes, `-word`, `or` are the server's websearch syntax). */
  words: string
  tokens: SearchToken[]
}

export interface KnownPerson {
  id: string
  name: string
  email?: string
}

export interface KnownConversation {
  id: string
  kind: 'room' | 'direct'
  name: string
  /** The other person of a direct conversation. */
  peer?: KnownPerson
}

/** Who and what the page knows: contacts, members of loaded rooms, and the conversations in the list. */
export interface SearchDirectory {
  me?: KnownPerson
  people: KnownPerson[]
  conversations: KnownConversation[]
}

/** What `GET /api/search` is asked (the cursor and limit aside). */
export interface SearchParams {
  q: string
  from?: string
  conversationId?: string
  before?: string
  after?: string
  has?: 'link' | 'file'
}

export interface SearchChip {
  key: SearchFilterKey
  start: number
  end: number
  /** "From: Ada Lovelace", "In: #design", "Before: 1 Nov 2026". */
  label: string
  /** Why this filter cannot be searched with: "No one called alice". */
  error: string | null
  /** Written without a value yet (`from:`): shown, not sent, no error. */
  pending: boolean
}

export interface ResolvedSearch {
  chips: SearchChip[]
  /** Null when there is nothing to search, or a chip is in error (nothing is sent then). */
  params: SearchParams | null
  /** An error of the words themselves (too long). */
  error: string | null
}

const FILTER = /^(from|in|before|after|has):/i
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/

/**
 * Splits the box's text into filters and words. A quoted value may hold spaces
 * (`from:"Ada Lovelace"`, `in:#"team design"`); anything that is not a known `key:` is a word.
 */
export function parseSearchText(text: string): ParsedSearch {
  const words: string[] = []
  const tokens: SearchToken[] = []
  let index = 0
  while (index < text.length) {
    if (/\s/.test(text[index]!)) {
      index += 1
      continue
    }
    const start = index
    // Up to the next space outside quotes: `-"two words"` and `"a phrase"` stay one word.
    let quoted = false
    while (index < text.length && (quoted || !/\s/.test(text[index]!))) {
      if (text[index] === '"') quoted = !quoted
      index += 1
    }
    const piece = text.slice(start, index)
    const filter = FILTER.exec(piece)
    if (filter) {
      tokens.push({ key: filter[1]!.toLowerCase() as SearchFilterKey, value: piece.slice(filter[0].length).replaceAll('"', '').trim(), start, end: index })
    }
    else {
      words.push(piece)
    }
  }
  return { words: words.join(' '), tokens }
}

/** A filter as the box writes it when one is picked: quoted when the value has spaces. */
export function searchTokenText(key: SearchFilterKey, value: string): string {
  const clean = value.replaceAll('"', '').trim()
  if (!/\s/.test(clean)) return `${key}:${clean}`
  const sigil = key === 'in' && (clean.startsWith('#') || clean.startsWith('@')) ? clean.slice(0, 1) : ''
  return `${key}:${sigil}"${clean.slice(sigil.length)}"`
}

/** The text with one filter put in: replacing the one of that key already there, else at the front. */
export function withSearchFilter(text: string, key: SearchFilterKey, value: string): string {
  const token = searchTokenText(key, value)
  const existing = parseSearchText(text).tokens.find(candidate => candidate.key === key)
  if (existing) return text.slice(0, existing.start) + token + text.slice(existing.end)
  return text.trim() ? `${token} ${text.trimStart()}` : `${token} `
}

/** The text without the filter at `start`..`end`, and without the space it leaves. */
export function withoutSearchFilter(text: string, start: number, end: number): string {
  const before = text.slice(0, start).replace(/\s+$/, '')
  const after = text.slice(end).replace(/^\s+/, '')
  return before && after ? `${before} ${after}` : before + after
}

/** For matching names as people type them: case, accents and width do not matter. */
export function foldForSearch(text: string): string {
  return text.normalize('NFKD').replace(/\p{M}/gu, '').toLocaleLowerCase().trim()
}

/** The best tier of matches: exact name or address, then name or address prefix, then a word of the name. */
function bestMatches<T>(items: T[], value: string, keys: (item: T) => Array<string | undefined>, id: (item: T) => string): T[] {
  const wanted = foldForSearch(value)
  if (!wanted) return []
  const tiers: Array<(candidate: string) => boolean> = [
    candidate => candidate === wanted,
    candidate => candidate.startsWith(wanted),
    candidate => candidate.split(/[\s._@-]+/u).some(word => word.startsWith(wanted))
  ]
  for (const tier of tiers) {
    const found = new Map<string, T>()
    for (const item of items) {
      if (keys(item).some(key => key !== undefined && tier(foldForSearch(key)))) found.set(id(item), item)
    }
    if (found.size) return [...found.values()]
  }
  return []
}

function several(names: string[]): string {
  const shown = names.slice(0, 3).map(name => `“${name}”`)
  const rest = names.length - shown.length
  return rest > 0 ? `${shown.join(', ')} and ${rest} more` : shown.length > 1 ? `${shown.slice(0, -1).join(', ')} or ${shown.at(-1)}` : shown[0]!
}

function person(directory: SearchDirectory, value: string): { person?: KnownPerson, error?: string } {
  const people = directory.me ? [directory.me, ...directory.people] : directory.people
  if (directory.me && foldForSearch(value) === 'me') return { person: directory.me }
  const found = bestMatches(people, value, item => [item.name, item.email], item => item.id)
  if (found.length === 1) return { person: found[0] }
  if (!found.length) return { error: `No one called ${value}` }
  return { error: `${value} could be ${several(found.map(item => item.name))}` }
}

function conversation(directory: SearchDirectory, value: string): { conversation?: KnownConversation, error?: string } {
  const sigil = value[0]
  const name = sigil === '#' || sigil === '@' ? value.slice(1) : value
  const roomsOnly = directory.conversations.filter(item => item.kind === 'room')
  const directs = directory.conversations.filter(item => item.kind === 'direct' && item.peer)
  let found: KnownConversation[] = []
  if (sigil !== '@') found = bestMatches(roomsOnly, name, item => [item.name], item => item.id)
  if (!found.length && sigil !== '#') found = bestMatches(directs, name, item => [item.peer!.name, item.peer!.email], item => item.id)
  if (found.length === 1) return { conversation: found[0] }
  if (!name) return {}
  if (!found.length) return { error: sigil === '#' ? `No room called #${name}` : sigil === '@' ? `No chat with ${name}` : `No room or chat called ${name}` }
  return { error: `${value} could be ${several(found.map(conversationLabel))}` }
}

export function conversationLabel(item: KnownConversation): string {
  return item.kind === 'room' ? `#${item.name}` : item.peer?.name ?? item.name
}

/** A `YYYY-MM-DD` day as the reader's local midnight, or null for anything else (2026-02-30 too). */
export function searchDay(value: string): Date | null {
  const match = DATE.exec(value)
  if (!match) return null
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])]
  const date = new Date(year, month - 1, day)
  return date.getFullYear() === year && date.getMonth() === month - 1 && date.getDate() === day ? date : null
}

function dayLabelOf(date: Date): string {
  return date.toLocaleDateString(undefined, { day: 'numeric', month: 'short', year: 'numeric' })
}

const HAS: Record<string, 'link' | 'file'> = { link: 'link', links: 'link', file: 'file', files: 'file', attachment: 'file', attachments: 'file' }

/**
 * The filters resolved against what the page knows, as chips, and the request they make.
 * A filter that names no one (or is no date) is a chip in error and nothing is sent: a search
 * quietly widened to everyone would answer a question nobody asked.
 */
export function resolveSearch(parsed: ParsedSearch, directory: SearchDirectory, maxChars = 200): ResolvedSearch {
  const params: SearchParams = { q: parsed.words.trim() }
  const chips: SearchChip[] = []
  const seen = new Set<string>()
  let beforeDay: Date | null = null
  let afterDay: Date | null = null
  for (const token of parsed.tokens) {
    const chip: SearchChip = { key: token.key, start: token.start, end: token.end, label: '', error: null, pending: !token.value }
    chips.push(chip)
    const title = token.key[0]!.toUpperCase() + token.key.slice(1)
    chip.label = `${title}: ${token.value || '…'}`
    if (chip.pending) continue
    // The API takes one of each: a second would be silently dropped otherwise.
    if (seen.has(token.key)) {
      chip.error = `Only one ${token.key}: at a time`
      continue
    }
    seen.add(token.key)
    switch (token.key) {
      case 'from': {
        const found = person(directory, token.value)
        if (found.person) {
          params.from = found.person.id
          chip.label = `From: ${found.person.id === directory.me?.id ? 'you' : found.person.name}`
        }
        else chip.error = found.error!
        break
      }
      case 'in': {
        const found = conversation(directory, token.value)
        if (found.conversation) {
          params.conversationId = found.conversation.id
          chip.label = `In: ${conversationLabel(found.conversation)}`
        }
        else if (found.error) chip.error = found.error
        else chip.pending = true
        break
      }
      case 'before':
      case 'after': {
        const day = searchDay(token.value)
        if (!day) {
          chip.error = `${token.value} is not a date (write it as 2026-11-01)`
          break
        }
        chip.label = `${title}: ${dayLabelOf(day)}`
        // `before:` the day's start; `after:` includes the day, so `after:D before:D+1` is day D.
        if (token.key === 'before') {
          beforeDay = day
          params.before = day.toISOString()
        }
        else {
          afterDay = day
          params.after = day.toISOString()
        }
        break
      }
      case 'has': {
        const has = HAS[token.value.toLowerCase()]
        if (has) {
          params.has = has
          chip.label = has === 'link' ? 'Has a link' : 'Has a file'
        }
        else chip.error = 'has: is link or file'
        break
      }
    }
  }
  if (beforeDay && afterDay && afterDay >= beforeDay) {
    const chip = chips.findLast(candidate => candidate.key === 'before' && !candidate.error)!
    chip.error = 'before: must be later than after:'
  }
  const error = params.q.length > maxChars ? `A search is at most ${maxChars} characters.` : null
  const anything = params.q || params.from || params.conversationId || params.before || params.after || params.has
  return { chips, params: error || chips.some(chip => chip.error) || !anything ? null : params, error }
}

export interface SnippetPart {
  text: string
  mark: boolean
}

/**
 * The snippet cut at the server's highlight offsets (UTF-16, as JavaScript counts), to be shown
 * as text with `<mark>` around the matches: never parsed as markup. Offsets out of range or
 * overlapping are clamped and merged rather than trusted.
 */
export function snippetParts(text: string, highlights: ReadonlyArray<{ start: number, length: number }>): SnippetPart[] {
  const ranges = highlights
    .map(({ start, length }) => [Math.max(0, Math.min(text.length, start)), Math.max(0, Math.min(text.length, start + length))] as const)
    .filter(([start, end]) => end > start)
    .sort((a, b) => a[0] - b[0])
  const parts: SnippetPart[] = []
  let at = 0
  for (const [start, end] of ranges) {
    if (end <= at) continue
    const from = Math.max(start, at)
    if (from > at) parts.push({ text: text.slice(at, from), mark: false })
    const last = parts.at(-1)
    // Touching or overlapping matches are one mark.
    if (last?.mark && from === at) last.text += text.slice(from, end)
    else parts.push({ text: text.slice(from, end), mark: true })
    at = end
  }
  if (at < text.length) parts.push({ text: text.slice(at), mark: false })
  return parts
}
