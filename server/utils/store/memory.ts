import { EventEmitter } from 'node:events'
import { readFileSync } from 'node:fs'
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { log } from '../log'
import type { SecretGuess, Store } from './types'

interface Entry { value: string, expiresAt: number }

export interface MemoryStoreOptions {
  /**
   * Where the keys (sessions, sign-in codes, throttles) outlive a restart: written every few
   * seconds when they changed and on close, read at creation. Sorted sets and channels describe
   * live processes (presence, typing) and start empty, as they would after Redis lost its data.
   */
  file?: string
}

const SAVE_EVERY_MS = 5000

// A one-time secret as both stores keep it (redis.ts reads the same form in Lua): state, guesses, digest.
const SECRET = /^(pending|used|void):(\d+):(.*)$/
const secretValue = (state: string, guesses: number, digest: string) => `${state}:${guesses}:${digest}`

/** The embedded twin of Redis for one process: same operations, same TTL and atomicity. */
export function createMemoryStore(options: MemoryStoreOptions = {}): Store {
  const entries = options.file ? load(options.file) : new Map<string, Entry>()
  const sorted = new Map<string, Map<string, number>>()
  const channels = new EventEmitter().setMaxListeners(0)
  // Set by every write to a key, so an idle server does not rewrite the file.
  let changed = false
  const sweeper = setInterval(() => {
    const now = Date.now()
    for (const [key, entry] of entries) if (entry.expiresAt <= now) entries.delete(key)
  }, 10_000)
  sweeper.unref()
  const saver = options.file ? setInterval(() => void save(), SAVE_EVERY_MS).unref() : undefined
  let saving = Promise.resolve()

  /** Writes the keys without blocking the event loop; saves queue behind each other, never overlap. */
  function save(): Promise<void> {
    saving = saving.then(write)
    return saving
  }

  async function write() {
    if (!options.file || !changed) return
    changed = false
    const now = Date.now()
    try {
      const kept = [...entries].filter(([, entry]) => entry.expiresAt > now)
        .map(([key, entry]) => [key, entry.value, Number.isFinite(entry.expiresAt) ? entry.expiresAt : null])
      const text = JSON.stringify(kept)
      await mkdir(dirname(options.file), { recursive: true })
      // Renamed into place, so a crash mid-write leaves the previous file whole.
      await writeFile(`${options.file}.tmp`, text, { mode: 0o600 })
      await rename(`${options.file}.tmp`, options.file)
    }
    catch (error) {
      changed = true
      log.warn('store: could not save the in-process keys', { file: options.file, error })
    }
  }

  function live(key: string): Entry | undefined {
    const entry = entries.get(key)
    if (entry && entry.expiresAt <= Date.now()) {
      entries.delete(key)
      return undefined
    }
    return entry
  }
  const expiry = (ttlMs?: number) => (ttlMs ? Date.now() + ttlMs : Number.POSITIVE_INFINITY)

  function increment(key: string, ttlMs?: number): number {
    changed = true
    const entry = live(key)
    if (!entry) {
      entries.set(key, { value: '1', expiresAt: expiry(ttlMs) })
      return 1
    }
    const next = Number(entry.value) + 1
    if (!Number.isFinite(next)) throw new Error(`store: "${key}" does not hold a number`)
    entry.value = String(next)
    return next
  }

  return {
    mode: 'in-process',
    async get(key) {
      return live(key)?.value ?? null
    },
    async set(key, value, ttlMs) {
      changed = true
      entries.set(key, { value, expiresAt: expiry(ttlMs) })
    },
    async setIfAbsent(key, value, ttlMs) {
      if (live(key)) return false
      changed = true
      entries.set(key, { value, expiresAt: expiry(ttlMs) })
      return true
    },
    async swap(key, value) {
      const entry = live(key)
      if (!entry) return null
      changed = true
      const previous = entry.value
      entry.value = value
      return previous
    },
    async increment(key, ttlMs) {
      return increment(key, ttlMs)
    },
    async takeTokens(key, perSecond, burst, cost = 1) {
      const now = Date.now()
      const rate = perSecond / 1000
      const entry = live(key)
      const [held, at] = entry ? entry.value.split(':').map(Number) as [number, number] : [burst, now]
      let tokens = Math.min(burst, held + Math.max(0, now - at) * rate)
      const wait = tokens >= cost ? 0 : Math.ceil((cost - tokens) / rate)
      if (!wait) tokens -= cost
      changed = true
      entries.set(key, { value: `${tokens}:${now}`, expiresAt: now + Math.ceil((burst - tokens) / rate) + 1000 })
      return { allowed: wait === 0, retryAfterMs: wait }
    },
    async setSecret(key, digest, ttlMs) {
      changed = true
      entries.set(key, { value: secretValue('pending', 0, digest), expiresAt: expiry(ttlMs) })
    },
    // No await between the read and the writes: one step, as the Lua script is on Redis.
    async guessSecret(key, digest, { maxGuesses, missesKey, missesTtlMs }): Promise<SecretGuess> {
      const entry = live(key)
      const held = entry && SECRET.exec(entry.value)
      if (!entry || !held) return { result: 'absent', guesses: 0, misses: 0 }
      const state = held[1] as 'pending' | 'used' | 'void'
      const stored = held[3]!
      if (state !== 'pending') return { result: state, guesses: Number(held[2]), misses: 0 }
      const guesses = Number(held[2]) + 1
      changed = true
      if (stored === digest) {
        entry.value = secretValue('used', guesses, stored)
        entries.delete(missesKey)
        return { result: 'right', guesses, misses: 0 }
      }
      entry.value = secretValue(guesses >= maxGuesses ? 'void' : 'pending', guesses, stored)
      return { result: 'wrong', guesses, misses: increment(missesKey, missesTtlMs) }
    },
    async delete(...keys) {
      changed = true
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
      changed = true
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
      clearInterval(saver)
      await save()
      channels.removeAllListeners()
      entries.clear()
      sorted.clear()
    }
  }
}

/** The keys a previous process saved; none when there is no file yet or it cannot be read. */
function load(file: string): Map<string, Entry> {
  const entries = new Map<string, Entry>()
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  }
  catch {
    return entries
  }
  try {
    const now = Date.now()
    for (const [key, value, expiresAt] of JSON.parse(text) as Array<[string, string, number | null]>) {
      const at = expiresAt ?? Number.POSITIVE_INFINITY
      if (typeof key === 'string' && typeof value === 'string' && at > now) entries.set(key, { value, expiresAt: at })
    }
  }
  catch (error) {
    // Sessions are a convenience here: starting without them signs people out, nothing more.
    log.warn('store: ignoring an unreadable in-process key file', { file, error })
  }
  return entries
}
