import { randomUUID } from 'node:crypto'
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
 * Stores a batch in one transaction, idempotently: a (sender, clientId) seen before yields the
 * original message. The counter rows of every conversation in the batch are locked first, in one
 * order, so seq grows by exactly one per message even with two persisters; the unique keys in
 * message_keys back that up. Five statements per batch, however many conversations it spans.
 */
export async function persistBatch(db: Kysely<Database>, events: SendEvent[]): Promise<Delivery[]> {
  if (!events.length) return []
  const conversationIds = [...new Set(events.map(event => event.conversationId))].sort()
  return db.transaction().execute(async (trx) => {
    const counters = await trx.selectFrom('conversations').select(['id', 'last_seq', 'last_message_at'])
      .where('id', 'in', conversationIds).orderBy('id').forUpdate().execute()
    const counterOf = new Map(counters.map(row => [row.id, { seq: row.last_seq, at: row.last_message_at?.getTime() ?? 0, moved: false }]))
    const known = await trx.selectFrom('message_keys').selectAll()
      .where(eb => eb(eb.refTuple('sender_id', 'client_id'), 'in', events.map(event => eb.tuple(event.senderId, event.clientId))))
      .execute()
    const seen = new Map(known.map(row => [`${row.sender_id}/${row.client_id}`, { ...row, body: undefined as string | undefined }]))
    const bodies = await bodiesOf(trx, known)

    const deliveries: Delivery[] = []
    const fresh: Array<{ event: SendEvent, id: string, seq: number, createdAt: Date }> = []
    for (const event of events) {
      const counter = counterOf.get(event.conversationId)
      if (!counter) {
        log.warn('persister: conversation is gone, dropping a message', { conversationId: event.conversationId })
        continue
      }
      const original = seen.get(`${event.senderId}/${event.clientId}`)
      if (original) {
        // A clientId reused in another conversation is a client error: never deliver the other
        // conversation's message to this one's members.
        if (original.conversation_id !== event.conversationId) {
          log.warn('persister: clientId reused across conversations, dropping', { senderId: event.senderId, clientId: event.clientId })
          continue
        }
        deliveries.push(delivery(event, { id: original.message_id, seq: original.seq, createdAt: original.created_at, body: original.body ?? bodies.get(original.message_id) ?? '' }, true))
        continue
      }
      // Strictly increasing times per conversation: paging by time then agrees with seq.
      counter.at = Math.max(event.sentAt, counter.at + 1)
      counter.seq += 1
      counter.moved = true
      const row = { event, id: randomUUID(), seq: counter.seq, createdAt: new Date(counter.at) }
      fresh.push(row)
      seen.set(`${event.senderId}/${event.clientId}`, { sender_id: event.senderId, client_id: event.clientId, message_id: row.id, conversation_id: event.conversationId, seq: row.seq, created_at: row.createdAt, body: event.body })
      deliveries.push(delivery(event, { id: row.id, seq: row.seq, createdAt: row.createdAt, body: event.body }, false))
    }
    if (!fresh.length) return deliveries

    await trx.insertInto('message_keys').values(fresh.map(row => ({
      sender_id: row.event.senderId,
      client_id: row.event.clientId,
      message_id: row.id,
      conversation_id: row.event.conversationId,
      seq: row.seq,
      created_at: row.createdAt
    }))).execute()
    await trx.insertInto('messages').values(fresh.map(row => ({
      id: row.id,
      conversation_id: row.event.conversationId,
      seq: row.seq,
      sender_id: row.event.senderId,
      client_id: row.event.clientId,
      body: row.event.body,
      created_at: row.createdAt
    }))).execute()
    const moved = [...counterOf].filter(([, counter]) => counter.moved)
    await sql`update conversations as c set last_seq = v.last_seq, last_message_at = v.last_at
      from (values ${sql.join(moved.map(([id, counter]) => sql`(${id}::uuid, ${counter.seq}::bigint, ${new Date(counter.at)}::timestamptz)`))})
        as v(id, last_seq, last_at)
      where c.id = v.id`.execute(trx)
    return deliveries
  })
}

/** The bodies of already-stored messages a batch repeats (resends are rare: usually none). */
async function bodiesOf(db: Kysely<Database>, keys: Array<{ message_id: string }>): Promise<Map<string, string>> {
  if (!keys.length) return new Map()
  const rows = await db.selectFrom('messages').select(['id', 'body']).where('id', 'in', keys.map(key => key.message_id)).execute()
  return new Map(rows.map(row => [row.id, row.body]))
}

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
