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

export const OpenContactBody = z.object({ email: EmailSchema })
export const ContactParams = z.object({ userId: z.uuid() })
