import { z } from './zod'
import { ChangesClientFrames, ChangesServerFrames } from './changes'
import { ContactsServerFrames } from './contacts'
import { ConversationsServerFrames } from './conversations'
import { MessagesClientFrames, MessagesServerFrames } from './messages'
import { PresenceClientFrames, PresenceServerFrames } from './presence'
import { ReceiptsClientFrames, ReceiptsServerFrames } from './receipts'
import { TypingClientFrames, TypingServerFrames } from './typing'

/**
 * The WebSocket protocol, assembled from each feature's frames: a feature adds its schemas to
 * its own file and one entry here. Everything else (the frame-type lists, the TypeScript types,
 * both sides' registries) is derived from these two unions.
 */
export const PingFrame = z.object({ type: z.literal('ping') })
export const PongFrame = z.object({ type: z.literal('pong') })

export const SocketErrorCodeSchema = z.enum([
  'frame_too_large', 'invalid_json', 'unknown_type', 'invalid_frame', 'not_a_contact', 'not_found',
  'forbidden', 'blocked', 'duplicate_client_id', 'rate_limited', 'unavailable', 'internal',
  'gone', 'too_many_reactions', 'invalid_reply'
])
export type SocketErrorCode = z.infer<typeof SocketErrorCodeSchema>

export const ErrorFrame = z.object({
  type: z.literal('error'),
  code: SocketErrorCodeSchema,
  message: z.string(),
  /** The clientId of the frame it answers; for a message change its changeId, else its messageId. */
  ref: z.string().optional(),
  /** For rate_limited: when the same frame would be taken. */
  retryAfterMs: z.number().int().optional()
})
export type ErrorFrameData = z.infer<typeof ErrorFrame>

export const ClientFrameSchema = z.discriminatedUnion('type', [
  ...MessagesClientFrames,
  ...ChangesClientFrames,
  ...TypingClientFrames,
  ...ReceiptsClientFrames,
  ...PresenceClientFrames,
  PingFrame
])
export type ClientFrame = z.infer<typeof ClientFrameSchema>
export type ClientFrameType = ClientFrame['type']
export type ClientFrameOf<T extends ClientFrameType> = Extract<ClientFrame, { type: T }>

export const ServerFrameSchema = z.discriminatedUnion('type', [
  ...MessagesServerFrames,
  ...ChangesServerFrames,
  ...ConversationsServerFrames,
  ...ContactsServerFrames,
  ...TypingServerFrames,
  ...ReceiptsServerFrames,
  ...PresenceServerFrames,
  PongFrame,
  ErrorFrame
])
export type ServerFrame = z.infer<typeof ServerFrameSchema>
export type ServerFrameType = ServerFrame['type']
export type ServerFrameOf<T extends ServerFrameType> = Extract<ServerFrame, { type: T }>

/**
 * The frames that are a conversation's stream: each has the conversation's next seq, and a client
 * applies them in seq order (replaying the missing ones from the events endpoint).
 */
export const STREAM_FRAME_TYPES = ['chat.receive', 'chat.update', 'room.update'] as const satisfies ServerFrameType[]
export type StreamFrame = ServerFrameOf<typeof STREAM_FRAME_TYPES[number]>

export const CLIENT_FRAME_TYPES = ClientFrameSchema.options.map(option => option.shape.type.value) as ClientFrameType[]
export const SERVER_FRAME_TYPES = ServerFrameSchema.options.map(option => option.shape.type.value) as ServerFrameType[]
