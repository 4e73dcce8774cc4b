import { z } from 'zod'
import { EmailSchema } from './auth'

/** Frames larger than this get an `error` frame; the connection stays open. */
export const MAX_FRAME_BYTES = 16 * 1024
export const MAX_BODY_CHARS = 4000

// Newline and tab are text; every other control character is refused, not stripped.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/u

export const MessageBodySchema = z
  .string()
  // Lone surrogates are not text: PostgreSQL cannot store them as UTF-8.
  .refine(body => body.isWellFormed(), 'Messages must be valid Unicode text.')
  .refine(body => !CONTROL.test(body), 'Messages cannot contain control characters.')
  .transform(body => body.trim())
  .pipe(z.string().min(1, 'A message cannot be empty.').max(MAX_BODY_CHARS, `A message is at most ${MAX_BODY_CHARS} characters.`))

const Id = z.uuid()

export const ClientFrameSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('chat.send'), to: Id, body: MessageBodySchema, clientId: Id }),
  z.object({ type: z.literal('typing.start'), to: Id }),
  z.object({ type: z.literal('typing.stop'), to: Id }),
  z.object({ type: z.literal('read.update'), messageIds: z.array(Id).min(1).max(500) }),
  z.object({ type: z.literal('ping') })
])
export type ClientFrame = z.infer<typeof ClientFrameSchema>
export const CLIENT_FRAME_TYPES = ['chat.send', 'typing.start', 'typing.stop', 'read.update', 'ping'] as const

export interface ChatMessage {
  id: string
  conversationId: string
  seq: number
  from: string
  to: string
  body: string
  /** ISO-8601, when the server accepted the message. */
  timestamp: string
}

export type PresenceStatus = 'online' | 'offline'

export type ServerFrame
  = | ({ type: 'chat.ack', clientId: string, id: string, conversationId: string, seq: number, timestamp: string })
    | ({ type: 'chat.receive' } & ChatMessage)
    | { type: 'presence.update', userId: string, status: PresenceStatus, lastSeen: string | null }
    | { type: 'typing.update', from: string, typing: boolean }
    | { type: 'read.update', messageIds: string[], by: string, readAt: string }
    | { type: 'pong' }
    | { type: 'error', code: SocketErrorCode, message: string, ref?: string }

export type SocketErrorCode
  = | 'frame_too_large' | 'invalid_json' | 'unknown_type' | 'invalid_frame' | 'not_a_contact'
    | 'rate_limited' | 'unavailable' | 'internal'

export const OpenContactBody = z.object({ email: EmailSchema })

export const HistoryQuery = z.object({
  before: z.iso.datetime({ offset: true, error: 'before must be an ISO-8601 time.' }).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50)
})

export const ResyncQuery = z.object({
  after: z.coerce.number().int().min(0).optional(),
  before: z.coerce.number().int().min(1).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50)
}).refine(query => query.after === undefined || query.before === undefined, 'Give after or before, not both.')

export const ReadReceiptBody = z.object({ messageIds: z.array(Id).min(1).max(500) })

export interface Contact {
  user: { id: string, email: string, displayName: string }
  conversationId: string
  presence: { status: PresenceStatus, lastSeen: string | null }
  lastMessage: ChatMessage | null
  unread: number
  /** The other person's read watermark: your messages up to this seq are read. */
  theirRead: { seq: number, at: string | null }
}
