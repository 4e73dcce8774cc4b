import { randomUUID } from 'node:crypto'
import type { Kysely } from 'kysely'
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
 * original message. Each conversation's counter row is locked first, so seq grows by exactly one
 * per message even with two persisters; the unique keys in message_keys back that up.
 */
export async function persistBatch(db: Kysely<Database>, events: SendEvent[]): Promise<Delivery[]> {
  const byConversation = new Map<string, SendEvent[]>()
  for (const event of events) {
    const list = byConversation.get(event.conversationId) ?? []
    list.push(event)
    byConversation.set(event.conversationId, list)
  }
  const deliveries: Delivery[] = []
  await db.transaction().execute(async (trx) => {
    // One lock order for everyone: two persisters never wait on each other in a circle.
    for (const conversationId of [...byConversation.keys()].sort()) {
      const batch = byConversation.get(conversationId)!
      const counter = await trx.selectFrom('conversations').select(['last_seq', 'last_message_at'])
        .where('id', '=', conversationId).forUpdate().executeTakeFirst()
      if (!counter) {
        log.warn('persister: conversation is gone, dropping its messages', { conversationId, count: batch.length })
        continue
      }
      const known = await trx.selectFrom('message_keys').selectAll()
        .where('conversation_id', '=', conversationId)
        .where(eb => eb.or(batch.map(event => eb.and([eb('sender_id', '=', event.senderId), eb('client_id', '=', event.clientId)]))))
        .execute()
      const seen = new Map(known.map(row => [`${row.sender_id}/${row.client_id}`, row]))
      let seq = counter.last_seq
      let last = counter.last_message_at?.getTime() ?? 0
      const fresh: Array<{ event: SendEvent, id: string, seq: number, createdAt: Date }> = []
      for (const event of batch) {
        const key = `${event.senderId}/${event.clientId}`
        const original = seen.get(key)
        if (original) {
          const inBatch = fresh.find(row => row.id === original.message_id)
          const body = inBatch ? inBatch.event.body : await bodyOf(trx, original.message_id, original.created_at)
          deliveries.push(delivery(event, { id: original.message_id, seq: original.seq, createdAt: original.created_at, body }, true))
          continue
        }
        // Strictly increasing times per conversation: paging by time then agrees with seq.
        last = Math.max(event.sentAt, last + 1)
        const row = { event, id: randomUUID(), seq: ++seq, createdAt: new Date(last) }
        fresh.push(row)
        seen.set(key, { sender_id: event.senderId, client_id: event.clientId, message_id: row.id, conversation_id: conversationId, seq: row.seq, created_at: row.createdAt })
      }
      if (!fresh.length) continue
      await trx.insertInto('message_keys').values(fresh.map(row => ({
        sender_id: row.event.senderId,
        client_id: row.event.clientId,
        message_id: row.id,
        conversation_id: conversationId,
        seq: row.seq,
        created_at: row.createdAt
      }))).execute()
      await trx.insertInto('messages').values(fresh.map(row => ({
        id: row.id,
        conversation_id: conversationId,
        seq: row.seq,
        sender_id: row.event.senderId,
        client_id: row.event.clientId,
        body: row.event.body,
        created_at: row.createdAt
      }))).execute()
      await trx.updateTable('conversations').set({ last_seq: seq, last_message_at: new Date(last) }).where('id', '=', conversationId).execute()
      for (const row of fresh) deliveries.push(delivery(row.event, { id: row.id, seq: row.seq, createdAt: row.createdAt, body: row.event.body }, false))
    }
  })
  return deliveries
}

async function bodyOf(db: Kysely<Database>, id: string, createdAt: Date): Promise<string> {
  const row = await db.selectFrom('messages').select('body').where('id', '=', id).where('created_at', '=', createdAt).executeTakeFirst()
  return row?.body ?? ''
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
