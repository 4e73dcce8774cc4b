import type { Store } from '../store/types'

/** A token bucket: `burst` at once, refilled at `perSecond`. */
export interface FrameLimit {
  /** The store key's part: one bucket per person and name, shared by every instance. */
  name: string
  perSecond: number
  burst: number
}

/**
 * Per person, across reconnects and instances (in the store): a socket closing and opening again
 * starts from what was left. Sends: 10 a second, bursts of 20 (a pasted list, an outbox after a
 * reconnect: the client paces itself a little under this). Typing: a start every 3 s is what the
 * client sends; the rest is room for stops. Reads: one per batch the client reports. Changes:
 * each reaches every member and takes a seq, so fewer than sends.
 */
export const FRAME_LIMITS = {
  send: { name: 'send', perSecond: 10, burst: 20 },
  typing: { name: 'typing', perSecond: 2, burst: 6 },
  read: { name: 'read', perSecond: 5, burst: 20 },
  watch: { name: 'watch', perSecond: 1, burst: 5 },
  /** Edits, deletions and reactions, by frame or REST alike (one bucket): 2 a second, bursts of 20. */
  change: { name: 'change', perSecond: 2, burst: 20 }
} satisfies Record<string, FrameLimit>

// Refusals remembered here until the store's bucket has a token again: a flood past a limit is
// refused from memory, with no store round trip per frame.
const refusedUntil = new Map<string, number>()
const SWEEP_AT = 10_000

export async function takeFrom(store: Store, limit: FrameLimit, userId: string, now = Date.now()): Promise<{ allowed: boolean, retryAfterMs: number }> {
  const key = `limit:${limit.name}:${userId}`
  const until = refusedUntil.get(key)
  if (until !== undefined) {
    if (until > now) return { allowed: false, retryAfterMs: until - now }
    refusedUntil.delete(key)
  }
  const taken = await store.takeTokens(key, limit.perSecond, limit.burst)
  if (!taken.allowed) {
    if (refusedUntil.size >= SWEEP_AT) for (const [stale, at] of refusedUntil) if (at <= now) refusedUntil.delete(stale)
    refusedUntil.set(key, now + taken.retryAfterMs)
  }
  return taken
}
