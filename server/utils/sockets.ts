import { randomUUID } from 'node:crypto'
import type { ServerFrame } from '../../shared/types/chat'
import { openSockets } from './metrics'

/** This process, among the instances sharing the bus and the store. */
export const instanceId = randomUUID().slice(0, 8)

// A socket whose client stopped reading: past this much unsent data it is closed, so one slow
// client cannot grow the server's memory without bound.
export const MAX_BUFFERED_BYTES = 1024 * 1024

export interface ChatSocket {
  /** instance:peer, unique across instances: the origin of a chat.send. */
  id: string
  userId: string
  sessionId: string
  /** Sends already-serialised JSON: a frame for many sockets is serialised once. */
  sendText(text: string): void
  bufferedAmount(): number
  close(code: number, reason: string): void
  /** Sends a protocol ping; false (and the socket is cut) when the previous one got no answer. */
  probe(): boolean
  /** Whom this socket last said it was typing to, so a close can clear the indicator. */
  typingTo?: string
}

const byId = new Map<string, ChatSocket>()
const byUser = new Map<string, Set<ChatSocket>>()

export function registerSocket(socket: ChatSocket): boolean {
  byId.set(socket.id, socket)
  let set = byUser.get(socket.userId)
  const first = !set
  if (!set) {
    set = new Set()
    byUser.set(socket.userId, set)
  }
  set.add(socket)
  openSockets.set(byId.size)
  return first
}

/** Returns true when this was the user's last socket on this instance. */
export function unregisterSocket(socket: ChatSocket): boolean {
  if (!byId.delete(socket.id)) return false
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

export function allSockets(): Iterable<ChatSocket> {
  return byId.values()
}

export function hasSockets(userId: string): boolean {
  return byUser.has(userId)
}

export function sendFrame(socket: ChatSocket, frame: ServerFrame) {
  deliverText(socket, JSON.stringify(frame))
}

/** Writes to one socket unless it has fallen too far behind; then it is closed (1013: try again later). */
export function deliverText(socket: ChatSocket, text: string): boolean {
  if (socket.bufferedAmount() > MAX_BUFFERED_BYTES) {
    socket.close(1013, 'too slow: reconnect and resync')
    return false
  }
  socket.sendText(text)
  return true
}
