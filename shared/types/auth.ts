import { z } from 'zod'

// Characters that make one address look like another, or hide text: refused, never stripped.
const HOSTILE = /[\p{Cc}\p{Cf}\u2028\u2029]/u

/** An email address as people type it: trimmed, NFKC-normalised, lowercased, at most 254 characters. */
export const EmailSchema = z
  .string({ error: 'Enter your email address.' })
  .trim()
  .refine(value => !HOSTILE.test(value), 'The address contains invisible or control characters.')
  .transform(value => value.normalize('NFKC').toLowerCase())
  .pipe(
    z.string()
      .min(1, 'Enter your email address.')
      .max(254, 'That address is too long.')
      .regex(/^[^\s@]{1,64}@[^\s@.]+(\.[^\s@.]+)+$/, 'That does not look like an email address.')
  )

export const OtpSchema = z
  .string({ error: 'Enter the 6-digit code.' })
  .transform(value => value.replace(/\s+/g, ''))
  .pipe(z.string().regex(/^\d{6}$/, 'The code is 6 digits.'))

export const RequestOtpBody = z.object({ email: EmailSchema })
export const VerifyOtpBody = z.object({ email: EmailSchema, otp: OtpSchema })

export const DisplayNameSchema = z
  .string({ error: 'Enter a name.' })
  .trim()
  .refine(value => !HOSTILE.test(value), 'The name contains invisible or control characters.')
  .pipe(z.string().min(1, 'Enter a name.').max(64, 'At most 64 characters.'))

export const UpdateMeBody = z.object({
  displayName: DisplayNameSchema.optional(),
  readReceipts: z.boolean().optional()
}).refine(body => body.displayName !== undefined || body.readReceipts !== undefined, 'Nothing to change.')

export type RequestOtp = z.infer<typeof RequestOtpBody>
export type VerifyOtp = z.infer<typeof VerifyOtpBody>
export type UpdateMe = z.infer<typeof UpdateMeBody>
