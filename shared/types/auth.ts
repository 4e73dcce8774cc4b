import { z } from './zod'

// Characters that make one address look like another, or hide text: refused, never stripped.
const HOSTILE = /[\p{Cc}\p{Cf}\u2028\u2029]/u

// The one address form Natter accepts, so that the address that signs in is exactly the mailbox
// the code goes to: no mail header or SMTP parser can read anything else out of it.
// Local part: an RFC 5322 dot-atom (letters, digits and !#$%&'*+/=?^_`{|}~- in runs joined by
// single dots; no quotes, comments, commas, colons, semicolons, angle brackets or spaces).
const LOCAL_PART = /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/i
// Domain: at least two LDH labels (letters, digits, inner hyphens, 1-63 each), the last not all digits.
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i
// What an internationalised domain may contain before it is converted to punycode.
const UNICODE_DOMAIN = /^[\p{L}\p{M}\p{N}.-]+$/u
const INVALID_ADDRESS = 'Use a plain address like ada@example.org: no name, quotes, brackets, commas or spaces.'

/**
 * The address in Natter's one accepted form, internationalised domains converted to punycode
 * ("ada@bücher.example" becomes "ada@xn--bcher-kva.example"); null when it has another form.
 */
export function plainAddress(value: string): string | null {
  const at = value.lastIndexOf('@')
  const local = value.slice(0, at)
  let domain = value.slice(at + 1)
  if (at < 1 || local.length > 64 || !LOCAL_PART.test(local)) return null
  // Unicode labels become punycode; ASCII labels (punycode ones too) are taken as written.
  if (/[^\x20-\x7e]/.test(domain)) {
    if (!UNICODE_DOMAIN.test(domain)) return null
    try {
      // The WHATWG URL host parser applies IDNA (UTS #46) the same way in Node and in browsers.
      domain = new URL(`http://${domain}/`).hostname
    }
    catch {
      return null
    }
  }
  const labels = domain.split('.')
  if (labels.length < 2 || domain.length > 253 || !labels.every(label => LABEL.test(label)) || /^\d+$/.test(labels.at(-1)!)) return null
  const address = `${local}@${domain}`
  return address.length <= 254 ? address : null
}

/** True when the address is already in Natter's one form: what a mailer may hand to SMTP as is. */
export function isPlainAddress(value: string): boolean {
  return plainAddress(value) === value
}

/**
 * An email address as people type it: trimmed, NFKC-normalised, lowercased, then held to
 * {@link plainAddress}'s one form (at most 254 characters).
 */
export const EmailSchema = z
  .string({ error: 'Enter your email address.' })
  .trim()
  .refine(value => !HOSTILE.test(value), 'The address contains invisible or control characters.')
  .transform(value => value.normalize('NFKC').toLowerCase())
  .pipe(
    z.string()
      .min(1, 'Enter your email address.')
      .max(254, 'That address is too long.')
      .regex(/^[^@]+@[^@]+$/, 'That does not look like an email address.')
  )
  .transform((value, context) => {
    const address = plainAddress(value)
    if (address) return address
    context.issues.push({ code: 'custom', message: INVALID_ADDRESS, input: value })
    return z.NEVER
  })

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
