import { createHmac, randomInt } from 'node:crypto'
import { isIP } from 'node:net'
import type { H3Event } from 'h3'
import { Counter } from 'prom-client'
import type { Mail } from './mail/types'
import type { Store } from './store/types'
import { fail } from './http'
import { metrics } from './metrics'
import { hitLimit, throttled } from './throttle'

const MINUTE = 60_000
const HOUR = 3600_000

/** How long an emailed code works. */
export const CODE_TTL_MS = 10 * MINUTE
/** Guesses compared against one code; then it is void, whatever the guesses were. */
export const MAX_WRONG_TRIES = 5
/** Wrong guesses against issued codes, across fresh codes, within FAILURE_WINDOW_MS that lock the address. */
export const LOCK_AFTER_FAILURES = 100
export const FAILURE_WINDOW_MS = 24 * HOUR
export const LOCK_MS = HOUR
/** Code requests per client network and hour, and per address and hour. */
export const REQUESTS_PER_IP_PER_HOUR = 20
export const CODES_PER_ADDRESS_PER_HOUR = 5
/** verify-otp calls per client network: a burst, refilled at a steady rate (a token bucket). */
export const VERIFIES_PER_IP_BURST = 30
export const VERIFIES_PER_IP_PER_HOUR = 60

export interface SignInContext {
  event: H3Event
  store: Store
  secret: string
  ip: string
  /** One code per address per this many ms (default a minute). */
  resendMs?: number
}

const codeKey = (email: string) => `signin-code:${email}`
const failuresKey = (email: string) => `signin-failures:${email}`
const lockKey = (email: string) => `signin-lock:${email}`

const guessesMade = new Counter({
  name: 'natter_signin_guesses_total',
  help: 'Codes tried at verify-otp: right or wrong were compared against a pending code; refused met none (absent, used or void)',
  labelNames: ['result'] as const,
  registers: [metrics]
})

/**
 * What anyone gets for a code that did not sign in, whether it was wrong, expired, replaced, used,
 * void or never asked for: one status, body and set of headers, so that nobody but the mailbox's
 * owner learns whether someone is signing in with that address.
 */
function notSignedIn(): Error {
  return fail(401, 'code_wrong', 'That code is not right, or it is no longer valid. Check the newest mail from Natter, or ask for a new code.')
}

function digest(secret: string, email: string, code: string): string {
  return createHmac('sha256', secret).update(`${email}\n${code}`).digest('base64url')
}

/**
 * What a per-IP limit counts: an IPv4 address, or an IPv6 /64 (one host may use any address in
 * it). Anything else a proxy passed on shares one bucket, so made-up values buy nothing.
 */
export function clientNetwork(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  if (mapped) return mapped[1]!
  const family = isIP(ip)
  if (family === 4) return ip
  if (family !== 6) return 'other'
  const [head = '', tail = ''] = ip.split('%')[0]!.split('::')
  const front = head ? head.split(':') : []
  const back = tail ? tail.split(':') : []
  const groups = ip.includes('::') ? [...front, ...Array<string>(8 - front.length - back.length).fill('0'), ...back] : front
  return `${groups.slice(0, 4).map(group => parseInt(group, 16).toString(16)).join(':')}::/64`
}

async function assertNotLocked({ event, store }: SignInContext, email: string) {
  const locked = await store.ttl(lockKey(email))
  if (locked > 0) throw throttled(event, locked, 'Too many wrong codes for this address. Try again in an hour.', 'locked')
}

/**
 * Issues a fresh code for the address (replacing any earlier one) and returns the mail to send.
 * Throttled per client network and per address (1 a minute, 5 an hour) in the store.
 */
export async function issueCode(context: SignInContext, email: string): Promise<Mail> {
  const { event, store, secret, ip } = context
  const perIp = await hitLimit(store, { key: `otp-ip:${clientNetwork(ip)}`, max: REQUESTS_PER_IP_PER_HOUR, windowMs: HOUR })
  if (!perIp.allowed) throw throttled(event, perIp.retryAfterMs, 'Too many sign-in requests from your network. Try again later.')
  await assertNotLocked(context, email)
  const perMinute = await hitLimit(store, { key: `otp-minute:${email}`, max: 1, windowMs: context.resendMs ?? MINUTE })
  if (!perMinute.allowed) throw throttled(event, perMinute.retryAfterMs, 'A code was just sent. Wait a moment before asking for another.')
  const perHour = await hitLimit(store, { key: `otp-hour:${email}`, max: CODES_PER_ADDRESS_PER_HOUR, windowMs: HOUR })
  if (!perHour.allowed) throw throttled(event, perHour.retryAfterMs, 'Too many codes asked for this address. Try again later.')

  const code = String(randomInt(0, 1_000_000)).padStart(6, '0')
  await store.setSecret(codeKey(email), digest(secret, email, code), CODE_TTL_MS)
  return codeMail(email, code)
}

/**
 * Checks a code and spends it: resolves when it was right, throws the contract's 401 (the same
 * for every code that did not sign in) or 429 (a limit) otherwise. The check, the count of the
 * try and the marking as used or void are one step in the store, so of any number of parallel
 * verifies at most MAX_WRONG_TRIES are compared and at most one signs in. Only a guess compared
 * against an issued code counts towards the lock, and a verify with no code pending writes nothing.
 */
export async function consumeCode(context: SignInContext, email: string, code: string): Promise<void> {
  const { event, store, secret, ip } = context
  const perIp = await store.takeTokens(`throttle:verify-ip:${clientNetwork(ip)}`, VERIFIES_PER_IP_PER_HOUR / 3600, VERIFIES_PER_IP_BURST)
  if (!perIp.allowed) throw throttled(event, perIp.retryAfterMs, 'Too many codes tried from your network. Try again later.')
  await assertNotLocked(context, email)
  const guess = await store.guessSecret(codeKey(email), digest(secret, email, code), {
    maxGuesses: MAX_WRONG_TRIES,
    missesKey: failuresKey(email),
    missesTtlMs: FAILURE_WINDOW_MS
  })
  guessesMade.inc({ result: guess.result === 'right' || guess.result === 'wrong' ? guess.result : 'refused' })
  if (guess.result === 'right') return
  if (guess.misses >= LOCK_AFTER_FAILURES) {
    await store.set(lockKey(email), '1', LOCK_MS)
    await store.delete(failuresKey(email), codeKey(email))
  }
  throw notSignedIn()
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
