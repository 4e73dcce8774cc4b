import { EventEmitter } from 'node:events'
import type { Store } from './types'

interface Entry { value: string, expiresAt: number }

/** The embedded twin of Redis for one process: same operations, same TTL and atomicity. */
export function createMemoryStore(): Store {
  const entries = new Map<string, Entry>()
  const sorted = new Map<string, Map<string, number>>()
  const channels = new EventEmitter().setMaxListeners(0)
  const sweeper = setInterval(() => {
    const now = Date.now()
    for (const [key, entry] of entries) if (entry.expiresAt <= now) entries.delete(key)
  }, 10_000)
  sweeper.unref()

  function live(key: string): Entry | undefined {
    const entry = entries.get(key)
    if (entry && entry.expiresAt <= Date.now()) {
      entries.delete(key)
      return undefined
    }
    return entry
  }
  const expiry = (ttlMs?: number) => (ttlMs ? Date.now() + ttlMs : Number.POSITIVE_INFINITY)

  return {
    mode: 'in-process',
    async get(key) {
      return live(key)?.value ?? null
    },
    async set(key, value, ttlMs) {
      entries.set(key, { value, expiresAt: expiry(ttlMs) })
    },
    async setIfAbsent(key, value, ttlMs) {
      if (live(key)) return false
      entries.set(key, { value, expiresAt: expiry(ttlMs) })
      return true
    },
    async swap(key, value) {
      const entry = live(key)
      if (!entry) return null
      const previous = entry.value
      entry.value = value
      return previous
    },
    async increment(key, ttlMs) {
      const entry = live(key)
      if (!entry) {
        entries.set(key, { value: '1', expiresAt: expiry(ttlMs) })
        return 1
      }
      const next = Number(entry.value) + 1
      if (!Number.isFinite(next)) throw new Error(`store: "${key}" does not hold a number`)
      entry.value = String(next)
      return next
    },
    async delete(...keys) {
      for (const key of keys) entries.delete(key)
    },
    async ttl(key) {
      const entry = live(key)
      if (!entry) return -2
      return entry.expiresAt === Number.POSITIVE_INFINITY ? -1 : entry.expiresAt - Date.now()
    },
    async expire(key, ttlMs) {
      const entry = live(key)
      if (!entry) return false
      entry.expiresAt = expiry(ttlMs)
      return true
    },
    async scoreAdd(key, member, score, onlyIfGreater) {
      let set = sorted.get(key)
      if (!set) sorted.set(key, set = new Map())
      const current = set.get(member)
      if (onlyIfGreater && current !== undefined && current >= score) return
      set.set(member, score)
    },
    async scoreRemove(key, member) {
      return sorted.get(key)?.delete(member) ?? false
    },
    async scoreRange(key, min, max, limit = Number.POSITIVE_INFINITY) {
      return [...(sorted.get(key) ?? [])]
        .filter(([, score]) => score >= min && score <= max)
        .sort((a, b) => a[1] - b[1])
        .slice(0, limit)
        .map(([member]) => member)
    },
    async scoreOf(key, member) {
      return sorted.get(key)?.get(member) ?? null
    },
    async publish(channel, message) {
      // Delivered on a later tick, as Redis would, so publishers never re-enter their listeners.
      setImmediate(() => channels.emit(channel, message))
    },
    async subscribe(channel, listener) {
      channels.on(channel, listener)
      return async () => {
        channels.off(channel, listener)
      }
    },
    async ping() {},
    async close() {
      clearInterval(sweeper)
      channels.removeAllListeners()
      entries.clear()
      sorted.clear()
    }
  }
}
