import type { ChatSend } from '#shared/types/messages'
import { acceptContact } from '../contacts/contacts'
import { findDirectConversation } from '../conversations/direct'
import { FrameRefused, type FrameContext } from '../gateway/frame'
import { log } from '../log'
import { messagesAccepted } from '../metrics'
import { directConversationOf, membershipOf, refreshMembership, type Membership } from '../realtime/membership'
import { useConfig } from '../config'
import { retentionCutoff } from '../retention/cutoff'
import { sendSettled, sendWaiting } from './backpressure'
import { CONVERSATIONS_TOPIC, type SendEvent } from './persister'

/**
 * chat.send: the gateway has checked the frame and the sender's limits; this finds the
 * conversation, then puts the message on the bus keyed by conversation, so each conversation's
 * messages keep their order. The persister answers through the broadcast: chat.ack to this
 * socket, chat.receive to every member, or an error frame if it refuses.
 */
export async function sendMessage({ socket, backends }: FrameContext, frame: ChatSend) {
  const { conversationId, membership } = await conversationOf(backends.database.db, socket.userId, frame)
  if (frame.replyTo && !await isMessageOf(backends.database.db, conversationId, frame.replyTo)) {
    throw new FrameRefused('invalid_reply', 'You can only reply to a message of the same conversation.')
  }
  // Writing back to someone who wrote first is accepting them.
  if (membership.incoming) await acceptContact(backends, socket.userId, membership.peer!)
  const event: SendEvent = {
    conversationId,
    senderId: socket.userId,
    recipientId: membership.peer,
    clientId: frame.clientId,
    body: frame.body,
    ...(frame.replyTo && { replyTo: frame.replyTo }),
    sentAt: Date.now(),
    origin: socket.id
  }
  sendWaiting(socket.id, frame.clientId)
  try {
    await backends.bus.publish(CONVERSATIONS_TOPIC, [{ key: conversationId, value: JSON.stringify(event) }])
  }
  catch (error) {
    sendSettled(socket.id, frame.clientId)
    log.warn('messages: the bus refused a message', { error })
    throw new FrameRefused('unavailable', 'The message could not be sent right now. It will be retried.')
  }
  messagesAccepted.inc()
}

async function isMessageOf(db: FrameContext['backends']['database']['db'], conversationId: string, messageId: string): Promise<boolean> {
  const row = await db.selectFrom('messages').select('id')
    .where('id', '=', messageId).where('conversation_id', '=', conversationId)
    .where('created_at', '>', retentionCutoff(useConfig().retentionDays)).executeTakeFirst()
  return !!row
}

async function conversationOf(db: FrameContext['backends']['database']['db'], userId: string, frame: ChatSend): Promise<{ conversationId: string, membership: Membership }> {
  if (frame.to !== undefined) {
    const notContact = new FrameRefused('not_a_contact', 'Add this person as a contact before writing to them.')
    if (frame.to === userId) throw notContact
    const known = directConversationOf(userId, frame.to)
    const conversationId = known ?? await findDirectConversation(db, userId, frame.to)
    const membership = conversationId && (membershipOf(userId, conversationId) ?? await refreshMembership(db, userId, conversationId))
    if (!conversationId || !membership) throw notContact
    return { conversationId, membership }
  }
  const conversationId = frame.conversationId!
  const membership = membershipOf(userId, conversationId) ?? await refreshMembership(db, userId, conversationId)
  if (!membership) throw new FrameRefused('not_found', 'There is no such conversation.')
  return { conversationId, membership }
}
