import type { H3Event } from 'h3'
import type { ReadUpdate, ReadUpdateRequest } from '#shared/types/receipts'
import type { Backends } from '../backends'
import { useConfig } from '../config'
import { FrameRefused, type FrameContext } from '../gateway/frame'
import { FRAME_LIMITS, takeFrom } from '../gateway/limits'
import { throttled } from '../throttle'
import { broadcast, type Envelope } from '../realtime/broadcast'
import { membershipOf, refreshMembership } from '../realtime/membership'
import { retentionCutoff } from '../retention/cutoff'

// The ids a read.update names for one author: enough for any page a client shows.
const MAX_IDS_PER_AUTHOR = 500

/** read.update from a socket: by message ids (version 1) or up to a seq in one conversation. */
export async function readUpTo({ socket, backends }: FrameContext, frame: ReadUpdateRequest) {
  if (frame.messageIds) return markRead(backends, socket.userId, frame.messageIds)
  const conversationId = frame.conversationId!
  const membership = membershipOf(socket.userId, conversationId) ?? await refreshMembership(backends.database.db, socket.userId, conversationId)
  if (!membership) throw new FrameRefused('not_found', 'There is no such conversation.')
  await moveWatermark(backends, socket.userId, conversationId, frame.seq!)
}

/** POST /api/read-receipt: the same limit as read.update on the socket, then the same work. */
export async function markReadOverRest(event: H3Event, backends: Backends, readerId: string, messageIds: string[]): Promise<void> {
  const taken = await takeFrom(backends.store, FRAME_LIMITS.read, readerId)
  if (!taken.allowed) throw throttled(event, taken.retryAfterMs, 'You are reporting reads too fast. Wait a moment.', 'read-receipt')
  await markRead(backends, readerId, messageIds)
}

/** Version 1: the messages named, as far as the reader is in their conversations. */
export async function markRead(backends: Backends, readerId: string, messageIds: string[]): Promise<void> {
  const rows = await backends.database.db.selectFrom('messages as m')
    .innerJoin('conversation_members as me', join => join.onRef('me.conversation_id', '=', 'm.conversation_id').on('me.user_id', '=', readerId))
    .select(['m.conversation_id'])
    .select(eb => eb.fn.max('m.seq').as('seq'))
    .where('m.id', 'in', messageIds)
    // One's own messages say nothing about what one has read.
    .where('m.sender_id', '<>', readerId)
    .where('m.created_at', '>', retentionCutoff(useConfig().retentionDays))
    .groupBy('m.conversation_id')
    .execute()
  for (const row of rows) await moveWatermark(backends, readerId, row.conversation_id, Number(row.seq))
}

/**
 * Everything up to `seq` is read: the member's watermark only moves forward. The reader's other
 * devices hear of it, and so do the authors of what was read, each about their own messages,
 * when both share receipts (and, in a direct conversation, both accepted each other).
 */
export async function moveWatermark({ database }: Backends, readerId: string, conversationId: string, seq: number): Promise<void> {
  const db = database.db
  const before = await db.selectFrom('conversation_members as me')
    .innerJoin('conversations as c', 'c.id', 'me.conversation_id')
    .innerJoin('users as reader', 'reader.id', 'me.user_id')
    .select(['me.read_seq', 'c.last_seq', 'reader.read_receipts'])
    // A direct conversation someone has not accepted (or blocked) shares no receipts.
    .select(eb => eb.exists(eb.selectFrom('conversation_members as o').select('o.user_id')
      .whereRef('o.conversation_id', '=', 'me.conversation_id').where('o.state', '<>', 'active')).as('restricted'))
    .where('me.conversation_id', '=', conversationId)
    .where('me.user_id', '=', readerId)
    .executeTakeFirst()
  if (!before) return
  const target = Math.min(seq, before.last_seq)
  if (target <= before.read_seq) return
  const readAt = new Date()
  const moved = await db.updateTable('conversation_members')
    .set({ read_seq: target, read_at: readAt })
    .where('conversation_id', '=', conversationId)
    .where('user_id', '=', readerId)
    .where('read_seq', '<', target)
    .executeTakeFirst()
  if (!Number(moved.numUpdatedRows)) return
  const read = await db.selectFrom('messages as m')
    .innerJoin('users as author', 'author.id', 'm.sender_id')
    .select(['m.id', 'm.sender_id', 'author.read_receipts'])
    .where('m.conversation_id', '=', conversationId)
    .where('m.seq', '>', before.read_seq)
    .where('m.seq', '<=', target)
    .where('m.sender_id', '<>', readerId)
    .where('m.created_at', '>', retentionCutoff(useConfig().retentionDays))
    .orderBy('m.seq', 'desc')
    .limit(MAX_IDS_PER_AUTHOR * 4)
    .execute()
  const frame = (messageIds: string[]): ReadUpdate => ({ type: 'read.update', conversationId, by: readerId, seq: target, messageIds, readAt: readAt.toISOString() })
  const envelopes: Envelope[] = [{ to: { users: [readerId] }, frame: frame(read.map(row => row.id).slice(0, MAX_IDS_PER_AUTHOR)) }]
  if (before.read_receipts && !before.restricted) {
    const byAuthor = new Map<string, string[]>()
    for (const row of read) {
      if (!row.read_receipts) continue
      const ids = byAuthor.get(row.sender_id) ?? []
      if (ids.length < MAX_IDS_PER_AUTHOR) ids.push(row.id)
      byAuthor.set(row.sender_id, ids)
    }
    for (const [author, ids] of byAuthor) envelopes.push({ to: { users: [author] }, frame: frame(ids) })
  }
  await broadcast(envelopes)
}
