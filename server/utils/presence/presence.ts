import { sql, type Kysely } from 'kysely'
import type { Database } from '../../database/schema'
import type { Presence, PresenceUpdate } from '#shared/types/presence'
import type { ClientFrameOf } from '#shared/types/frames'
import type { Backends } from '../backends'
import { FrameRefused, type FrameContext } from '../gateway/frame'
import { log } from '../log'
import { broadcast, onEnvelope } from '../realtime/broadcast'
import { conversationsOf, membershipOf, refreshMembership } from '../realtime/membership'
import { allSockets, deliverText, instanceId, sendFrame, type ChatSocket } from '../realtime/sockets'

/**
 * Presence across instances, in the store: per person a sorted set of the instances that hold
 * one of their sockets, scored by when that claim expires; plus one set of every person's latest
 * expiry, which any instance may sweep. Each instance refreshes its people every HEARTBEAT_MS
 * (two store calls per person, auto-pipelined), so the work per heartbeat is O(1) per socket.
 *
 * Who hears of it: the people one has a direct conversation with that both accepted, always; the
 * members of a room only while they look at it (presence.watch), coalesced to one frame per
 * person per WATCH_FLUSH_MS. A 1,000-member room thus costs what its viewers can see, never
 * every member's change sent to every member.
 *
 * Bounds: a clean close of someone's last socket announces offline at once; a socket that dies
 * silently misses a protocol ping and is cut within two heartbeats (≤ 14 s), then the same;
 * an instance that dies is swept within TTL_MS + SWEEP_MS (≤ 25 s).
 */
export const PRESENCE_TTL_MS = 20_000
export const HEARTBEAT_MS = 7_000
const HEARTBEAT_SLICES = 28
export const SWEEP_MS = 5_000
const WATCH_FLUSH_MS = 1_000
const EXPIRIES = 'presence:expiries'
const FOREVER = Number.MAX_SAFE_INTEGER

export const presenceKey = (userId: string) => `presence:user:${userId}`

export async function isOnline(backends: Pick<Backends, 'store'>, userId: string, now = Date.now()): Promise<boolean> {
  return (await backends.store.scoreRange(presenceKey(userId), now, FOREVER, 1)).length > 0
}

export async function presenceOf(backends: Pick<Backends, 'store'>, userId: string, lastSeen: Date | null): Promise<Presence> {
  return { status: await isOnline(backends, userId) ? 'online' : 'offline', lastSeen: lastSeen?.toISOString() ?? null }
}

async function refresh({ store }: Pick<Backends, 'store'>, userId: string, now = Date.now()) {
  const expiry = now + PRESENCE_TTL_MS
  await Promise.all([store.scoreAdd(presenceKey(userId), instanceId, expiry), store.scoreAdd(EXPIRIES, userId, expiry, true)])
}

/** The people someone shares an accepted direct conversation with: they hear of their presence. */
export async function contactsOf(db: Kysely<Database>, userId: string): Promise<string[]> {
  const { rows } = await sql<{ user_id: string }>`
    select o.user_id from conversation_members m
    join conversations c on c.id = m.conversation_id and c.kind = 'direct'
    join conversation_members o on o.conversation_id = m.conversation_id and o.user_id <> m.user_id
    where m.user_id = ${userId} and m.state = 'active' and o.state = 'active'`.execute(db)
  return rows.map(row => row.user_id)
}

function openContactsHere(userId: string): string[] {
  const peers: string[] = []
  for (const [, membership] of conversationsOf(userId)) if (membership.peer && membership.open) peers.push(membership.peer)
  return peers
}

/** Every instance hears it: contacts get the frame, watchers of a room the person is in get it coalesced. */
async function announce({ database }: Backends, userId: string, status: PresenceUpdate['status'], at: Date, contacts?: string[]) {
  if (status === 'offline') await database.db.updateTable('users').set({ last_seen_at: at }).where('id', '=', userId).execute()
  const frame: PresenceUpdate = { type: 'presence.update', userId, status, lastSeen: at.toISOString() }
  await broadcast({ to: { users: contacts ?? await contactsOf(database.db, userId) }, frame })
}

/** Two people just accepted each other: each gets the other's presence now. */
export async function sharePresence(backends: Backends, a: string, b: string) {
  const rows = await backends.database.db.selectFrom('users').select(['id', 'last_seen_at']).where('id', 'in', [a, b]).execute()
  const envelopes = await Promise.all(rows.map(async row => ({
    to: { users: [row.id === a ? b : a] },
    frame: { type: 'presence.update' as const, userId: row.id, ...await presenceOf(backends, row.id, row.last_seen_at) }
  })))
  await broadcast(envelopes)
}

/** A socket opened: the person may have just come online; the socket learns its contacts' presence. */
export async function socketOpened(backends: Backends, socket: ChatSocket) {
  const wasOnline = await isOnline(backends, socket.userId)
  await refresh(backends, socket.userId)
  const contacts = openContactsHere(socket.userId)
  if (!wasOnline) await announce(backends, socket.userId, 'online', new Date(), contacts)
  if (!contacts.length) return
  const rows = await backends.database.db.selectFrom('users').select(['id', 'last_seen_at']).where('id', 'in', contacts).execute()
  const presence = await Promise.all(rows.map(row => presenceOf(backends, row.id, row.last_seen_at)))
  rows.forEach((row, index) => sendFrame(socket, { type: 'presence.update', userId: row.id, ...presence[index]! }))
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
    await announce(backends, userId, 'offline', new Date((lastExpiry ?? now) - PRESENCE_TTL_MS))
  }
}

interface WatchedRoom { members: Set<string>, sockets: Set<ChatSocket> }
const watched = new Map<string, WatchedRoom>()
const watchedRoomsOf = new Map<string, Set<string>>()
// What each watching socket has yet to hear, one frame per person: the coalescing.
const unsent = new Map<ChatSocket, Map<string, PresenceUpdate>>()

/** presence.watch: the room whose members' presence this socket wants, or none. */
export async function watchPresence({ socket, backends }: FrameContext, frame: ClientFrameOf<'presence.watch'>) {
  unwatch(socket)
  const conversationId = frame.conversationId
  if (!conversationId) return
  const membership = membershipOf(socket.userId, conversationId) ?? await refreshMembership(backends.database.db, socket.userId, conversationId)
  if (membership?.kind !== 'room') throw new FrameRefused('not_found', 'There is no such room.')
  let room = watched.get(conversationId)
  if (!room) {
    const rows = await backends.database.db.selectFrom('conversation_members').select('user_id').where('conversation_id', '=', conversationId).execute()
    // Another socket may have started watching while the members were read.
    room = watched.get(conversationId)
    if (!room) {
      watched.set(conversationId, room = { members: new Set(), sockets: new Set() })
      for (const row of rows) addWatchedMember(conversationId, room, row.user_id)
    }
  }
  room.sockets.add(socket)
  socket.watching = conversationId
  // Those online now; the rest are offline, as the member list already said.
  const members = [...room.members]
  const online = await Promise.all(members.map(userId => isOnline(backends, userId)))
  const queue = unsentFor(socket)
  members.forEach((userId, index) => {
    if (online[index] && userId !== socket.userId) queue.set(userId, { type: 'presence.update', userId, status: 'online', lastSeen: null })
  })
}

/** The socket closed or looks elsewhere now. */
export function unwatch(socket: ChatSocket) {
  unsent.delete(socket)
  const conversationId = socket.watching
  if (!conversationId) return
  socket.watching = undefined
  const room = watched.get(conversationId)
  if (!room) return
  room.sockets.delete(socket)
  if (room.sockets.size) return
  watched.delete(conversationId)
  for (const userId of room.members) watchedRoomsOf.get(userId)?.delete(conversationId)
}

function addWatchedMember(conversationId: string, room: WatchedRoom, userId: string) {
  room.members.add(userId)
  let rooms = watchedRoomsOf.get(userId)
  if (!rooms) watchedRoomsOf.set(userId, rooms = new Set())
  rooms.add(conversationId)
}

function unsentFor(socket: ChatSocket) {
  let queue = unsent.get(socket)
  if (!queue) unsent.set(socket, queue = new Map())
  return queue
}

function heard(frame: PresenceUpdate) {
  for (const conversationId of watchedRoomsOf.get(frame.userId) ?? []) {
    for (const socket of watched.get(conversationId)?.sockets ?? []) {
      if (socket.userId !== frame.userId) unsentFor(socket).set(frame.userId, frame)
    }
  }
}

function memberChanged(backends: Backends, conversationId: string, userId: string, present: boolean) {
  const room = watched.get(conversationId)
  if (!room) return
  if (present) {
    if (room.members.has(userId)) return
    addWatchedMember(conversationId, room, userId)
    // A newcomer who is online already would otherwise show offline to those watching.
    void isOnline(backends, userId).then((online) => {
      if (online) heard({ type: 'presence.update', userId, status: 'online', lastSeen: null })
    }, error => log.warn('presence: could not read a new member\'s presence', { error }))
    return
  }
  room.members.delete(userId)
  watchedRoomsOf.get(userId)?.delete(conversationId)
  // A removed member stops seeing the room's presence at once.
  for (const socket of [...room.sockets]) if (socket.userId === userId) unwatch(socket)
}

function flushWatchers() {
  for (const [socket, queue] of unsent) {
    for (const frame of queue.values()) deliverText(socket, JSON.stringify(frame))
  }
  unsent.clear()
}

/** A socket's heartbeat slice, fixed for its life: probed twice within one round, it would be cut before its pong could come. */
function sliceOf(socketId: string): number {
  let hash = 0
  for (let i = 0; i < socketId.length; i++) hash = (hash * 31 + socketId.charCodeAt(i)) | 0
  return Math.abs(hash) % HEARTBEAT_SLICES
}

/** Starts this instance's heartbeat, sweeper and watchers; returns the stop function. */
export async function startPresence(backends: Backends): Promise<() => Promise<void>> {
  const stopListening = onEnvelope((envelope) => {
    if (envelope.frame?.type === 'presence.update') heard(envelope.frame)
    for (const change of envelope.membership ?? []) {
      if (change.membership?.kind !== 'direct') memberChanged(backends, change.conversationId, change.userId, !!change.membership)
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
  const flusher = setInterval(flushWatchers, WATCH_FLUSH_MS)
  return async () => {
    clearInterval(heartbeat)
    clearInterval(sweeper)
    clearInterval(flusher)
    stopListening()
    watched.clear()
    watchedRoomsOf.clear()
    unsent.clear()
  }
}
