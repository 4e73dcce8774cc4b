import type { TypingChange, TypingUpdate } from '#shared/types/typing'
import type { Backends } from '../backends'
import { FrameRefused, type FrameContext } from '../gateway/frame'
import { broadcast, deliverHere, onEnvelope } from '../realtime/broadcast'
import { directConversationOf, membershipOf, refreshMembership } from '../realtime/membership'
import type { ChatSocket } from '../realtime/sockets'

/** Typing expires here, on the listeners' side, so a crashed sender's indicator clears too. */
export const TYPING_EXPIRY_MS = 5_000
// A start repeated within this is not relayed again: the listeners' expiry covers it.
const RELAY_EVERY_MS = 2_000

const expiries = new Map<string, NodeJS.Timeout>()
const relayedAt = new Map<string, number>()

/**
 * typing.start and typing.stop, to the other members of the conversation. Never persisted; in a
 * direct conversation only once both people accepted each other.
 */
export async function changeTyping({ socket, backends }: FrameContext, frame: TypingChange) {
  const conversationId = await conversationOf(backends, socket.userId, frame)
  const typing = frame.type === 'typing.start'
  const key = `${conversationId}:${socket.userId}`
  if (typing) {
    const last = relayedAt.get(key)
    if (last !== undefined && Date.now() - last < RELAY_EVERY_MS && socket.typingIn === conversationId) return
    relayedAt.set(key, Date.now())
  }
  else {
    if (!relayedAt.delete(key)) return
  }
  await publishTyping(socket, conversationId, typing)
}

async function conversationOf(backends: Backends, userId: string, frame: TypingChange): Promise<string> {
  const db = backends.database.db
  const conversationId = frame.conversationId ?? (frame.to === undefined ? undefined : directConversationOf(userId, frame.to))
  const membership = conversationId && (membershipOf(userId, conversationId) ?? await refreshMembership(db, userId, conversationId))
  if (!conversationId || !membership) {
    throw frame.to !== undefined ? new FrameRefused('not_a_contact', 'Add this person as a contact first.') : new FrameRefused('not_found', 'There is no such conversation.')
  }
  if (!membership.open) throw new FrameRefused('forbidden', 'Typing shows once you both accepted each other.')
  return conversationId
}

export async function publishTyping(socket: ChatSocket, conversationId: string, typing: boolean) {
  socket.typingIn = typing ? conversationId : undefined
  if (!typing) relayedAt.delete(`${conversationId}:${socket.userId}`)
  const frame: TypingUpdate = { type: 'typing.update', conversationId, from: socket.userId, typing }
  await broadcast({ to: { conversation: conversationId, except: socket.userId }, frame })
}

/** Every instance expires what it relayed, for its own sockets. */
function heard(frame: TypingUpdate) {
  const key = `${frame.conversationId}:${frame.from}`
  clearTimeout(expiries.get(key))
  expiries.delete(key)
  if (!frame.typing) return
  expiries.set(key, setTimeout(() => {
    expiries.delete(key)
    relayedAt.delete(key)
    deliverHere({ to: { conversation: frame.conversationId, except: frame.from }, frame: { ...frame, typing: false } })
  }, TYPING_EXPIRY_MS).unref())
}

export function startTyping(): () => Promise<void> {
  const stop = onEnvelope((envelope) => {
    if (envelope.frame?.type === 'typing.update') heard(envelope.frame)
  })
  return async () => {
    stop()
    expiries.forEach(timer => clearTimeout(timer))
    expiries.clear()
    relayedAt.clear()
  }
}
