import { createHmac, randomBytes, randomInt, timingSafeEqual } from 'node:crypto'
import type { H3Event } from 'h3'
import type { Mail } from './mail/types'
import type { Store } from './store/types'
import { fail } from './http'
import { hitLimit, throttled } from './throttle'

export const CODE_TTL_MS = 10 * 60_000
export const MAX_WRONG_TRIES = 5
export const LOCK_AFTER_FAILURES = 100
export const LOCK_MS = 3600_000
const HOUR = 3600_000

interface PendingCode {
  id: string
  hmac: string
  state: 'pending' | 'used' | 'void'
}

export interface SignInContext {
  event: H3Event
  store: Store
  secret: string
  ip: string
  /** One code per address per this many ms (default a minute). */
  resendMs?: number
}

const codeKey = (email: string) => `otp:${email}`
const failuresKey = (email: string) => `signin-failures:${email}`
const lockKey = (email: string) => `signin-lock:${email}`

function digest(secret: string, email: string, code: string): string {
  return createHmac('sha256', secret).update(`${email}\n${code}`).digest('base64url')
}

async function assertNotLocked({ event, store }: SignInContext, email: string) {
  const locked = await store.ttl(lockKey(email))
  if (locked > 0) throw throttled(event, locked, 'Too many wrong codes for this address. Try again in an hour.', 'locked')
}

/**
 * Issues a fresh code for the address (replacing any earlier one) and returns the mail to send.
 * Throttled per IP (20/hour) and per address (1/minute, 5/hour) in the store.
 */
export async function issueCode(context: SignInContext, email: string): Promise<Mail> {
  const { event, store, secret, ip } = context
  const perIp = await hitLimit(store, { key: `otp-ip:${ip}`, max: 20, windowMs: HOUR })
  if (!perIp.allowed) throw throttled(event, perIp.retryAfterMs, 'Too many sign-in requests from your network. Try again later.')
  await assertNotLocked(context, email)
  const perMinute = await hitLimit(store, { key: `otp-minute:${email}`, max: 1, windowMs: context.resendMs ?? 60_000 })
  if (!perMinute.allowed) throw throttled(event, perMinute.retryAfterMs, 'A code was just sent. Wait a moment before asking for another.')
  const perHour = await hitLimit(store, { key: `otp-hour:${email}`, max: 5, windowMs: HOUR })
  if (!perHour.allowed) throw throttled(event, perHour.retryAfterMs, 'Too many codes asked for this address. Try again later.')

  const code = String(randomInt(0, 1_000_000)).padStart(6, '0')
  const pending: PendingCode = { id: randomBytes(12).toString('base64url'), hmac: digest(secret, email, code), state: 'pending' }
  await store.set(codeKey(email), JSON.stringify(pending), CODE_TTL_MS)
  return codeMail(email, code)
}

/**
 * Checks a code and consumes it atomically: of two parallel correct verifies, one wins.
 * Resolves when the code was right; throws the contract's 401/429 otherwise.
 */
export async function consumeCode(context: SignInContext, email: string, code: string): Promise<void> {
  const { event, store, secret } = context
  await assertNotLocked(context, email)
  const raw = await store.get(codeKey(email))
  if (!raw) {
    await countFailure(context, email)
    throw fail(401, 'code_expired', 'That code has expired. Ask for a new one.')
  }
  const pending = JSON.parse(raw) as PendingCode
  if (pending.state === 'used') throw fail(401, 'code_used', 'That code was already used. Ask for a new one.')
  if (pending.state === 'void') {
    throw throttled(event, Math.max(1000, await store.ttl(codeKey(email))), 'Too many wrong tries for this code. Ask for a new one.', 'code_void')
  }

  const given = Buffer.from(digest(secret, email, code))
  if (!timingSafeEqual(given, Buffer.from(pending.hmac))) {
    const tries = await store.increment(`otp-tries:${pending.id}`, CODE_TTL_MS)
    await countFailure(context, email)
    if (tries >= MAX_WRONG_TRIES) await replaceState(store, email, raw, { ...pending, state: 'void' })
    const triesLeft = Math.max(0, MAX_WRONG_TRIES - tries)
    throw fail(401, 'code_wrong', triesLeft ? `That code is not right. ${triesLeft} ${triesLeft === 1 ? 'try' : 'tries'} left.` : 'That code is not right, and it is now void. Ask for a new one.', { triesLeft })
  }

  // One atomic swap to the "used" state: of parallel correct verifies exactly one sees the
  // pending record, and every other one sees "used" (a replay after it, too).
  const previous = await store.swap(codeKey(email), JSON.stringify({ ...pending, state: 'used' }))
  if (previous === null) throw fail(401, 'code_expired', 'That code has expired. Ask for a new one.')
  if (previous !== raw) {
    const other = JSON.parse(previous) as PendingCode
    // A newer code arrived in between: put it back, it is not ours to spend.
    if (other.id !== pending.id) await store.set(codeKey(email), previous, CODE_TTL_MS)
    throw fail(401, 'code_used', 'That code was already used. Ask for a new one.')
  }
  await store.delete(failuresKey(email), `otp-tries:${pending.id}`)
}

async function replaceState(store: Store, email: string, current: string, next: PendingCode) {
  const left = await store.ttl(codeKey(email))
  if (left <= 0) return
  // Only if the record is still the one we read: a newer code must not be voided by an old one.
  if ((await store.get(codeKey(email))) === current) await store.set(codeKey(email), JSON.stringify(next), left)
}

/** Consecutive failures survive fresh codes; at 100 the address is locked for an hour. */
async function countFailure({ store }: SignInContext, email: string) {
  const failures = await store.increment(failuresKey(email), 24 * HOUR)
  if (failures >= LOCK_AFTER_FAILURES) {
    await store.set(lockKey(email), '1', LOCK_MS)
    await store.delete(failuresKey(email), codeKey(email))
  }
}

function codeMail(email: string, code: string): Mail {
  const minutes = CODE_TTL_MS / 60_000
  return {
    to: email,
    subject: `${code} is your Natter sign-in code`,
    text: `Your Natter sign-in code is ${code}.\n\nIt expires in ${minutes} minutes and works once. If you did not ask for it, you can ignore this mail.\n`,
    html: `<p>Your Natter sign-in code is</p><p style="font-size:28px;font-weight:600;letter-spacing:4px">${code}</p>`
      + `<p>It expires in ${minutes} minutes and works once. If you did not ask for it, you can ignore this mail.</p>`
  }
}
