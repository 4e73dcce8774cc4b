import { createHash, randomBytes } from 'node:crypto'
import type { Store } from './store/types'

export const SESSION_COOKIE = 'natter_session'
export const SESSION_IDLE_MS = 7 * 24 * 3600_000
export const SESSION_ABSOLUTE_MS = 30 * 24 * 3600_000
// Sliding the idle timeout on every request would write to the store on every request.
const TOUCH_EVERY_MS = 60_000
export const SESSION_REVOKED_CHANNEL = 'session.revoked'
/** Signed-in devices one person keeps; signing in on one more ends the oldest. */
export const MAX_SESSIONS_PER_PERSON = 50

export interface Session {
  /** sha256 of the cookie value: what the store keeps, and how sockets know their session. */
  id: string
  userId: string
  createdAt: number
  lastUsedAt: number
  /** What the devices list shows: the browser and system, from the user agent at sign-in. */
  device?: string
  /** The client address at sign-in (behind a trusted proxy, the one it passed on). */
  address?: string
}

/** Where a sign-in came from, as the devices list shows it. */
export interface SignInOrigin {
  userAgent?: string
  address?: string
}

const hash = (token: string) => createHash('sha256').update(token).digest('base64url')
const keyOf = (id: string) => `session:${id}`
// Each person's session ids scored by their start: the devices list, and the bound on it.
const indexOf = (userId: string) => `sessions-of:${userId}`
/** The id the devices list shows and takes back: not the store's key, so it can name nothing else. */
export const deviceIdOf = (session: Session) => hash(`device\n${session.id}`).slice(0, 22)

/** A fresh 256-bit token for the cookie; only its hash is stored, so a store leak signs nobody in. */
export async function createSession(store: Store, userId: string, now = Date.now(), origin: SignInOrigin = {}): Promise<{ token: string, session: Session }> {
  const token = randomBytes(32).toString('base64url')
  const session: Session = {
    id: hash(token),
    userId,
    createdAt: now,
    lastUsedAt: now,
    ...(origin.userAgent !== undefined && { device: deviceName(origin.userAgent) }),
    ...(origin.address !== undefined && { address: origin.address.slice(0, 64) })
  }
  await store.set(keyOf(session.id), JSON.stringify(session), SESSION_IDLE_MS)
  await store.scoreAdd(indexOf(userId), session.id, now)
  // The index lives as long as its newest session can.
  await store.expire(indexOf(userId), SESSION_ABSOLUTE_MS)
  const ids = await store.scoreRange(indexOf(userId), 0, Number.MAX_SAFE_INTEGER, 2 * MAX_SESSIONS_PER_PERSON)
  for (const id of ids.slice(0, Math.max(0, ids.length - MAX_SESSIONS_PER_PERSON))) await endSession(store, { id, userId })
  return { token, session }
}

/**
 * The person's live sessions, most recently active first. Ids whose session has expired are
 * dropped from the index here: a session ends by expiry without anyone being told.
 */
export async function listSessions(store: Store, userId: string, now = Date.now()): Promise<Session[]> {
  const ids = await store.scoreRange(indexOf(userId), 0, Number.MAX_SAFE_INTEGER, 2 * MAX_SESSIONS_PER_PERSON)
  const sessions: Session[] = []
  for (const id of ids) {
    const raw = await store.get(keyOf(id))
    const session = raw ? JSON.parse(raw) as Session : undefined
    if (session && !expired(session, now)) sessions.push(session)
    else await store.scoreRemove(indexOf(userId), id)
  }
  return sessions.sort((a, b) => b.lastUsedAt - a.lastUsedAt)
}

const expired = (session: Session, now: number) => now - session.createdAt > SESSION_ABSOLUTE_MS || now - session.lastUsedAt > SESSION_IDLE_MS

/** The live session behind a cookie value, sliding its idle timeout; undefined when gone or too old. */
export async function readSession(store: Store, token: string | undefined, now = Date.now()): Promise<Session | undefined> {
  if (!token || token.length > 100) return undefined
  const id = hash(token)
  const raw = await store.get(keyOf(id))
  if (!raw) return undefined
  const session = JSON.parse(raw) as Session
  if (expired(session, now)) {
    await store.delete(keyOf(id))
    await store.scoreRemove(indexOf(session.userId), id)
    return undefined
  }
  if (now - session.lastUsedAt > TOUCH_EVERY_MS) {
    session.lastUsedAt = now
    const ttl = Math.min(SESSION_IDLE_MS, session.createdAt + SESSION_ABSOLUTE_MS - now)
    await store.set(keyOf(id), JSON.stringify(session), ttl)
  }
  return session
}

/** Ends a session on every instance: the store forgets it and live sockets hear of it. */
export async function endSession(store: Store, session: Pick<Session, 'id' | 'userId'>): Promise<void> {
  await store.delete(keyOf(session.id))
  await store.scoreRemove(indexOf(session.userId), session.id)
  await store.publish(SESSION_REVOKED_CHANNEL, session.id)
}

/** Ends every session of a person (their account is gone): each one's sockets close everywhere. */
export async function endAllSessions(store: Store, userId: string): Promise<void> {
  const ids = await store.scoreRange(indexOf(userId), 0, Number.MAX_SAFE_INTEGER, 2 * MAX_SESSIONS_PER_PERSON)
  for (const id of ids) await endSession(store, { id, userId })
  await store.delete(indexOf(userId))
}

// "Firefox on Linux": enough to tell one's devices apart, without keeping the whole user agent.
// Order matters: Edge and Opera also say Chrome, Chrome also says Safari.
const BROWSERS: Array<[RegExp, string]> = [
  [/Edg(?:e|A|iOS)?\//, 'Edge'], [/OPR\/|Opera/, 'Opera'], [/Firefox\/|FxiOS\//, 'Firefox'],
  [/Chrome\/|CriOS\/|Chromium\//, 'Chrome'], [/Safari\//, 'Safari'], [/^node|undici/i, 'A program']
]
const SYSTEMS: Array<[RegExp, string]> = [
  [/Android/, 'Android'], [/iPhone|iPad|iPod/, 'iOS'], [/Windows/, 'Windows'], [/Mac OS X|Macintosh/, 'macOS'],
  [/CrOS/, 'ChromeOS'], [/Linux/, 'Linux']
]

export function deviceName(userAgent: string): string {
  const browser = BROWSERS.find(([pattern]) => pattern.test(userAgent))?.[1]
  const system = SYSTEMS.find(([pattern]) => pattern.test(userAgent))?.[1]
  if (browser && system) return `${browser} on ${system}`
  return browser ?? system ?? 'Unknown browser'
}
