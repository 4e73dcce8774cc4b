import { z } from 'zod'
import { Id, Seq } from './ids'
import { ChatMessageSchema } from './messages'
import { PresenceSchema } from './presence'
import { EmailSchema } from './auth'
import { HOSTILE_TEXT } from './text'
import { PublicUserSchema } from './user'

export const MAX_ROOM_MEMBERS = 1000
export const MAX_NAME_CHARS = 80
export const MAX_TOPIC_CHARS = 250

export const RoleSchema = z.enum(['owner', 'admin', 'member'])
export type Role = z.infer<typeof RoleSchema>

export const VisibilitySchema = z.enum(['public', 'private'])

/**
 * Where a direct conversation stands between its two people. `incoming`: they wrote first and I
 * have not accepted; `outgoing`: I did and they have not; `blocked`: I blocked them. Presence,
 * typing and receipts flow only once both have accepted (null).
 */
export const RequestStateSchema = z.enum(['incoming', 'outgoing', 'blocked']).nullable()

/** The other person's read watermark: my messages up to `seq` are read (0 when receipts are off). */
export const ReadMarkSchema = z.object({ seq: Seq, at: z.string().nullable() })
export type ReadMark = z.infer<typeof ReadMarkSchema>

export const ConversationSchema = z.object({
  id: Id,
  kind: z.enum(['direct', 'room']),
  name: z.string().nullable(),
  topic: z.string().nullable(),
  visibility: VisibilitySchema.nullable(),
  memberCount: z.number().int(),
  role: RoleSchema,
  muted: z.boolean(),
  peer: z.object({ user: PublicUserSchema, presence: PresenceSchema, theirRead: ReadMarkSchema }).nullable(),
  lastMessage: ChatMessageSchema.nullable(),
  lastSeq: Seq,
  readSeq: Seq,
  unread: z.number().int(),
  mentions: z.number().int(),
  request: RequestStateSchema,
  /** Rooms: whether any member may add people, not only the owner and admins. */
  membersCanInvite: z.boolean().nullable(),
  /** Rooms: whether `@room` mentions everyone (owners and admins can turn it off). */
  roomMentions: z.boolean().nullable().optional()
})
export type Conversation = z.infer<typeof ConversationSchema>

export const MemberSchema = z.object({
  user: PublicUserSchema,
  role: RoleSchema,
  presence: PresenceSchema,
  /** Their read watermark, when both of us share receipts; else null. */
  readSeq: Seq.nullable()
})
export type Member = z.infer<typeof MemberSchema>

export const ConversationDetailAnswer = z.object({ conversation: ConversationSchema, members: z.array(MemberSchema) })

const RoomName = z.string().trim()
  .refine(value => !HOSTILE_TEXT.test(value), 'The name contains invisible or control characters.')
  .pipe(z.string().min(1, 'Give the room a name.').max(MAX_NAME_CHARS, `A room name is at most ${MAX_NAME_CHARS} characters.`))
const RoomTopic = z.string().trim()
  .refine(value => !HOSTILE_TEXT.test(value), 'The topic contains invisible or control characters.')
  .pipe(z.string().max(MAX_TOPIC_CHARS, `A topic is at most ${MAX_TOPIC_CHARS} characters.`))

export const CreateRoomBody = z.object({
  name: RoomName,
  topic: RoomTopic.optional(),
  visibility: VisibilitySchema,
  members: z.array(EmailSchema).max(100, 'Invite at most 100 people at once.').optional(),
  membersCanInvite: z.boolean().optional()
})
export type CreateRoom = z.infer<typeof CreateRoomBody>

export const UpdateConversationBody = z.object({
  muted: z.boolean().optional(),
  name: RoomName.optional(),
  topic: RoomTopic.optional(),
  membersCanInvite: z.boolean().optional(),
  roomMentions: z.boolean().optional()
}).refine(body => Object.values(body).some(value => value !== undefined), 'Nothing to change.')
export type UpdateConversation = z.infer<typeof UpdateConversationBody>

export const AddMemberBody = z.object({ email: EmailSchema })
export const UpdateMemberBody = z.object({ role: RoleSchema.exclude(['owner']) })
export const MembersQuery = z.object({
  after: Id.optional(),
  limit: z.coerce.number().int().min(1).max(200).default(100)
})
export const RoomsQuery = z.object({ q: z.string().trim().max(MAX_NAME_CHARS).optional() })

export const ConversationIdParams = z.object({ id: Id })
export const MemberParams = z.object({ id: Id, userId: Id })

export const RoomChangeSchema = z.enum(['created', 'joined', 'added', 'left', 'removed', 'renamed', 'role'])
export type RoomChange = z.infer<typeof RoomChangeSchema>

/** A change to a room, in its stream: the timeline shows it ("Alice added Bob"). */
export const RoomUpdateFrame = z.object({
  type: z.literal('room.update'),
  conversationId: Id,
  seq: Seq,
  change: RoomChangeSchema,
  /** The person joined, added, left, removed or given a role. */
  userId: Id.optional(),
  /** Who did it, when it was someone else. */
  by: Id.optional(),
  name: z.string().optional(),
  topic: z.string().optional(),
  role: RoleSchema.optional(),
  /** How the people involved are called, so the timeline needs no look-up. */
  names: z.record(z.string(), z.string()).optional(),
  timestamp: z.string()
})
export type RoomUpdate = z.infer<typeof RoomUpdateFrame>

/** A frame of a conversation's stream, as the events endpoint replays it. */
export const EventsQuery = z.object({
  after: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(500).default(200)
})

export const ConversationsServerFrames = [RoomUpdateFrame] as const

export const RoomListing = z.object({ conversation: ConversationSchema, joined: z.boolean() })
