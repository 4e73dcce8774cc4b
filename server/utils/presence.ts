import type { Kysely } from 'kysely'
import type { Database } from '../database/schema'
import type { Contact, ServerFrame } from '../../shared/types/chat'
import type { Backends } from './backends'
import { log } from './log'
import { allSockets, deliverText, instanceId, sendFrame, socketsOf, type ChatSocket } from './sockets'

/**
 * Presence across instances, in the store: per person a sorted set of the instances that hold
 * one of their sockets, scored by when that claim expires; plus one set of every person's latest
 * expiry, which any instance may sweep. Each instance refreshes its people every HEARTBEAT_MS
 * (two store calls per person, auto-pipelined), so the work per heartbeat is O(1) per socket.
 *
 * Bounds: a clean close of someone's last socket announces offline at once; a socket that dies
 * silently misses a protocol ping and is cut within two heartbeats (≤ 14 s), then the same;
 * an instance that dies is swept within TTL_MS + SWEEP_MS (≤ 25 s).
 */
export const PRESENCE_TTL_MS = 20_000
export const HEARTBEAT_MS = 7_000
const HEARTBEAT_SLICES = 28
export const SWEEP_MS = 5_000
const EXPIRIES = 'presence:expiries'
const CHANNEL = 'presence'
const FOREVER = Number.MAX_SAFE_INTEGER

export const presenceKey = (userId: string) => `presence:user:${userId}`

interface PresenceEvent {
  userId: string
  status: 'online' | 'offline'
  lastSeen: string
  /** Who shares a conversation with them: only they hear of it. */
  audience: string[]
}

export async function isOnline(backends: Pick<Backends, 'store'>, userId: string, now = Date.now()): Promise<boolean> {
  return (await backends.store.scoreRange(presenceKey(userId), now, FOREVER, 1)).length > 0
}

async function refresh({ store }: Pick<Backends, 'store'>, userId: string, now = Date.now()) {
  const expiry = now + PRESENCE_TTL_MS
  await Promise.all([store.scoreAdd(presenceKey(userId), instanceId, expiry), store.scoreAdd(EXPIRIES, userId, expiry, true)])
}

export async function contactIdsOf(db: Kysely<Database>, userId: string): Promise<string[]> {
  const rows = await db.selectFrom('conversation_members as me')
    .innerJoin('conversation_members as other', 'other.conversation_id', 'me.conversation_id')
    .select('other.user_id')
    .where('me.user_id', '=', userId)
    .where('other.user_id', '<>', userId)
    .distinct()
    .execute()
  return rows.map(row => row.user_id)
}

async function announce({ store, database }: Backends, userId: string, status: PresenceEvent['status'], at: Date, contactIds?: string[]) {
  if (status === 'offline') await database.db.updateTable('users').set({ last_seen_at: at }).where('id', '=', userId).execute()
  const audience = contactIds ?? await contactIdsOf(database.db, userId)
  if (!audience.length) return
  const event: PresenceEvent = { userId, status, lastSeen: at.toISOString(), audience }
  await store.publish(CHANNEL, JSON.stringify(event))
}

/** A socket opened: the person may have just come online; the socket learns its contacts' presence. */
export async function socketOpened(backends: Backends, socket: ChatSocket) {
  const wasOnline = await isOnline(backends, socket.userId)
  await refresh(backends, socket.userId)
  // One query for both: the audience of the announcement and the contacts this socket hears of.
  const contactIds = await contactIdsOf(backends.database.db, socket.userId)
  if (!wasOnline) await announce(backends, socket.userId, 'online', new Date(), contactIds)
  if (!contactIds.length) return
  const contacts = await backends.database.db.selectFrom('users').select(['id', 'last_seen_at'])
    .where('id', 'in', contactIds)
    .execute()
  const online = await Promise.all(contacts.map(contact => isOnline(backends, contact.id)))
  contacts.forEach((contact, index) => sendFrame(socket, {
    type: 'presence.update',
    userId: contact.id,
    status: online[index] ? 'online' : 'offline',
    lastSeen: contact.last_seen_at?.toISOString() ?? null
  }))
}

/** The person's last socket on this instance closed: offline unless another instance holds one. */
export async function lastSocketClosed(backends: Backends, userId: string) {
  await backends.store.scoreRemove(presenceKey(userId), instanceId)
  if (await isOnline(backends, userId)) return
  if (await backends.store.scoreRemove(EXPIRIES, userId)) await announce(backends, userId, 'offline', new Date())
}

/** Finds people whose every instance stopped refreshing them (a killed instance) and announces them. */
export async function sweepExpired(backends: Backends, now = Date.now()) {
  const expired = await backends.store.scoreRange(EXPIRIES, 0, now, 500)
  for (const userId of expired) {
    // The removal is the lock: of all sweeping instances, one announces.
    const lastExpiry = await backends.store.scoreOf(EXPIRIES, userId)
    if (!(await backends.store.scoreRemove(EXPIRIES, userId))) continue
    if (await isOnline(backends, userId, now)) {
      await backends.store.scoreAdd(EXPIRIES, userId, lastExpiry ?? now + PRESENCE_TTL_MS, true)
      continue
    }
    const lastSeen = new Date((lastExpiry ?? now) - PRESENCE_TTL_MS)
    await announce(backends, userId, 'offline', lastSeen)
  }
}

function hear(text: string) {
  const event = JSON.parse(text) as PresenceEvent
  const frame: ServerFrame = { type: 'presence.update', userId: event.userId, status: event.status, lastSeen: event.lastSeen }
  const serialized = JSON.stringify(frame)
  for (const userId of event.audience) for (const socket of socketsOf(userId)) deliverText(socket, serialized)
}

/** A socket's heartbeat slice, fixed for its life: probed twice within one round, it would be cut before its pong could come. */
function sliceOf(socketId: string): number {
  let hash = 0
  for (let i = 0; i < socketId.length; i++) hash = (hash * 31 + socketId.charCodeAt(i)) | 0
  return Math.abs(hash) % HEARTBEAT_SLICES
}

/** Starts this instance's heartbeat, sweeper and listener; returns the stop function. */
export async function startPresence(backends: Backends): Promise<() => Promise<void>> {
  const unsubscribe = await backends.store.subscribe(CHANNEL, (text) => {
    try {
      hear(text)
    }
    catch (error) {
      log.error('presence: unreadable event', { error })
    }
  })
  // The heartbeat goes round in slices: each socket has a fixed slice, probed and refreshed once
  // every HEARTBEAT_MS, a slice every HEARTBEAT_MS / SLICES. All at once, 2,000 people's pings and
  // store calls stalled every send for 130-150 ms each time (the benchmark's p99 at 7 s periods).
  let slice = 0
  const heartbeat = setInterval(() => {
    const people = new Set<string>()
    slice = (slice + 1) % HEARTBEAT_SLICES
    for (const socket of allSockets()) {
      if (sliceOf(socket.id) !== slice) continue
      // A socket that did not answer the last protocol ping is gone: cut it, and its close runs.
      if (socket.probe()) people.add(socket.userId)
    }
    if (!people.size) return
    const now = Date.now()
    Promise.all([...people].map(userId => refresh(backends, userId, now)))
      .catch(error => log.warn('presence: heartbeat failed', { error }))
  }, HEARTBEAT_MS / HEARTBEAT_SLICES)
  const sweeper = setInterval(() => {
    sweepExpired(backends).catch(error => log.warn('presence: sweep failed', { error }))
  }, SWEEP_MS)
  return async () => {
    clearInterval(heartbeat)
    clearInterval(sweeper)
    await unsubscribe()
  }
}

/** Adds each contact's presence to the contact list. */
export async function withPresence(backends: Pick<Backends, 'store'>, contacts: Array<Omit<Contact, 'presence'> & { lastSeen: string | null }>): Promise<Contact[]> {
  const now = Date.now()
  const online = await Promise.all(contacts.map(contact => isOnline(backends, contact.user.id, now)))
  return contacts.map(({ lastSeen, ...contact }, index) => ({
    ...contact,
    presence: { status: online[index] ? 'online' : 'offline', lastSeen }
  }))
}
