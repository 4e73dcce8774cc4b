import { z } from 'zod'
import { Id, Seq } from './ids'
import { MessageBodySchema } from './messages'

/** Distinct emoji one message can carry; one more is refused (409 too_many_reactions). */
export const MAX_REACTIONS_PER_MESSAGE = 20
/** People named per emoji in a chat.update: the count is exact, the list is the first ones. */
export const MAX_REACTION_USERS = 20
/** People one message can mention (past this, the rest are plain text). */
export const MAX_MENTIONS = 50
/** Characters of the replied-to message a reply preview carries. */
export const REPLY_PREVIEW_CHARS = 200

/** Exactly one emoji (one RGI emoji sequence: flags, skin tones and families count as one). */
export const EmojiSchema = z.string().max(64).regex(/^\p{RGI_Emoji}$/v, 'Give exactly one emoji.')

/** `<@userId>` in a body mentions that person; `@room` everyone in the room (unless the room turned it off). */
export const MENTION_TOKEN = /<@([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})>/gi
export const ROOM_MENTION = /(^|[^\w@])@room\b/

/**
 * A change of a message waiting on the client: `changeId` is its own id (a UUID), so a resend
 * after a reconnect is recognised and changes nothing; refusals come back as `error` with
 * `ref: changeId` (or the messageId when the frame had no changeId).
 */
const Change = { messageId: Id, changeId: Id.optional() }

export const ChatEditFrame = z.object({ type: z.literal('chat.edit'), ...Change, body: MessageBodySchema })
export const ChatDeleteFrame = z.object({ type: z.literal('chat.delete'), ...Change })
export const ChatReactFrame = z.object({ type: z.literal('chat.react'), ...Change, emoji: EmojiSchema, on: z.boolean() })
export type ChatEdit = z.infer<typeof ChatEditFrame>
export type ChatDelete = z.infer<typeof ChatDeleteFrame>
export type ChatReact = z.infer<typeof ChatReactFrame>

/** One emoji on a message as a stream frame carries it: the exact count and the first people. */
export const ReactionTallySchema = z.object({ emoji: z.string(), count: z.number().int(), users: z.array(Id) })
export type ReactionTally = z.infer<typeof ReactionTallySchema>

/** One emoji on a message as history answers it to one viewer. */
export const ReactionViewSchema = z.object({ emoji: z.string(), count: z.number().int(), mine: z.boolean() })
export type ReactionView = z.infer<typeof ReactionViewSchema>

/**
 * A message changed, in its conversation's stream. An edit carries `body` and `editedAt`; a
 * deletion `deleted: true`, `deletedBy` and no body; a reaction change the full `reactions` list
 * and `reaction` (who turned which emoji on or off), from which a client keeps its own `mine`.
 */
export const ChatUpdateFrame = z.object({
  type: z.literal('chat.update'),
  conversationId: Id,
  seq: Seq,
  messageId: Id,
  /** Who made the change. */
  by: Id,
  body: z.string().optional(),
  editedAt: z.string().optional(),
  mentions: z.array(Id).optional(),
  mentionsRoom: z.boolean().optional(),
  deleted: z.literal(true).optional(),
  deletedBy: Id.optional(),
  reactions: z.array(ReactionTallySchema).optional(),
  reaction: z.object({ userId: Id, emoji: z.string(), on: z.boolean() }).optional(),
  /** The change's own id, so its sender settles it. */
  changeId: Id.optional(),
  timestamp: z.string()
})
export type ChatUpdate = z.infer<typeof ChatUpdateFrame>

/**
 * To the socket that asked: the change is applied (`seq` of its chat.update) or was already so
 * (`seq: null`, nothing new happened: the same edit or reaction twice, a redelivery).
 */
export const ChangeAckFrame = z.object({
  type: z.literal('change.ack'),
  changeId: Id,
  messageId: Id,
  conversationId: Id,
  seq: Seq.nullable()
})
export type ChangeAck = z.infer<typeof ChangeAckFrame>

export const ChangesClientFrames = [ChatEditFrame, ChatDeleteFrame, ChatReactFrame] as const
export const ChangesServerFrames = [ChatUpdateFrame, ChangeAckFrame] as const

export const MessageParams = z.object({ id: Id })
export const ReactionParams = z.object({ id: Id, emoji: EmojiSchema })
export const EditMessageBody = z.object({ body: MessageBodySchema })
