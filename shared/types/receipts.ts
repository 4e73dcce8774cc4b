import { z } from './zod'
import { Id, Seq } from './ids'

export const MAX_READ_IDS = 500

/**
 * Version 1 names the messages read; version 2 says "everything up to seq" in one conversation.
 * Exactly one of the two forms.
 */
export const ReadUpdateClientFrame = z.object({
  type: z.literal('read.update'),
  messageIds: z.array(Id).min(1).max(MAX_READ_IDS).optional(),
  conversationId: Id.optional(),
  seq: Seq.optional()
}).refine(
  frame => frame.messageIds !== undefined ? frame.conversationId === undefined && frame.seq === undefined : frame.conversationId !== undefined && frame.seq !== undefined,
  { message: 'Give messageIds, or conversationId and seq.', path: ['conversationId'] }
)
export type ReadUpdateRequest = z.infer<typeof ReadUpdateClientFrame>

/** To the reader's other devices and to the authors of what was read (when both share receipts). */
export const ReadUpdateServerFrame = z.object({
  type: z.literal('read.update'),
  conversationId: Id,
  by: Id,
  seq: Seq,
  messageIds: z.array(Id),
  readAt: z.string()
})
export type ReadUpdate = z.infer<typeof ReadUpdateServerFrame>

export const ReadReceiptBody = z.object({ messageIds: z.array(Id).min(1).max(MAX_READ_IDS) })

export const ReceiptsClientFrames = [ReadUpdateClientFrame] as const
export const ReceiptsServerFrames = [ReadUpdateServerFrame] as const
