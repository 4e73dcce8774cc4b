import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, randomInt } from 'node:crypto'
import type { H3Event } from 'h3'
import { sql, type Kysely } from 'kysely'
import { Secret, TOTP } from 'otpauth'
import QRCode from 'qrcode'
import type { Database } from '../../database/schema'
import type { Store } from '../store/types'
import { fail } from '../http'
import { clientNetwork, VERIFIES_PER_IP_BURST, VERIFIES_PER_IP_PER_HOUR } from '../sign-in'
import { hitLimit, throttled } from '../throttle'

const MINUTE = 60_000
/** A code's step: what authenticator apps use. */
const PERIOD_SECONDS = 30
/** Codes of the step before and after count too: the phone's clock may be off by that much. */
const WINDOW = 1
/** Recovery codes made when the second factor is turned on; each works once. */
export const RECOVERY_CODES = 10
/** How long the step between the emailed code and the app's code may take. */
export const PENDING_SIGN_IN_MS = 5 * MINUTE
/** Codes one pending sign-in may try before it is void (the person starts again with an email code). */
export const TRIES_PER_PENDING_SIGN_IN = 5
/** Codes one person may try (sign-in, confirm, turn off) in a window, whatever the browser or network. */
export const TRIES_PER_PERSON = 10
export const TRIES_WINDOW_MS = 15 * MINUTE

export const PENDING_COOKIE = 'natter_totp'

/**
 * The key the app secrets are encrypted with at rest, derived from the server secret
 * (NATTER_SESSION_SECRET): a database dump alone gives nobody anyone's second factor. Changing
 * the server secret makes the stored app secrets unreadable: everyone turns it on again.
 */
function secretKey(serverSecret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', serverSecret, 'natter', 'totp-secret', 32))
}

export function sealSecret(serverSecret: string, base32: string): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', secretKey(serverSecret), iv)
  const sealed = Buffer.concat([cipher.update(base32, 'utf8'), cipher.final()])
  return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), sealed.toString('base64url')].join('.')
}

export function openSecret(serverSecret: string, stored: string): string {
  const [version, iv, tag, sealed] = stored.split('.')
  if (version !== 'v1' || !iv || !tag || !sealed) throw new Error('totp: a stored secret of an unknown form')
  const decipher = createDecipheriv('aes-256-gcm', secretKey(serverSecret), Buffer.from(iv, 'base64url'))
  decipher.setAuthTag(Buffer.from(tag, 'base64url'))
  return Buffer.concat([decipher.update(Buffer.from(sealed, 'base64url')), decipher.final()]).toString('utf8')
}

const totpOf = (base32: string, label = 'Natter') => new TOTP({
  issuer: 'Natter', label, algorithm: 'SHA1', digits: 6, period: PERIOD_SECONDS, secret: Secret.fromBase32(base32)
})

/** The step of a right code (within the window), or undefined for a wrong one. */
export function matchingStep(base32: string, code: string, now = Date.now()): number | undefined {
  const delta = totpOf(base32).validate({ token: code, timestamp: now, window: WINDOW })
  return delta === null ? undefined : Math.floor(now / 1000 / PERIOD_SECONDS) + delta
}

// Recovery codes are stored as keyed hashes: the database alone cannot tell or test them.
const recoveryDigest = (serverSecret: string, userId: string, code: string) =>
  createHmac('sha256', serverSecret).update(`recovery\n${userId}\n${normalRecoveryCode(code)}`).digest('base64url')
const normalRecoveryCode = (code: string) => code.toLowerCase().replace(/[^a-z0-9]/g, '')
// No 0/o, 1/l/i: read off paper and typed in again.
const RECOVERY_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789'
const recoveryCode = () => {
  const chars = Array.from({ length: 10 }, () => RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)]).join('')
  return `${chars.slice(0, 5)}-${chars.slice(5)}`
}

export interface SecondFactorContext {
  event: H3Event
  db: Kysely<Database>
  store: Store
  serverSecret: string
  ip: string
}

/** Whether the person has the second factor on (confirmed); a pending one is not on. */
export async function secondFactorOn(db: Kysely<Database>, userId: string): Promise<boolean> {
  const row = await db.selectFrom('user_totp').select('enabled_at').where('user_id', '=', userId).executeTakeFirst()
  return !!row?.enabled_at
}

/**
 * A fresh app secret for the person, pending until they confirm a code from it: what to scan.
 * Refused while one is on (turn it off first: a second POST must not silently replace it).
 */
export async function beginSecondFactor({ db, serverSecret }: SecondFactorContext, user: { id: string, email: string }) {
  if (await secondFactorOn(db, user.id)) throw fail(409, 'conflict', 'Two-step sign-in is on already. Turn it off first to set up another app.')
  const secret = new Secret({ size: 20 }).base32
  const sealed = sealSecret(serverSecret, secret)
  await db.insertInto('user_totp').values({ user_id: user.id, secret: sealed })
    .onConflict(conflict => conflict.column('user_id').doUpdateSet({ secret: sealed, created_at: new Date(), enabled_at: null, last_step: null }))
    .execute()
  const otpauthUrl = totpOf(secret, user.email).toString()
  const svg = await QRCode.toString(otpauthUrl, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 })
  return { secret, otpauthUrl, qr: `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}` }
}

/** Turns a pending second factor on with a code from the app; answers the recovery codes, the only time they are shown. */
export async function confirmSecondFactor(context: SecondFactorContext, userId: string, code: string): Promise<string[]> {
  const { db, serverSecret } = context
  const row = await db.selectFrom('user_totp').selectAll().where('user_id', '=', userId).executeTakeFirst()
  if (!row) throw fail(404, 'not_found', 'Start setting up two-step sign-in first.')
  if (row.enabled_at) throw fail(409, 'conflict', 'Two-step sign-in is on already.')
  await checkAppCode(context, userId, openSecret(serverSecret, row.secret), code, row.last_step)
  const codes = Array.from({ length: RECOVERY_CODES }, recoveryCode)
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('totp_recovery_codes').where('user_id', '=', userId).execute()
    await trx.insertInto('totp_recovery_codes').values(codes.map(code => ({ user_id: userId, code_hash: recoveryDigest(serverSecret, userId, code) }))).execute()
    await trx.updateTable('user_totp').set({ enabled_at: new Date() }).where('user_id', '=', userId).execute()
  })
  return codes
}

/** Turns the second factor off with a code from the app or a recovery code. */
export async function removeSecondFactor(context: SecondFactorContext, userId: string, code: string): Promise<void> {
  await checkSecondFactor(context, userId, code)
  await context.db.deleteFrom('user_totp').where('user_id', '=', userId).execute()
  await context.db.deleteFrom('totp_recovery_codes').where('user_id', '=', userId).execute()
}

/**
 * Checks a code from the app, or a recovery code, of a person whose second factor is on, and
 * spends it; throws the 401 (wrong, used or replayed alike) or a 429.
 */
export async function checkSecondFactor(context: SecondFactorContext, userId: string, code: string): Promise<void> {
  const { db, serverSecret } = context
  const row = await db.selectFrom('user_totp').selectAll().where('user_id', '=', userId).executeTakeFirst()
  if (!row?.enabled_at) throw fail(404, 'not_found', 'Two-step sign-in is not on.')
  if (/^\d{6}$/.test(code)) return checkAppCode(context, userId, openSecret(serverSecret, row.secret), code, row.last_step)
  await spendTry(context, userId)
  // One update: of two requests racing with one recovery code, exactly one finds it unused.
  const spent = await db.updateTable('totp_recovery_codes').set({ used_at: new Date() })
    .where('user_id', '=', userId).where('code_hash', '=', recoveryDigest(serverSecret, userId, code)).where('used_at', 'is', null)
    .executeTakeFirst()
  if (Number(spent.numUpdatedRows) !== 1) throw codeWrong()
}

/**
 * A code from the app, each step's code once: the step is claimed in the store (one caller wins,
 * on every instance), and a code of a step at or before the last one used is refused, so a code
 * seen over someone's shoulder is worth nothing once its owner has used it or a later one.
 */
async function checkAppCode(context: SecondFactorContext, userId: string, base32: string, code: string, lastInDatabase: number | null): Promise<void> {
  const { store } = context
  await spendTry(context, userId)
  const step = matchingStep(base32, code)
  if (step === undefined) throw codeWrong()
  const lastKey = `totp-last-step:${userId}`
  const last = await store.get(lastKey)
  // The database's copy covers a store that was emptied (a restart of the in-process one).
  if ((last !== null && Number(last) >= step) || (lastInDatabase !== null && Number(lastInDatabase) >= step)) throw codeWrong()
  const claimed = await store.setIfAbsent(`totp-step:${userId}:${step}`, '1', (2 * WINDOW + 2) * PERIOD_SECONDS * 1000)
  if (!claimed) throw codeWrong()
  // The last step is only ever raised: a code for an earlier step claimed in a race changes nothing here.
  if (last === null || Number(last) < step) await store.set(lastKey, String(step), (2 * WINDOW + 2) * PERIOD_SECONDS * 1000)
  await context.db.updateTable('user_totp').set({ last_step: sql<number>`greatest(coalesce(last_step, 0), ${step})` }).where('user_id', '=', userId).execute()
}

/** Every code tried counts, per network (a token bucket, as for email codes) and per person. */
async function spendTry({ event, store, ip }: SecondFactorContext, userId: string) {
  const perIp = await store.takeTokens(`throttle:totp-ip:${clientNetwork(ip)}`, VERIFIES_PER_IP_PER_HOUR / 3600, VERIFIES_PER_IP_BURST)
  if (!perIp.allowed) throw throttled(event, perIp.retryAfterMs, 'Too many codes tried from your network. Try again later.')
  const perPerson = await hitLimit(store, { key: `totp-person:${userId}`, max: TRIES_PER_PERSON, windowMs: TRIES_WINDOW_MS })
  if (!perPerson.allowed) throw throttled(event, perPerson.retryAfterMs, 'Too many codes tried. Wait a few minutes, then try again.')
}

function codeWrong(): Error {
  return fail(401, 'code_wrong', 'That code is not right, or it was used already. Enter the newest code from your authenticator app, or a recovery code.')
}

// The pending sign-in: the emailed code was right, the app's code is still to come.
const pendingKey = (token: string) => `totp-pending:${createHash('sha256').update(token).digest('base64url')}`

export interface PendingSignIn {
  userId: string
  firstSignIn: boolean
}

/** After a right emailed code for someone with the second factor on: a marker bound to this browser's cookie. */
export async function startPendingSignIn(store: Store, pending: PendingSignIn): Promise<string> {
  const token = randomBytes(32).toString('base64url')
  await store.set(pendingKey(token), JSON.stringify(pending), PENDING_SIGN_IN_MS)
  return token
}

/**
 * Finishes a pending sign-in with a code: answers who signs in, once. Wrong codes count against
 * the marker; at TRIES_PER_PENDING_SIGN_IN it is void and the person starts again with an email code.
 */
export async function finishPendingSignIn(context: SecondFactorContext, token: string | undefined, code: string): Promise<PendingSignIn> {
  const { store } = context
  const raw = token ? await store.get(pendingKey(token)) : null
  if (!token || !raw || raw === 'used') throw noPendingSignIn()
  const pending = JSON.parse(raw) as PendingSignIn
  try {
    await checkSecondFactor(context, pending.userId, code)
  }
  catch (error) {
    if ((error as { statusCode?: number }).statusCode === 401) {
      const tries = await store.increment(`${pendingKey(token)}:tries`, PENDING_SIGN_IN_MS)
      if (tries >= TRIES_PER_PENDING_SIGN_IN) await store.delete(pendingKey(token))
    }
    throw error
  }
  // Of two right codes racing on one marker, one signs in.
  const before = await store.swap(pendingKey(token), 'used')
  if (!before || before === 'used') throw noPendingSignIn()
  return pending
}

function noPendingSignIn(): Error {
  return fail(401, 'unauthenticated', 'This sign-in has expired or was finished. Start again with your email address.')
}
