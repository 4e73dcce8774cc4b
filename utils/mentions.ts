/** A run of a message body: text, a mention of one person (`<@userId>`), or `@room`. */
export type MentionPart = { text: string } | { userId: string } | { room: true }

/** One person the composer inserted: shown as `@Name` while writing, sent as `<@userId>`. */
export interface Inserted {
  userId: string
  name: string
}

// The same tokens the server reads (shared/types/changes.ts): `<@uuid>`, and `@room` as a word of its own.
const TOKENS = /<@([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})>|(?<![\w@])@room\b/giu

/** A body cut into text, mentions and `@room`. */
export function splitMentions(body: string): MentionPart[] {
  const parts: MentionPart[] = []
  let at = 0
  for (const match of body.matchAll(TOKENS)) {
    if (match.index > at) parts.push({ text: body.slice(at, match.index) })
    parts.push(match[1] ? { userId: match[1].toLowerCase() } : { room: true })
    at = match.index + match[0].length
  }
  if (at < body.length) parts.push({ text: body.slice(at) })
  return parts
}

/** The body as text for the composer: each `<@userId>` as `@Name`, remembered to go back on send. */
export function fromTokens(body: string, nameOf: (userId: string) => string): { text: string, inserted: Inserted[] } {
  const inserted: Inserted[] = []
  const text = splitMentions(body).map((part) => {
    if ('text' in part) return part.text
    if ('room' in part) return '@room'
    const name = nameOf(part.userId)
    if (!inserted.some(known => known.userId === part.userId)) inserted.push({ userId: part.userId, name })
    return `@${name}`
  }).join('')
  return { text, inserted }
}

function escapeRegExp(text: string) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** The composer's text as sent: each `@Name` the composer inserted becomes `<@userId>` (longer names first). */
export function toTokens(text: string, inserted: readonly Inserted[]): string {
  let body = text
  for (const { userId, name } of [...inserted].sort((a, b) => b.name.length - a.name.length)) {
    body = body.replace(new RegExp(`(?<![\\w@])@${escapeRegExp(name)}(?![\\p{L}\\p{N}_])`, 'gu'), `<@${userId}>`)
  }
  return body
}

/** The `@word` being typed just before the caret: where it starts and what follows the @. */
export function mentionQuery(text: string, caret: number): { start: number, query: string } | null {
  const before = text.slice(0, caret)
  const match = /(?:^|\s)@([\p{L}\p{N}_.-]{0,30})$/u.exec(before)
  if (!match) return null
  return { start: caret - match[1]!.length - 1, query: match[1]! }
}
