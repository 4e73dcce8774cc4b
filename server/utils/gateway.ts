import { ClientFrameSchema, CLIENT_FRAME_TYPES, MAX_FRAME_BYTES, type ClientFrame, type SocketErrorCode } from '../../shared/types/chat'
import type { Backends } from './backends'
import { findDirectConversation } from './conversations'
import { useConfig } from './config'
import { log } from './log'
import { markRead } from './receipts'
import { publishTyping } from './typing'
import { acceptingSends, sendSettled, sendWaiting } from './backpressure'
import { messagesAccepted, rateLimited } from './metrics'
import { MESSAGES_TOPIC, type SendEvent } from './persister'
import { sendFrame, type ChatSocket } from './sockets'

/** Per person and instance: 10 messages a second on average, bursts of 20. */
const RATE_PER_SECOND = 10
const BURST = 20
const buckets = new Map<string, { tokens: number, at: number }>()

function takeToken(userId: string, now = Date.now()): boolean {
  const bucket = buckets.get(userId) ?? { tokens: BURST, at: now }
  bucket.tokens = Math.min(BURST, bucket.tokens + ((now - bucket.at) / 1000) * RATE_PER_SECOND)
  bucket.at = now
  buckets.set(userId, bucket)
  if (bucket.tokens < 1) return false
  bucket.tokens -= 1
  return true
}

export function forgetRateLimit(userId: string) {
  buckets.delete(userId)
}

// Who may write to whom changes only when a contact is added: remember the answer, bounded.
const conversationCache = new Map<string, string>()
async function conversationFor(backends: Backends, from: string, to: string): Promise<string | undefined> {
  const key = `${from}:${to}`
  const cached = conversationCache.get(key)
  if (cached) return cached
  const found = await findDirectConversation(backends.database.db, from, to)
  if (found) {
    if (conversationCache.size > 50_000) conversationCache.clear()
    conversationCache.set(key, found)
  }
  return found
}

const CLIENT_ID_IN_TEXT = /"clientId"\s*:\s*"([0-9a-fA-F-]{36})"/

function refuse(socket: ChatSocket, code: SocketErrorCode, message: string, ref?: unknown) {
  sendFrame(socket, { type: 'error', code, message, ...(typeof ref === 'string' && ref.length <= 64 && { ref }) })
}

/**
 * One frame from a socket: checked by size, JSON and schema, then dispatched. Every bad frame
 * gets an `error` frame and changes nothing; the connection stays open.
 */
export async function handleFrame(backends: Backends, socket: ChatSocket, data: Uint8Array | string) {
  const size = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength
  if (size > MAX_FRAME_BYTES) {
    // Not parsed (that is the cost a limit avoids), but a clientId is cheap to find, and it lets
    // the client mark the right message as failed.
    const head = Buffer.from(typeof data === 'string' ? data.slice(0, 256) : data.subarray(0, 256)).toString('latin1')
    const tail = Buffer.from(typeof data === 'string' ? data.slice(-256) : data.subarray(-256)).toString('latin1')
    const ref = CLIENT_ID_IN_TEXT.exec(head)?.[1] ?? CLIENT_ID_IN_TEXT.exec(tail)?.[1]
    return refuse(socket, 'frame_too_large', `Frames are at most ${MAX_FRAME_BYTES / 1024} KiB.`, ref)
  }
  let json: unknown
  try {
    json = JSON.parse(typeof data === 'string' ? data : new TextDecoder('utf-8', { fatal: true }).decode(data))
  }
  catch {
    return refuse(socket, 'invalid_json', 'Frames are JSON text.')
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return refuse(socket, 'invalid_frame', 'A frame is a JSON object with a type.')
  const { type, clientId } = json as { type?: unknown, clientId?: unknown }
  // Never String() a hostile value: an object without a usable toString throws.
  if (!CLIENT_FRAME_TYPES.includes(type as never)) return refuse(socket, 'unknown_type', `Unknown frame type: ${typeof type === 'string' ? type.slice(0, 40) : typeof type}.`, clientId)
  let parsed: ReturnType<typeof ClientFrameSchema.safeParse>
  try {
    parsed = ClientFrameSchema.safeParse(json)
  }
  catch {
    // NOTE: zod 4 can throw (not fail) on objects posing as arrays, e.g. { length: { toString: 1 } }.
    return refuse(socket, 'invalid_frame', `${type}: the frame does not match its schema.`, clientId)
  }
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    return refuse(socket, 'invalid_frame', `${type}: ${issue?.path.join('.') || 'frame'}: ${issue?.message ?? 'invalid'}`, clientId)
  }
  const frame = parsed.data
  try {
    switch (frame.type) {
      case 'ping':
        return sendFrame(socket, { type: 'pong' })
      case 'chat.send':
        return await send(backends, socket, frame)
      case 'typing.start':
      case 'typing.stop':
        if (!(await conversationFor(backends, socket.userId, frame.to))) return refuse(socket, 'not_a_contact', 'Add this person as a contact first.')
        return await publishTyping(backends, socket, frame.to, frame.type === 'typing.start')
      case 'read.update':
        return await markRead(backends, socket.userId, frame.messageIds, useConfig().retentionDays)
    }
  }
  catch (error) {
    log.error('gateway: frame failed', { type: frame.type, userId: socket.userId, error })
    refuse(socket, 'internal', 'Something went wrong on the server. Try again.', clientId)
  }
}

async function send(backends: Backends, socket: ChatSocket, frame: Extract<ClientFrame, { type: 'chat.send' }>) {
  // First, and cheap: under overload most sends end here, and refusing must not cost what it saves.
  if (!acceptingSends()) {
    rateLimited.inc({ what: 'backpressure' })
    return refuse(socket, 'rate_limited', 'Natter is busy. Your message will go out in a moment.', frame.clientId)
  }
  if (!takeToken(socket.userId)) {
    rateLimited.inc({ what: 'chat.send' })
    return refuse(socket, 'rate_limited', 'You are sending too fast. Wait a moment.', frame.clientId)
  }
  const conversationId = frame.to === socket.userId ? undefined : await conversationFor(backends, socket.userId, frame.to)
  if (!conversationId) return refuse(socket, 'not_a_contact', 'Add this person as a contact before writing to them.', frame.clientId)
  const event: SendEvent = {
    conversationId,
    senderId: socket.userId,
    recipientId: frame.to,
    clientId: frame.clientId,
    body: frame.body,
    sentAt: Date.now(),
    origin: socket.id
  }
  sendWaiting(socket.id, frame.clientId)
  try {
    await backends.bus.publish(MESSAGES_TOPIC, [{ key: conversationId, value: JSON.stringify(event) }])
  }
  catch (error) {
    sendSettled(socket.id, frame.clientId)
    log.warn('gateway: bus refused a message', { error })
    return refuse(socket, 'unavailable', 'The message could not be sent right now. It will be retried.', frame.clientId)
  }
  messagesAccepted.inc()
}
