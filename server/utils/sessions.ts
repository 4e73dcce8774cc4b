import { createHash, randomBytes } from 'node:crypto'
import type { Store } from './store/types'

export const SESSION_COOKIE = 'natter_session'
export const SESSION_IDLE_MS = 7 * 24 * 3600_000
export const SESSION_ABSOLUTE_MS = 30 * 24 * 3600_000
// Sliding the idle timeout on every request would write to the store on every request.
const TOUCH_EVERY_MS = 60_000
export const SESSION_REVOKED_CHANNEL = 'session.revoked'

export interface Session {
  /** sha256 of the cookie value: what the store keeps, and how sockets know their session. */
  id: string
  userId: string
  createdAt: number
  lastUsedAt: number
}

const hash = (token: string) => createHash('sha256').update(token).digest('base64url')
const keyOf = (id: string) => `session:${id}`

/** A fresh 256-bit token for the cookie; only its hash is stored, so a store leak signs nobody in. */
export async function createSession(store: Store, userId: string, now = Date.now()): Promise<{ token: string, session: Session }> {
  const token = randomBytes(32).toString('base64url')
  const session: Session = { id: hash(token), userId, createdAt: now, lastUsedAt: now }
  await store.set(keyOf(session.id), JSON.stringify(session), SESSION_IDLE_MS)
  return { token, session }
}

/** The live session behind a cookie value, sliding its idle timeout; undefined when gone or too old. */
export async function readSession(store: Store, token: string | undefined, now = Date.now()): Promise<Session | undefined> {
  if (!token || token.length > 100) return undefined
  const id = hash(token)
  const raw = await store.get(keyOf(id))
  if (!raw) return undefined
  const session = JSON.parse(raw) as Session
  if (now - session.createdAt > SESSION_ABSOLUTE_MS || now - session.lastUsedAt > SESSION_IDLE_MS) {
    await store.delete(keyOf(id))
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
export async function endSession(store: Store, id: string): Promise<void> {
  await store.delete(keyOf(id))
  await store.publish(SESSION_REVOKED_CHANNEL, id)
}
