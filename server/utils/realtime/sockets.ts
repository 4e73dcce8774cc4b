import { randomUUID } from 'node:crypto'
import type { ServerFrame } from '#shared/types/frames'
import { openSockets } from '../metrics'

/** This process, among the instances sharing the bus and the store. */
export const instanceId = randomUUID().slice(0, 8)

// A socket whose client stopped reading: past this much unsent data it is closed, so one slow
// client cannot grow the server's memory without bound.
export const MAX_BUFFERED_BYTES = 1024 * 1024

export interface ChatSocket {
  /** instance:counter, unique across instances: the origin of a chat.send. */
  readonly id: string
  readonly userId: string
  readonly sessionId: string
  /** The client's address, as the socket caps count it. */
  readonly ip: string
  /** Sends already-serialised JSON as a text frame: a frame for many sockets is serialised and encoded once. */
  sendText(text: string | Buffer): void
  bufferedAmount(): number
  close(code: number, reason: string): void
  /** Sends a protocol ping; false (and the socket is cut) when the previous one got no answer. */
  probe(): boolean
  /** Where this socket last said it was typing, so a close can clear the indicator. */
  typingIn?: string
  /** The room whose members' presence this socket watches (presence.watch). */
  watching?: string
}

const byId = new Map<string, ChatSocket>()
const byUser = new Map<string, Set<ChatSocket>>()
const byIp = new Map<string, number>()

/** Adds a socket; true when it is the person's first on this instance. */
export function registerSocket(socket: ChatSocket): boolean {
  byId.set(socket.id, socket)
  let set = byUser.get(socket.userId)
  const first = !set
  if (!set) byUser.set(socket.userId, set = new Set())
  set.add(socket)
  byIp.set(socket.ip, (byIp.get(socket.ip) ?? 0) + 1)
  openSockets.set(byId.size)
  return first
}

/** Returns true when this was the person's last socket on this instance. */
export function unregisterSocket(socket: ChatSocket): boolean {
  if (!byId.delete(socket.id)) return false
  const left = (byIp.get(socket.ip) ?? 1) - 1
  if (left > 0) byIp.set(socket.ip, left)
  else byIp.delete(socket.ip)
  const set = byUser.get(socket.userId)
  set?.delete(socket)
  openSockets.set(byId.size)
  if (set && set.size === 0) {
    byUser.delete(socket.userId)
    return true
  }
  return false
}

export function socketsOf(userId: string): Iterable<ChatSocket> {
  return byUser.get(userId) ?? []
}

export function socketById(id: string): ChatSocket | undefined {
  return byId.get(id)
}

export function allSockets(): Iterable<ChatSocket> {
  return byId.values()
}

export function hasSockets(userId: string): boolean {
  return byUser.has(userId)
}

// Upgrades let through and not open yet, counted as open: each upgrade waits on the store between
// its check and its open, so without them parallel upgrades all passed the same check (9 of 9
// where the cap was 5).
const reservedByUser = new Map<string, number>()
const reservedByIp = new Map<string, number>()
let reservedTotal = 0

function add(counts: Map<string, number>, key: string, change: number) {
  const next = (counts.get(key) ?? 0) + change
  if (next > 0) counts.set(key, next)
  else counts.delete(key)
}

/**
 * Holds a place for an upgrade that passed the caps, until its socket is registered or its
 * connection drops first. Returns the release, which acts once however often it is called.
 */
export function reserveSocket(userId: string, ip: string): () => void {
  add(reservedByUser, userId, 1)
  add(reservedByIp, ip, 1)
  reservedTotal += 1
  let held = true
  return () => {
    if (!held) return
    held = false
    add(reservedByUser, userId, -1)
    add(reservedByIp, ip, -1)
    reservedTotal -= 1
  }
}

/** Sockets here, open or about to be: of one person, from one address, in all. */
export function socketCounts(userId: string, ip: string) {
  return {
    user: (byUser.get(userId)?.size ?? 0) + (reservedByUser.get(userId) ?? 0),
    ip: (byIp.get(ip) ?? 0) + (reservedByIp.get(ip) ?? 0),
    total: byId.size + reservedTotal
  }
}

export function sendFrame(socket: ChatSocket, frame: ServerFrame) {
  deliverText(socket, JSON.stringify(frame))
}

/** Writes to one socket unless it has fallen too far behind; then it is closed (1013: try again later). */
export function deliverText(socket: ChatSocket, text: string | Buffer): boolean {
  if (socket.bufferedAmount() > MAX_BUFFERED_BYTES) {
    socket.close(1013, 'too slow: reconnect and resync')
    return false
  }
  socket.sendText(text)
  return true
}
