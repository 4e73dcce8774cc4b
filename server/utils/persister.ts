import { sql, type Kysely } from 'kysely'
import type { Database } from '../database/schema'
import type { ChatMessage } from '../../shared/types/chat'
import type { Backends } from './backends'
import type { BusConsumer } from './bus/types'
import { useConfig } from './config'
import { retentionCutoff } from './conversations'
import { log } from './log'
import { messagesPersisted, sendToPersist } from './metrics'

export const MESSAGES_TOPIC = 'chat.messages'
export const DELIVERY_CHANNEL = 'chat.delivery'
export const PERSISTER_GROUP = 'natter-persister'

/** What the gateway puts on the bus for one chat.send. */
export interface SendEvent {
  conversationId: string
  senderId: string
  recipientId: string
  clientId: string
  body: string
  /** Epoch ms when the gateway accepted the frame. */
  sentAt: number
  /** The socket that sent it (instance:socket), so only that one gets the chat.ack. */
  origin: string
}

/** What every instance hears after the commit, to fan out to its sockets. */
export interface Delivery {
  message: ChatMessage
  clientId: string
  origin: string
  sentAt: number
  /** A resend of a stored message. It fans out again all the same: clients merge by seq, and the
   * first fanout may have been lost with the instance that was publishing it. */
  duplicate: boolean
}

/**
 * Stores a batch idempotently, in one statement: PostgreSQL's persist_messages (migration 0004)
 * locks the counter rows of the batch's conversations, then looks up the batch's clientIds, then
 * inserts the new messages and moves the counters, in one transaction and one round trip. A
 * (sender, clientId) seen before yields the original message; seq grows by exactly one per new
 * message with any number of persisters. What the function drops (a conversation that is gone, a
 * clientId reused in another conversation) comes back with no row and is logged here.
 */
export async function persistBatch(db: Kysely<Database>, events: SendEvent[]): Promise<Delivery[]> {
  if (!events.length) return []
  const cutoff = retentionCutoff(useConfig().retentionDays)
  const batch = events.map((event, ord) => ({ ord, conversationId: event.conversationId, senderId: event.senderId, clientId: event.clientId, body: event.body, sentAt: event.sentAt }))
  const { rows } = await sql<StoredRow>`select * from persist_messages(${JSON.stringify(batch)}::jsonb, ${cutoff})`.execute(db)
  if (rows.length < events.length) {
    const stored = new Set(rows.map(row => row.ord))
    for (const [ord, event] of events.entries()) {
      if (!stored.has(ord)) log.warn('persister: dropping a message: its conversation is gone or its clientId was used in another one', { conversationId: event.conversationId, senderId: event.senderId, clientId: event.clientId })
    }
  }
  return rows.map((row) => {
    const event = events[row.ord]!
    return delivery(event, { id: row.id, seq: row.seq, createdAt: row.created_at, body: row.body ?? event.body }, row.duplicate)
  })
}

interface StoredRow { ord: number, id: string, seq: number, created_at: Date, body: string | null, duplicate: boolean }

function delivery(event: SendEvent, stored: { id: string, seq: number, createdAt: Date, body: string }, duplicate: boolean): Delivery {
  return {
    message: {
      id: stored.id,
      conversationId: event.conversationId,
      seq: stored.seq,
      from: event.senderId,
      to: event.recipientId,
      body: stored.body,
      timestamp: stored.createdAt.toISOString()
    },
    clientId: event.clientId,
    origin: event.origin,
    sentAt: event.sentAt,
    duplicate
  }
}

// SQLSTATE class 22 (data exception): the same record will fail the same way on every retry.
const isDataError = (error: unknown) => typeof (error as { code?: unknown })?.code === 'string' && (error as { code: string }).code.startsWith('22')

/**
 * A batch PostgreSQL refuses as data would block its partition forever if retried whole: store
 * the records one by one and drop (with a log line) only those it refuses. Any other failure
 * (the database is down) is thrown, and the bus redelivers the batch.
 */
async function persistIsolatingBadData(db: Kysely<Database>, events: SendEvent[]): Promise<Delivery[]> {
  try {
    return await persistBatch(db, events)
  }
  catch (error) {
    if (!isDataError(error)) throw error
    const deliveries: Delivery[] = []
    for (const event of events) {
      try {
        deliveries.push(...await persistBatch(db, [event]))
      }
      catch (single) {
        if (!isDataError(single)) throw single
        log.error('persister: dropping a record the database refuses', { code: (single as { code: string }).code, conversationId: event.conversationId, clientId: event.clientId })
      }
    }
    return deliveries
  }
}

/**
 * The persister consumer group: batch → one transaction → then the deliveries go to every
 * instance through the store's pub/sub. Offsets are committed by the bus only after this returns.
 */
export async function startPersister({ bus, store, database }: Backends): Promise<BusConsumer> {
  return bus.consume({
    topic: MESSAGES_TOPIC,
    group: PERSISTER_GROUP,
    fromBeginning: true,
    onBatch: async (records) => {
      const events: SendEvent[] = []
      for (const record of records) {
        try {
          events.push(JSON.parse(record.value) as SendEvent)
        }
        catch {
          log.error('persister: skipping an unreadable bus record', { offset: record.offset, partition: record.partition })
        }
      }
      // A record older than retention (replayed after its group's offsets were lost) would come
      // back as a new message whose idempotency key the purge already removed: drop it.
      const cutoff = retentionCutoff(useConfig().retentionDays).getTime()
      const live = events.filter(event => event.sentAt > cutoff)
      if (live.length < events.length) log.warn('persister: dropping records past retention', { count: events.length - live.length })
      const deliveries = await persistIsolatingBadData(database.db, live)
      const now = Date.now()
      for (const item of deliveries) {
        if (item.duplicate) continue
        messagesPersisted.inc()
        sendToPersist.observe((now - item.sentAt) / 1000)
      }
      // Chunks keep one pub/sub message small; a lost one is healed by the clients' resync.
      for (let i = 0; i < deliveries.length; i += 50) {
        await store.publish(DELIVERY_CHANNEL, JSON.stringify(deliveries.slice(i, i + 50)))
      }
    }
  })
}
