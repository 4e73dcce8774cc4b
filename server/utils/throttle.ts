import type { H3Event } from 'h3'
import { setResponseHeader } from 'h3'
import type { Store } from './store/types'
import { fail } from './http'
import { rateLimited } from './metrics'

export interface Limit {
  key: string
  max: number
  windowMs: number
}

/** Fixed-window counter in the store, so the limit holds across every instance. */
export async function hitLimit(store: Store, limit: Limit): Promise<{ allowed: boolean, retryAfterMs: number }> {
  const count = await store.increment(`throttle:${limit.key}`, limit.windowMs)
  if (count <= limit.max) return { allowed: true, retryAfterMs: 0 }
  const left = await store.ttl(`throttle:${limit.key}`)
  return { allowed: false, retryAfterMs: left > 0 ? left : limit.windowMs }
}

/** The contract's 429: `Retry-After` in the header and, for the UI's countdown, in `data.retryAfter`. */
export function throttled(event: H3Event, retryAfterMs: number, message: string, what = 'sign-in'): Error {
  const retryAfter = Math.max(1, Math.ceil(retryAfterMs / 1000))
  const code = what === 'locked' ? 'locked' : 'throttled'
  rateLimited.inc({ what })
  setResponseHeader(event, 'Retry-After', retryAfter)
  return fail(429, code, message, { retryAfter })
}

export async function enforceLimit(event: H3Event, store: Store, limit: Limit, message: string): Promise<void> {
  const { allowed, retryAfterMs } = await hitLimit(store, limit)
  if (!allowed) throw throttled(event, retryAfterMs, message)
}
