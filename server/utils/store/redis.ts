import { Redis } from 'ioredis'
import type { SecretGuess, Store } from './types'

// INCR and the first PEXPIRE in one step: a crash between the two would leave a throttle that never ends.
const INCREMENT = `local n = redis.call('INCR', KEYS[1])
if n == 1 and tonumber(ARGV[1]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`

// The bucket is read, refilled, spent and written back in one step, on Redis' own clock, so
// parallel callers on any number of instances cannot spend the same token twice.
const TAKE_TOKENS = `local rate = tonumber(ARGV[1]) / 1000
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(held[1]) or burst
local at = tonumber(held[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= cost then tokens = tokens - cost else wait = math.ceil((cost - tokens) / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 1000)
return wait`

// A one-time secret is the string "state:guesses:digest" (memory.ts keeps the same). Read, refused
// or counted, compared and marked in one step, so no two guesses are ever compared against the same
// count, whatever the concurrency. KEYS: the secret, its miss counter; ARGV: digest, max guesses, miss window.
const GUESS_SECRET = `local held = redis.call('GET', KEYS[1])
if not held then return {'absent', 0, 0} end
local state, guesses, digest = string.match(held, '^(%a+):(%d+):(.*)$')
if state ~= 'pending' and state ~= 'used' and state ~= 'void' then return {'absent', 0, 0} end
guesses = tonumber(guesses)
if state ~= 'pending' then return {state, guesses, 0} end
guesses = guesses + 1
if digest == ARGV[1] then
  redis.call('SET', KEYS[1], 'used:' .. guesses .. ':' .. digest, 'KEEPTTL')
  redis.call('DEL', KEYS[2])
  return {'right', guesses, 0}
end
if guesses >= tonumber(ARGV[2]) then state = 'void' end
redis.call('SET', KEYS[1], state .. ':' .. guesses .. ':' .. digest, 'KEEPTTL')
local misses = redis.call('INCR', KEYS[2])
if misses == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
return {'wrong', guesses, misses}`

/** Redis through ioredis; pub/sub gets its own connection because a subscribed one can do nothing else. */
export function createRedisStore(url: string, prefix = 'natter:'): Store {
  // Auto-pipelining sends the commands issued in one tick as one round trip (presence, contact lists).
  const options = { lazyConnect: false, maxRetriesPerRequest: 2, enableOfflineQueue: true, connectTimeout: 5000, enableAutoPipelining: true }
  const redis = new Redis(url, options)
  let subscriber: Redis | undefined
  const listeners = new Map<string, Set<(message: string) => void>>()
  // A Redis that is down must not crash the process; readiness reports it instead.
  redis.on('error', () => {})

  function useSubscriber(): Redis {
    if (subscriber) return subscriber
    // Fails a subscribe while Redis is down (start-up retries it); once subscribed, ioredis
    // re-subscribes by itself after a reconnect.
    subscriber = new Redis(url, options)
    subscriber.on('error', () => {})
    subscriber.on('message', (channel: string, message: string) => {
      for (const listener of listeners.get(channel.slice(prefix.length)) ?? []) listener(message)
    })
    return subscriber
  }

  return {
    mode: 'redis',
    get: key => redis.get(prefix + key),
    async set(key, value, ttlMs) {
      if (ttlMs) await redis.set(prefix + key, value, 'PX', ttlMs)
      else await redis.set(prefix + key, value)
    },
    async setIfAbsent(key, value, ttlMs) {
      const result = ttlMs
        ? await redis.set(prefix + key, value, 'PX', ttlMs, 'NX')
        : await redis.set(prefix + key, value, 'NX')
      return result === 'OK'
    },
    // NOTE: ioredis 5's typings lack this SET form (XX with KEEPTTL and GET); Redis ≥ 7 has it.
    swap: async (key, value) => (await redis.call('SET', prefix + key, value, 'XX', 'KEEPTTL', 'GET')) as string | null,
    async increment(key, ttlMs) {
      return Number(await redis.eval(INCREMENT, 1, prefix + key, String(ttlMs ?? 0)))
    },
    async takeTokens(key, perSecond, burst, cost = 1) {
      const wait = Number(await redis.eval(TAKE_TOKENS, 1, prefix + key, String(perSecond), String(burst), String(cost)))
      return { allowed: wait === 0, retryAfterMs: wait }
    },
    async setSecret(key, digest, ttlMs) {
      await redis.set(prefix + key, `pending:0:${digest}`, 'PX', ttlMs)
    },
    async guessSecret(key, digest, { maxGuesses, missesKey, missesTtlMs }) {
      const [result, guesses, misses] = await redis.eval(GUESS_SECRET, 2, prefix + key, prefix + missesKey, digest, String(maxGuesses), String(missesTtlMs)) as [SecretGuess['result'], number, number]
      return { result, guesses, misses }
    },
    async delete(...keys) {
      if (keys.length) await redis.del(...keys.map(key => prefix + key))
    },
    ttl: key => redis.pttl(prefix + key),
    async expire(key, ttlMs) {
      return (await redis.pexpire(prefix + key, ttlMs)) === 1
    },
    async scoreAdd(key, member, score, onlyIfGreater) {
      if (onlyIfGreater) await redis.zadd(prefix + key, 'GT', score, member)
      else await redis.zadd(prefix + key, score, member)
    },
    async scoreRemove(key, member) {
      return (await redis.zrem(prefix + key, member)) === 1
    },
    async scoreRange(key, min, max, limit) {
      return limit === undefined
        ? redis.zrangebyscore(prefix + key, min, max)
        : redis.zrangebyscore(prefix + key, min, max, 'LIMIT', 0, limit)
    },
    async scoreOf(key, member) {
      const score = await redis.zscore(prefix + key, member)
      return score === null ? null : Number(score)
    },
    async publish(channel, message) {
      await redis.publish(prefix + channel, message)
    },
    async subscribe(channel, listener) {
      const connection = useSubscriber()
      let set = listeners.get(channel)
      if (!set) {
        set = new Set()
        listeners.set(channel, set)
        await connection.subscribe(prefix + channel)
      }
      set.add(listener)
      return async () => {
        set.delete(listener)
        if (set.size === 0 && listeners.get(channel) === set) {
          listeners.delete(channel)
          await connection.unsubscribe(prefix + channel).catch(() => {})
        }
      }
    },
    async ping() {
      await redis.ping()
    },
    async close() {
      listeners.clear()
      await Promise.allSettled([redis.quit(), subscriber?.quit()])
    }
  }
}
