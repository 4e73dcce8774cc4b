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

/**
 * A code for the second factor: 6 digits from the authenticator app ("123 456" is fine), or one of
 * the recovery codes ("abcde-fghjk"; case, spaces and the dash do not matter).
 */
export const SecondFactorCodeSchema = z
  .string({ error: 'Enter the code from your authenticator app.' })
  .max(32, 'That is not a code from your app nor a recovery code.')
  .transform(value => value.replace(/\s+/g, ''))
  .pipe(z.string().regex(/^(?:\d{6}|[a-z0-9]{5}-?[a-z0-9]{5})$/i, 'Enter the 6 digits from your app, or a recovery code.'))

export const SecondFactorCodeBody = z.object({ code: SecondFactorCodeSchema })
/** Confirming a new app takes a code from that app only. */
export const ConfirmSecondFactorBody = z.object({ code: z.string().transform(value => value.replace(/\s+/g, '')).pipe(z.string().regex(/^\d{6}$/, 'Enter the 6 digits from your app.')) })

/** `POST /api/me/totp`: what to put in the authenticator app; pending until confirmed. */
export const SecondFactorSetup = z.object({ secret: z.string(), otpauthUrl: z.string(), qr: z.string() })
export type SecondFactorSetup = z.infer<typeof SecondFactorSetup>
