import { z } from 'zod'

export const UserSchema = z.object({
  id: z.uuid(),
  email: z.string(),
  displayName: z.string(),
  createdAt: z.string(),
  lastSeenAt: z.string().nullable(),
  readReceipts: z.boolean()
})

export type User = z.infer<typeof UserSchema>

/** What another person sees of someone: the address only where they typed it (a direct contact). */
export const PublicUserSchema = z.object({
  id: z.uuid(),
  displayName: z.string(),
  email: z.string().optional()
})
export type PublicUser = z.infer<typeof PublicUserSchema>

/** Error codes a client can act on; `message` is for people, `data.code` for programs. */
export type ErrorCode
  = | 'invalid_json' | 'invalid_body' | 'body_too_large' | 'bad_request' | 'request_timeout' | 'headers_too_large'
    | 'csrf_failed' | 'foreign_origin' | 'unauthenticated' | 'throttled' | 'locked' | 'code_wrong'
    | 'not_found' | 'not_ready' | 'forbidden' | 'unavailable' | 'method_not_allowed' | 'internal'
    | 'conflict' | 'room_full' | 'blocked' | 'gone' | 'too_many_reactions' | 'invalid_reply'
