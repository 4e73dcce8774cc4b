import type { Kysely, Selectable } from 'kysely'
import type { Database, MessagesTable } from '../../database/schema'
import type { ChatMessage } from '#shared/types/messages'
import { useConfig } from '../config'
import { retentionCutoff } from '../retention/cutoff'

/** Whom a message was to: the other person of a direct conversation, nobody in particular in a room. */
export type Recipients = { kind: 'direct', members: string[] } | { kind: 'room' }

/** A stored row as the contract's message. */
export function toChatMessage(row: Selectable<MessagesTable>, recipients: Recipients): ChatMessage {
  return {
    id: row.id,
    conversationId: row.conversation_id,
    seq: row.seq,
    from: row.sender_id,
    to: recipients.kind === 'room' ? null : (recipients.members.find(member => member !== row.sender_id) ?? row.sender_id),
    body: row.body,
    timestamp: row.created_at.toISOString(),
    replyTo: null,
    attachments: [],
    mentions: []
  }
}

function inConversation(db: Kysely<Database>, conversationId: string) {
  return db.selectFrom('messages').selectAll()
    .where('conversation_id', '=', conversationId)
    .where('created_at', '>', retentionCutoff(useConfig().retentionDays))
}

/** Version 1: a keyset page by time, newest last, the messages before `before` (exclusive). */
export async function historyByTime(db: Kysely<Database>, conversationId: string, recipients: Recipients, options: { before?: string, limit: number }) {
  let query = inConversation(db, conversationId)
  if (options.before) query = query.where('created_at', '<', new Date(options.before))
  // Ordered by seq, which within a conversation grows with created_at (the persister keeps each
  // message at least 1 ms after the one before): the primary key (conversation_id, seq, …) then
  // serves the page from its end. Ordered by created_at, PostgreSQL walked the created_at index of
  // every conversation at once: 3.8 s a page at 10M messages instead of milliseconds.
  const rows = await query.orderBy('seq', 'desc').limit(options.limit).execute()
  rows.reverse()
  const messages = rows.map(row => toChatMessage(row, recipients))
  return { messages, nextBefore: rows.length === options.limit ? messages[0]!.timestamp : null }
}

/** A keyset page by seq, in seq order: before a position, after it (the resync path; 0 without any), or around it. */
export async function messagesPage(db: Kysely<Database>, conversationId: string, recipients: Recipients, options: { after?: number, before?: number, around?: number, limit: number }): Promise<{ messages: ChatMessage[] }> {
  const older = async (before: number, limit: number) => (await inConversation(db, conversationId).where('seq', '<', before).orderBy('seq', 'desc').limit(limit).execute()).reverse()
  const newer = (after: number, limit: number) => inConversation(db, conversationId).where('seq', '>', after).orderBy('seq', 'asc').limit(limit).execute()
  let rows: Array<Selectable<MessagesTable>>
  if (options.around !== undefined) {
    const half = Math.floor(options.limit / 2)
    rows = [...await older(options.around, half), ...await newer(options.around - 1, options.limit - half)]
  }
  else if (options.before !== undefined) rows = await older(options.before, options.limit)
  else rows = await newer(options.after ?? 0, options.limit)
  return { messages: rows.map(row => toChatMessage(row, recipients)) }
}
