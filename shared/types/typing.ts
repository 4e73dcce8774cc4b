import { z } from './zod'
import { Id } from './ids'

/** `to` (a person, version 1) or `conversationId`: exactly one. */
const oneTarget = (frame: { to?: string, conversationId?: string }) => (frame.to === undefined) !== (frame.conversationId === undefined)
const ONE_TARGET = { message: 'Give either to or conversationId.', path: ['conversationId'] }

export const TypingStartFrame = z.object({ type: z.literal('typing.start'), to: Id.optional(), conversationId: Id.optional() }).refine(oneTarget, ONE_TARGET)
export const TypingStopFrame = z.object({ type: z.literal('typing.stop'), to: Id.optional(), conversationId: Id.optional() }).refine(oneTarget, ONE_TARGET)
export type TypingChange = z.infer<typeof TypingStartFrame> | z.infer<typeof TypingStopFrame>

export const TypingUpdateFrame = z.object({
  type: z.literal('typing.update'),
  conversationId: Id,
  from: Id,
  typing: z.boolean()
})
export type TypingUpdate = z.infer<typeof TypingUpdateFrame>

export const TypingClientFrames = [TypingStartFrame, TypingStopFrame] as const
export const TypingServerFrames = [TypingUpdateFrame] as const
