import type { Kysely, Selectable } from 'kysely'
import type { Database, MessagesTable } from '../database/schema'
import type { ChatMessage } from '../../shared/types/chat'
import { retentionCutoff } from './conversations'

/** A stored row as the contract's message; `to` is the other member of the direct conversation. */
export function toChatMessage(row: Selectable<MessagesTable>, members: [string, string] | string[]): ChatMessage {
  return {
    id: row.id,
    conversationId: row.conversation_id,
    seq: row.seq,
    from: row.sender_id,
    to: members.find(member => member !== row.sender_id) ?? row.sender_id,
    body: row.body,
    timestamp: row.created_at.toISOString()
  }
}

/** Keyset page by time, newest last: the messages before `before` (exclusive). */
export async function historyByTime(db: Kysely<Database>, conversationId: string, members: string[], options: { before?: string, limit: number, retentionDays: number }) {
  const cutoff = retentionCutoff(options.retentionDays)
  let query = db.selectFrom('messages').selectAll()
    .where('conversation_id', '=', conversationId)
    .where('created_at', '>', cutoff)
  if (options.before) query = query.where('created_at', '<', new Date(options.before))
  // Ordered by seq, which within a conversation grows with created_at (the persister keeps each
  // message at least 1 ms after the one before): the primary key (conversation_id, seq, …) then
  // serves the page from its end. Ordered by created_at, PostgreSQL walked the created_at index of
  // every conversation at once: 3.8 s a page at 10M messages instead of milliseconds.
  const rows = await query.orderBy('seq', 'desc').limit(options.limit).execute()
  rows.reverse()
  const messages = rows.map(row => toChatMessage(row, members))
  return { messages, nextBefore: rows.length === options.limit ? messages[0]!.timestamp : null }
}

/** Keyset page by seq: the resync path after a reconnect or a gap. */
export async function historyBySeq(db: Kysely<Database>, conversationId: string, members: string[], options: { after?: number, before?: number, limit: number, retentionDays: number }) {
  const cutoff = retentionCutoff(options.retentionDays)
  let query = db.selectFrom('messages').selectAll()
    .where('conversation_id', '=', conversationId)
    .where('created_at', '>', cutoff)
  if (options.before !== undefined) {
    const rows = await query.where('seq', '<', options.before).orderBy('seq', 'desc').limit(options.limit).execute()
    return { messages: rows.reverse().map(row => toChatMessage(row, members)) }
  }
  query = query.where('seq', '>', options.after ?? 0)
  const rows = await query.orderBy('seq', 'asc').limit(options.limit).execute()
  return { messages: rows.map(row => toChatMessage(row, members)) }
}

export async function conversationMembers(db: Kysely<Database>, conversationId: string): Promise<string[]> {
  const rows = await db.selectFrom('conversation_members').select('user_id').where('conversation_id', '=', conversationId).execute()
  return rows.map(row => row.user_id)
}
