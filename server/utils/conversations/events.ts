import type { Kysely } from 'kysely'
import type { Database } from '../../database/schema'
import type { ChatUpdate } from '#shared/types/changes'
import type { RoomUpdate } from '#shared/types/conversations'
import type { ServerFrame } from '#shared/types/frames'
import { useConfig } from '../config'
import { toChatMessage, type Recipients } from '../messages/history'
import { retentionCutoff } from '../retention/cutoff'

const MESSAGE_CHANGES = new Set(['edit', 'delete', 'reaction'])

/**
 * A conversation's stream after `after`, as the frames that carried it live: messages as
 * chat.receive (in the message's current state: a deleted one without its text), every other
 * change as its own frame (an edit of a since deleted message without its body), in seq order. A client that applies them
 * in order ends with the server's state. A gap at the start (the first seq is not after + 1)
 * means retention removed what was missed: the client loads the conversation afresh.
 */
export async function replayEvents(db: Kysely<Database>, conversationId: string, recipients: Recipients, { after, limit }: { after: number, limit: number }): Promise<{ events: ServerFrame[], lastSeq: number }> {
  const cutoff = retentionCutoff(useConfig().retentionDays)
  const [messages, changes, conversation] = await Promise.all([
    db.selectFrom('messages').selectAll()
      .where('conversation_id', '=', conversationId).where('seq', '>', after).where('created_at', '>', cutoff)
      .orderBy('seq').limit(limit).execute(),
    db.selectFrom('conversation_events').selectAll()
      .where('conversation_id', '=', conversationId).where('seq', '>', after).where('created_at', '>', cutoff)
      .orderBy('seq').limit(limit).execute(),
    db.selectFrom('conversations').select('last_seq').where('id', '=', conversationId).executeTakeFirstOrThrow()
  ])
  const events: Array<{ seq: number, frame: ServerFrame }> = [
    ...messages.map(row => ({ seq: row.seq, frame: { type: 'chat.receive' as const, ...toChatMessage(row, recipients) } })),
    ...changes.map(row => ({ seq: row.seq, frame: { ...row.payload, type: MESSAGE_CHANGES.has(row.kind) ? 'chat.update' : 'room.update', conversationId, seq: row.seq, timestamp: row.created_at.toISOString() } as RoomUpdate | ChatUpdate }))
  ]
  events.sort((a, b) => a.seq - b.seq)
  return { events: events.slice(0, limit).map(event => event.frame), lastSeq: conversation.last_seq }
}
