import { z } from './zod'
import { EmailSchema } from './auth'
import { ChatMessageSchema } from './messages'
import { PresenceSchema } from './presence'
import { ReadMarkSchema, RequestStateSchema } from './conversations'
import { PublicUserSchema } from './user'

/** Version 1's view of a direct conversation: the other person first. */
export const ContactSchema = z.object({
  user: PublicUserSchema,
  conversationId: z.uuid(),
  presence: PresenceSchema,
  lastMessage: ChatMessageSchema.nullable(),
  unread: z.number().int(),
  theirRead: ReadMarkSchema,
  request: RequestStateSchema
})
export type Contact = z.infer<typeof ContactSchema>

/**
 * To the person someone added: a request waits in their list (GET /api/conversations has the row).
 * Without it they learnt of being added only with a first message.
 */
export const ContactRequestFrame = z.object({
  type: z.literal('contact.request'),
  conversationId: z.uuid(),
  from: PublicUserSchema
})
export type ContactRequest = z.infer<typeof ContactRequestFrame>

export const ContactsServerFrames = [ContactRequestFrame] as const

export const OpenContactBody = z.object({ email: EmailSchema })
export const ContactParams = z.object({ userId: z.uuid() })
