import { z } from './zod'
import { Id } from './ids'

export const PresenceStatusSchema = z.enum(['online', 'offline'])
export type PresenceStatus = z.infer<typeof PresenceStatusSchema>

export const PresenceSchema = z.object({ status: PresenceStatusSchema, lastSeen: z.string().nullable() })
export type Presence = z.infer<typeof PresenceSchema>

export const PresenceUpdateFrame = z.object({
  type: z.literal('presence.update'),
  userId: Id,
  status: PresenceStatusSchema,
  lastSeen: z.string().nullable()
})
export type PresenceUpdate = z.infer<typeof PresenceUpdateFrame>

/**
 * The room whose members this socket is looking at (null: none). Presence of accepted contacts
 * always comes; a room's members' only while it is watched, so a 1,000-member room costs its
 * viewers what they can see, not every change of every member.
 */
export const PresenceWatchFrame = z.object({ type: z.literal('presence.watch'), conversationId: Id.nullable() })

export const PresenceClientFrames = [PresenceWatchFrame] as const
export const PresenceServerFrames = [PresenceUpdateFrame] as const
