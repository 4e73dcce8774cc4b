import type { Backends } from './backends'
import { retentionCutoff } from './conversations'
import { log } from './log'
import { deliverText, socketsOf } from './sockets'

const CHANNEL = 'reads'

interface ReadEvent {
  conversationId: string
  by: string
  messageIds: string[]
  readAt: string
  /** The reader's own devices always; the senders only when both sides share receipts. */
  audience: string[]
}

/**
 * Marks messages read by `readerId`: only messages addressed to them count. The member's
 * watermark (read_seq) only moves forward, which keeps unread counts and read times cheap.
 */
export async function markRead({ database, store }: Backends, readerId: string, messageIds: string[], retentionDays: number): Promise<void> {
  const db = database.db
  const rows = await db.selectFrom('messages as m')
    .innerJoin('conversation_members as me', join => join.onRef('me.conversation_id', '=', 'm.conversation_id').on('me.user_id', '=', readerId))
    .innerJoin('users as sender', 'sender.id', 'm.sender_id')
    .innerJoin('users as reader', 'reader.id', 'me.user_id')
    .select(['m.id', 'm.conversation_id', 'm.seq', 'm.sender_id', 'sender.read_receipts as sender_shares', 'reader.read_receipts as reader_shares'])
    .where('m.id', 'in', messageIds)
    .where('m.sender_id', '<>', readerId)
    .where('m.created_at', '>', retentionCutoff(retentionDays))
    .execute()
  const byConversation = new Map<string, typeof rows>()
  for (const row of rows) byConversation.set(row.conversation_id, [...(byConversation.get(row.conversation_id) ?? []), row])
  for (const [conversationId, read] of byConversation) {
    const highest = Math.max(...read.map(row => row.seq))
    const readAt = new Date()
    const moved = await db.updateTable('conversation_members')
      .set({ read_seq: highest, read_at: readAt })
      .where('conversation_id', '=', conversationId)
      .where('user_id', '=', readerId)
      .where('read_seq', '<', highest)
      .returning('read_seq')
      .executeTakeFirst()
    if (!moved) continue
    const senders = [...new Set(read.filter(row => row.sender_shares && row.reader_shares).map(row => row.sender_id))]
    const event: ReadEvent = { conversationId, by: readerId, messageIds: read.map(row => row.id), readAt: readAt.toISOString(), audience: [readerId, ...senders] }
    await store.publish(CHANNEL, JSON.stringify(event))
  }
}

export async function startReceipts({ store }: Pick<Backends, 'store'>): Promise<() => Promise<void>> {
  return store.subscribe(CHANNEL, (text) => {
    try {
      const event = JSON.parse(text) as ReadEvent
      const frame = JSON.stringify({ type: 'read.update', messageIds: event.messageIds, by: event.by, readAt: event.readAt })
      for (const userId of event.audience) for (const socket of socketsOf(userId)) deliverText(socket, frame)
    }
    catch (error) {
      log.error('receipts: unreadable event', { error })
    }
  })
}
