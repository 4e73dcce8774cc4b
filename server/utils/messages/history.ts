import { sql, type Kysely, type Selectable } from 'kysely'
import type { Database, MessagesTable } from '../../database/schema'
import { MAX_REACTION_USERS, REPLY_PREVIEW_CHARS } from '#shared/types/changes'
import type { ChatMessage, ReplyPreview } from '#shared/types/messages'
import { fail } from '../http'
import { useConfig } from '../config'
import { retentionCutoff } from '../retention/cutoff'

/** Whom a message was to: the other person of a direct conversation, nobody in particular in a room. */
export type Recipients = { kind: 'direct', members: string[] } | { kind: 'room' }

/**
 * A stored row as the contract's message, in its current state: a deleted one has no text
 * (the row's body is already empty; this does not rely on it).
 */
export function toChatMessage(row: Selectable<MessagesTable>, recipients: Recipients): ChatMessage {
  return {
    id: row.id,
    conversationId: row.conversation_id,
    seq: row.seq,
    from: row.sender_id,
    to: recipients.kind === 'room' ? null : (recipients.members.find(member => member !== row.sender_id) ?? row.sender_id),
    body: row.deleted_at ? '' : row.body,
    timestamp: row.created_at.toISOString(),
    replyTo: row.reply_to ?? null,
    attachments: [],
    mentions: row.mentions ?? [],
    ...(row.mentions_room && { mentionsRoom: true }),
    ...(row.edited_at && { editedAt: row.edited_at.toISOString() }),
    ...(row.deleted_at && { deleted: true, deletedBy: row.deleted_by })
  }
}

type Original = Pick<Selectable<MessagesTable>, 'id' | 'seq' | 'sender_id' | 'body' | 'deleted_at'>

/** What a reply shows of the message it answers: its start, that it was deleted, or that retention took it. */
export function replyPreview(replyTo: string, original: Original | undefined): ReplyPreview {
  if (!original) return { id: replyTo, from: null, body: null, deleted: false, gone: true }
  return { id: original.id, seq: original.seq, from: original.sender_id, body: original.deleted_at ? null : original.body.slice(0, REPLY_PREVIEW_CHARS), deleted: !!original.deleted_at, gone: false }
}

/** The message a new one answers, as its reply preview: looked up once, when the reply is stored. */
export async function replyPreviewFor(db: Kysely<Database>, conversationId: string, replyTo: string): Promise<ReplyPreview> {
  const original = await db.selectFrom('messages').select(['id', 'seq', 'sender_id', 'body', 'deleted_at'])
    .where('id', '=', replyTo).where('conversation_id', '=', conversationId)
    .where('created_at', '>', retentionCutoff(useConfig().retentionDays)).executeTakeFirst()
  return replyPreview(replyTo, original)
}

/**
 * What history adds for one viewer: each message's reactions with `mine`, and a preview of the
 * message a reply answers (`gone` when retention purged it).
 */
export async function withReactionsAndReplies(db: Kysely<Database>, viewerId: string, messages: ChatMessage[]): Promise<ChatMessage[]> {
  if (!messages.length) return messages
  const ids = messages.map(message => message.id)
  const reactions = await db.selectFrom('message_reactions')
    .select(eb => ['message_id', 'emoji', eb.fn.countAll<string>().as('count'), sql<boolean>`bool_or(user_id = ${viewerId})`.as('mine'), eb.fn.min('created_at').as('first'),
      // The first ones, as chat.update names them: who reacted, on hover, after a reload too.
      sql<string[]>`(array_agg(user_id order by created_at, user_id))[1:${sql.lit(MAX_REACTION_USERS)}]`.as('users')])
    .where('message_id', 'in', ids).groupBy(['message_id', 'emoji']).orderBy('first').execute()
  const replied = [...new Set(messages.map(message => message.replyTo).filter((id): id is string => !!id))]
  const originals = replied.length
    ? await db.selectFrom('messages').select(['id', 'seq', 'sender_id', 'body', 'deleted_at'])
        .where('id', 'in', replied).where('conversation_id', '=', messages[0]!.conversationId)
        .where('created_at', '>', retentionCutoff(useConfig().retentionDays)).execute()
    : []
  return messages.map((message) => {
    return {
      ...message,
      reactions: reactions.filter(row => row.message_id === message.id).map(row => ({ emoji: row.emoji, count: Number(row.count), mine: !!row.mine, users: row.users })),
      replyPreview: message.replyTo ? replyPreview(message.replyTo, originals.find(row => row.id === message.replyTo)) : null
    }
  })
}

/** One message as history answers it to one viewer; 404 when they cannot see it. */
export async function messageById(db: Kysely<Database>, viewerId: string, messageId: string): Promise<ChatMessage> {
  const row = await db.selectFrom('messages').selectAll('messages')
    .innerJoin('conversation_members', join => join.onRef('conversation_members.conversation_id', '=', 'messages.conversation_id').on('conversation_members.user_id', '=', viewerId))
    .where('messages.id', '=', messageId).where('messages.created_at', '>', retentionCutoff(useConfig().retentionDays))
    .executeTakeFirst()
  if (!row) throw fail(404, 'not_found', 'There is no such message.')
  const conversation = await db.selectFrom('conversations').select('kind').where('id', '=', row.conversation_id).executeTakeFirstOrThrow()
  const members = conversation.kind === 'room' ? [] : (await db.selectFrom('conversation_members').select('user_id').where('conversation_id', '=', row.conversation_id).execute()).map(member => member.user_id)
  const [message] = await withReactionsAndReplies(db, viewerId, [toChatMessage(row, conversation.kind === 'room' ? { kind: 'room' } : { kind: 'direct', members })])
  return message!
}

function inConversation(db: Kysely<Database>, conversationId: string) {
  return db.selectFrom('messages').selectAll()
    .where('conversation_id', '=', conversationId)
    .where('created_at', '>', retentionCutoff(useConfig().retentionDays))
}

/** Version 1: a keyset page by time, newest last, the messages before `before` (exclusive). */
export async function historyByTime(db: Kysely<Database>, conversationId: string, recipients: Recipients, options: { before?: string, limit: number }, viewerId?: string) {
  let query = inConversation(db, conversationId)
  if (options.before) query = query.where('created_at', '<', new Date(options.before))
  // Ordered by seq, which within a conversation grows with created_at (the persister keeps each
  // message at least 1 ms after the one before): the primary key (conversation_id, seq, …) then
  // serves the page from its end. Ordered by created_at, PostgreSQL walked the created_at index of
  // every conversation at once: 3.8 s a page at 10M messages instead of milliseconds.
  const rows = await query.orderBy('seq', 'desc').limit(options.limit).execute()
  rows.reverse()
  const messages = rows.map(row => toChatMessage(row, recipients))
  return { messages: viewerId ? await withReactionsAndReplies(db, viewerId, messages) : messages, nextBefore: rows.length === options.limit ? messages[0]!.timestamp : null }
}

/** A keyset page by seq, in seq order: before a position, after it (the resync path; 0 without any), or around it. */
export async function messagesPage(db: Kysely<Database>, conversationId: string, recipients: Recipients, options: { after?: number, before?: number, around?: number, limit: number }, viewerId?: string): Promise<{ messages: ChatMessage[] }> {
  const older = async (before: number, limit: number) => (await inConversation(db, conversationId).where('seq', '<', before).orderBy('seq', 'desc').limit(limit).execute()).reverse()
  const newer = (after: number, limit: number) => inConversation(db, conversationId).where('seq', '>', after).orderBy('seq', 'asc').limit(limit).execute()
  let rows: Array<Selectable<MessagesTable>>
  if (options.around !== undefined) {
    const half = Math.floor(options.limit / 2)
    rows = [...await older(options.around, half), ...await newer(options.around - 1, options.limit - half)]
  }
  else if (options.before !== undefined) rows = await older(options.before, options.limit)
  else rows = await newer(options.after ?? 0, options.limit)
  const messages = rows.map(row => toChatMessage(row, recipients))
  return { messages: viewerId ? await withReactionsAndReplies(db, viewerId, messages) : messages }
}
