import { z } from './zod'
import { Id, Seq } from './ids'

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

/** What a reply shows of the message it answers; `gone` when retention purged it. */
export const ReplyPreviewSchema = z.object({
  id: Id,
  /** Where it is in the conversation (absent when gone): a client loads the history around it. */
  seq: Seq.optional(),
  from: Id.nullable(),
  /** The first characters; null when deleted or gone. */
  body: z.string().nullable(),
  deleted: z.boolean(),
  gone: z.boolean()
})
export type ReplyPreview = z.infer<typeof ReplyPreviewSchema>

/**
 * A stored message as every client sees it. `to` is the other person in a direct conversation,
 * null in a room. History answers it in its current state: a deleted one has `deleted: true`
 * and an empty body; the optional fields are absent from a fresh chat.receive.
 */
export const ChatMessageSchema = z.object({
  id: Id,
  conversationId: Id,
  seq: Seq,
  from: Id,
  to: Id.nullable(),
  body: z.string(),
  /** ISO-8601, when the server accepted the message. */
  timestamp: z.string(),
  replyTo: Id.nullable(),
  attachments: z.array(Id),
  mentions: z.array(Id),
  /** The body says `@room` and the room lets it mention everyone. */
  mentionsRoom: z.boolean().optional(),
  editedAt: z.string().nullable().optional(),
  deleted: z.boolean().optional(),
  deletedBy: Id.nullable().optional(),
  /** `users`: the first who reacted (at most 20), oldest first: an addition, for "who reacted". */
  reactions: z.array(z.object({ emoji: z.string(), count: z.number().int(), mine: z.boolean(), users: z.array(Id).optional() })).optional(),
  replyPreview: ReplyPreviewSchema.nullable().optional()
})
export type ChatMessage = z.infer<typeof ChatMessageSchema>

/** `to` (a person, version 1) and `conversationId` (version 2) are alternatives: exactly one. */
const oneTarget = (frame: { to?: string, conversationId?: string }) => (frame.to === undefined) !== (frame.conversationId === undefined)
const ONE_TARGET = { message: 'Give either to or conversationId.', path: ['conversationId'] }

export const ChatSendFrame = z.object({
  type: z.literal('chat.send'),
  to: Id.optional(),
  conversationId: Id.optional(),
  body: MessageBodySchema,
  clientId: Id,
  /** A message of the same conversation this one answers. */
  replyTo: Id.optional()
}).refine(oneTarget, ONE_TARGET)
export type ChatSend = z.infer<typeof ChatSendFrame>

export const ChatAckFrame = z.object({
  type: z.literal('chat.ack'),
  clientId: Id,
  id: Id,
  conversationId: Id,
  seq: Seq,
  timestamp: z.string()
})

export const ChatReceiveFrame = ChatMessageSchema.extend({ type: z.literal('chat.receive') })
export type ChatReceive = z.infer<typeof ChatReceiveFrame>

export const MessagesClientFrames = [ChatSendFrame] as const
export const MessagesServerFrames = [ChatAckFrame, ChatReceiveFrame] as const

export const HistoryQuery = z.object({
  before: z.iso.datetime({ offset: true, error: 'before must be an ISO-8601 time.' }).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50)
})

export const HistoryAnswer = z.object({ messages: z.array(ChatMessageSchema), nextBefore: z.string().nullable() })

/** One page by seq: `before`, `after` or `around` one position, at most one of them. */
export const MessagesQuery = z.object({
  after: z.coerce.number().int().min(0).optional(),
  before: z.coerce.number().int().min(1).optional(),
  around: z.coerce.number().int().min(1).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50)
}).refine(query => [query.after, query.before, query.around].filter(value => value !== undefined).length <= 1, 'Give at most one of after, before and around.')

export const MessagesAnswer = z.object({ messages: z.array(ChatMessageSchema) })
