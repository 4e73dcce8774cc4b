import { z } from './zod'
import { EmailSchema } from './auth'

/** One signed-in device of mine, as `GET /api/me/sessions` lists it. */
export const DeviceSchema = z.object({
  /** Not the session's secret nor its store key: only what `DELETE /api/me/sessions/{id}` takes. */
  id: z.string(),
  /** "Firefox on Linux", from the user agent at sign-in. */
  device: z.string(),
  /** The client address at sign-in. */
  address: z.string().nullable(),
  createdAt: z.string(),
  /** Updated at most once a minute, by requests with this session. */
  lastActiveAt: z.string(),
  /** The session of the request that asked. */
  current: z.boolean()
})
export type Device = z.infer<typeof DeviceSchema>

export const DevicesAnswer = z.object({ sessions: z.array(DeviceSchema) })
export type DevicesAnswer = z.infer<typeof DevicesAnswer>

export const DeviceParams = z.object({ id: z.string().regex(/^[\w-]{22}$/, 'Not a device id.') })

/** `DELETE /api/me`: my own address, typed again, so no stray click erases an account. */
export const DeleteMeBody = z.object({ email: EmailSchema })
