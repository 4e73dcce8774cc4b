import { sql, type Kysely } from 'kysely'
import type { Database } from '../../database/schema'
import type { ChatMessage } from '#shared/types/messages'
import type { SocketErrorCode } from '#shared/types/frames'
import type { Backends } from '../backends'
import type { BusConsumer } from '../bus/types'
import { useConfig } from '../config'
import { applyCommand, type CommandEvent } from '../conversations/commands'
import { mentionsOf } from './changes'
import { replyPreviewFor } from './history'
import { retentionCutoff } from '../retention/cutoff'
import { log } from '../log'
import { messagesPersisted, sendToPersist } from '../metrics'
import { broadcast, type Envelope } from '../realtime/broadcast'

/** Every change of a conversation goes on this topic keyed by the conversation, so it keeps its order. */
export const CONVERSATIONS_TOPIC = 'chat.messages'
export const PERSISTER_GROUP = 'natter-persister'

/** What the gateway puts on the bus for one chat.send. */
export interface SendEvent {
  kind?: 'message'
  conversationId: string
  senderId: string
  /** The other person of a direct conversation; null in a room. */
  recipientId: string | null
  clientId: string
  body: string
  /** A message of the same conversation (the gateway checked) that this one answers. */
  replyTo?: string
  /** Epoch ms when the gateway accepted the frame. */
  sentAt: number
  /** The socket that sent it (instance:socket), so only that one gets the chat.ack. */
  origin: string
}

export type ConversationRecord = SendEvent | CommandEvent

/** How one chat.send ended: stored (or found again), or refused with a reason. */
export type SendOutcome
  = | { event: SendEvent, message: ChatMessage, duplicate: boolean }
    | { event: SendEvent, refused: SocketErrorCode, reason: string }

const REFUSALS: Record<string, { code: SocketErrorCode, reason: string }> = {
  not_member: { code: 'not_found', reason: 'You are not in this conversation.' },
  blocked: { code: 'blocked', reason: 'This person does not accept your messages.' },
  forbidden: { code: 'forbidden', reason: 'Accept the request before writing here.' },
  duplicate_client_id: { code: 'duplicate_client_id', reason: 'This clientId was already used for another message. Send it with a new one.' }
}

/**
 * Stores a batch idempotently, in one statement: PostgreSQL's persist_messages (migration 0005)
 * locks the counter rows of the batch's conversations, then looks up the batch's clientIds, then
 * inserts the new messages and moves the counters, in one transaction and one round trip. A
 * (sender, clientId) seen before yields the original message; seq grows by exactly one per new
 * message with any number of persisters. What it refuses (not a member, blocked, a clientId used
 * in another conversation) comes back with its reason, so the sender hears of it at once.
 */
export async function persistBatch(db: Kysely<Database>, events: SendEvent[]): Promise<SendOutcome[]> {
  if (!events.length) return []
  const cutoff = retentionCutoff(useConfig().retentionDays)
  const batch = events.map((event, ord) => ({ ord, conversationId: event.conversationId, senderId: event.senderId, clientId: event.clientId, body: event.body, sentAt: event.sentAt }))
  const { rows } = await sql<StoredRow>`select * from persist_messages(${JSON.stringify(batch)}::jsonb, ${cutoff})`.execute(db)
  const extras = await storeRepliesAndMentions(db, events, rows)
  return rows.map((row) => {
    const event = events[row.ord]!
    if (row.refused) {
      const refusal = REFUSALS[row.refused] ?? REFUSALS.forbidden!
      log.info('persister: refused a message', { reason: row.refused, conversationId: event.conversationId, senderId: event.senderId })
      return { event, refused: refusal.code, reason: refusal.reason }
    }
    return { event, duplicate: row.duplicate, message: { ...messageOf(event, row), ...extras.get(row.ord) } }
  })
}

/**
 * What persist_messages does not know of: the message a new one answers (and what the quote
 * shows of it) and whom it mentions. Written right after, only for the messages that have them
 * (most have neither).
 */
async function storeRepliesAndMentions(db: Kysely<Database>, events: SendEvent[], rows: StoredRow[]): Promise<Map<number, Pick<ChatMessage, 'replyTo' | 'replyPreview' | 'mentions' | 'mentionsRoom'>>> {
  const extras = new Map<number, Pick<ChatMessage, 'replyTo' | 'replyPreview' | 'mentions' | 'mentionsRoom'>>()
  const candidates = rows.filter(row => !row.refused && !row.duplicate && (events[row.ord]!.replyTo || MENTIONS_SOMEONE.test(events[row.ord]!.body)))
  if (!candidates.length) return extras
  const conversationIds = [...new Set(candidates.map(row => events[row.ord]!.conversationId))]
  const conversations = await db.selectFrom('conversations').select(['id', 'kind', 'room_mentions']).where('id', 'in', conversationIds).execute()
  for (const row of candidates) {
    const event = events[row.ord]!
    const conversation = conversations.find(candidate => candidate.id === event.conversationId)
    if (!conversation) continue
    const { mentions, mentionsRoom } = await mentionsOf(db, conversation, event.body)
    const extra = { replyTo: event.replyTo ?? null, mentions, mentionsRoom }
    await db.updateTable('messages').set({ reply_to: extra.replyTo, mentions, mentions_room: mentionsRoom })
      .where('id', '=', row.id).where('conversation_id', '=', event.conversationId).where('created_at', '=', row.created_at).execute()
    // Live, the quote shows what it answers even where that is not loaded (an old message).
    extras.set(row.ord, event.replyTo ? { ...extra, replyPreview: await replyPreviewFor(db, event.conversationId, event.replyTo) } : extra)
  }
  return extras
}

const MENTIONS_SOMEONE = /<@|@room/

interface StoredRow { ord: number, id: string, seq: number, created_at: Date, body: string | null, duplicate: boolean, refused: string | null }

function messageOf(event: SendEvent, row: StoredRow): ChatMessage {
  return {
    id: row.id,
    conversationId: event.conversationId,
    seq: row.seq,
    from: event.senderId,
    to: event.recipientId ?? null,
    body: row.body ?? event.body,
    timestamp: row.created_at.toISOString(),
    replyTo: null,
    attachments: [],
    mentions: []
  }
}

/** chat.receive to the members, chat.ack to the sending socket; or an error frame to it alone. */
export function sendEnvelope(outcome: SendOutcome): Envelope {
  const { event } = outcome
  const settles = { kind: 'send' as const, origin: event.origin, clientId: event.clientId, sentAt: event.sentAt, duplicate: 'message' in outcome && outcome.duplicate, refused: 'refused' in outcome }
  if ('refused' in outcome) {
    return { to: { socket: event.origin }, origin: event.origin, reply: { type: 'error', code: outcome.refused, message: outcome.reason, ref: event.clientId }, settles }
  }
  const { message } = outcome
  return {
    to: { conversation: event.conversationId },
    frame: { type: 'chat.receive', ...message },
    origin: event.origin,
    reply: { type: 'chat.ack', clientId: event.clientId, id: message.id, conversationId: message.conversationId, seq: message.seq, timestamp: message.timestamp },
    settles
  }
}

// SQLSTATE class 22 (data exception): the same record will fail the same way on every retry.
const isDataError = (error: unknown) => typeof (error as { code?: unknown })?.code === 'string' && (error as { code: string }).code.startsWith('22')

/**
 * A batch PostgreSQL refuses as data would block its partition forever if retried whole: store
 * the records one by one and refuse (with a log line) only those it refuses. Any other failure
 * (the database is down) is thrown, and the bus redelivers the batch.
 */
async function persistIsolatingBadData(db: Kysely<Database>, events: SendEvent[]): Promise<SendOutcome[]> {
  try {
    return await persistBatch(db, events)
  }
  catch (error) {
    if (!isDataError(error)) throw error
    const outcomes: SendOutcome[] = []
    for (const event of events) {
      try {
        outcomes.push(...await persistBatch(db, [event]))
      }
      catch (single) {
        if (!isDataError(single)) throw single
        log.error('persister: refusing a record the database refuses', { code: (single as { code: string }).code, conversationId: event.conversationId, clientId: event.clientId })
        outcomes.push({ event, refused: 'invalid_frame', reason: 'The server could not store this message.' })
      }
    }
    return outcomes
  }
}

/**
 * Stores one partition's records, each conversation's in its order, in waves: every
 * conversation's messages up to its next change (a member added, an edit, a reaction) in one
 * statement, then those changes, each in its own transaction; again until none is left. Only a
 * conversation's own order counts (the bus keys records by conversation and keeps nothing
 * between conversations), so a change in one room no longer splits the statement of every
 * message behind it in the batch: with a fifth of the records changes, that had tripled the
 * statements and quadrupled new messages' p99. Returns the envelopes to broadcast, each
 * conversation's in its order.
 */
export async function storeRecords(db: Kysely<Database>, records: ConversationRecord[]): Promise<Envelope[]> {
  const envelopes: Envelope[] = []
  const queues = new Map<string, ConversationRecord[]>()
  for (const record of records) {
    const queue = queues.get(record.conversationId)
    if (queue) queue.push(record)
    else queues.set(record.conversationId, [record])
  }
  while (queues.size) {
    const run: SendEvent[] = []
    const changes: CommandEvent[] = []
    for (const [conversationId, queue] of queues) {
      let taken = 0
      while (taken < queue.length && queue[taken]!.kind !== 'command') run.push(queue[taken++] as SendEvent)
      if (taken < queue.length) changes.push(queue[taken++] as CommandEvent)
      queue.splice(0, taken)
      if (!queue.length) queues.delete(conversationId)
    }
    if (run.length) {
      const outcomes = await persistIsolatingBadData(db, run)
      const now = Date.now()
      for (const outcome of outcomes) {
        envelopes.push(sendEnvelope(outcome))
        if ('message' in outcome && !outcome.duplicate) {
          messagesPersisted.inc()
          sendToPersist.observe((now - outcome.event.sentAt) / 1000)
        }
      }
    }
    for (const change of changes) envelopes.push(...await applyCommand(db, change))
  }
  return envelopes
}

/**
 * The persister consumer group: records → PostgreSQL → the resulting frames to every instance
 * through the broadcast. Offsets are committed by the bus only after this returns.
 */
export async function startPersister({ bus, database }: Backends): Promise<BusConsumer> {
  return bus.consume({
    topic: CONVERSATIONS_TOPIC,
    group: PERSISTER_GROUP,
    fromBeginning: true,
    onBatch: async (batch) => {
      const records: ConversationRecord[] = []
      for (const record of batch) {
        try {
          records.push(JSON.parse(record.value) as ConversationRecord)
        }
        catch {
          log.error('persister: skipping an unreadable bus record', { offset: record.offset, partition: record.partition })
        }
      }
      // A record older than retention (replayed after its group's offsets were lost) would come
      // back as a new message whose idempotency key the purge already removed: drop it.
      const cutoff = retentionCutoff(useConfig().retentionDays).getTime()
      const live = records.filter(record => record.sentAt > cutoff)
      if (live.length < records.length) log.warn('persister: dropping records past retention', { count: records.length - live.length })
      await broadcast(await storeRecords(database.db, live))
    }
  })
}
