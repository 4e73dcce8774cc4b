import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createMemoryStore } from '../../server/utils/store/memory'
import type { Store } from '../../server/utils/store/types'
import { realServices, testStore } from '../support/backends'

describe(`store seam (${realServices ? 'redis' : 'in-process'})`, () => {
  let store: Store
  beforeAll(() => {
    store = testStore()
  })
  afterAll(() => store.close())

  it('reads back what it stored and forgets what it deleted', async () => {
    await store.set('greeting', 'hello')
    expect(await store.get('greeting')).toBe('hello')
    await store.delete('greeting')
    expect(await store.get('greeting')).toBeNull()
    expect(await store.ttl('greeting')).toBe(-2)
  })

  it('expires a key after its TTL', async () => {
    await store.set('short', 'lived', 150)
    expect(await store.get('short')).toBe('lived')
    const left = await store.ttl('short')
    expect(left).toBeGreaterThan(0)
    expect(left).toBeLessThanOrEqual(150)
    await vi.waitFor(async () => expect(await store.get('short')).toBeNull(), { timeout: 2000, interval: 25 })
  })

  it('keeps a key without TTL until deleted', async () => {
    await store.set('forever', '1')
    expect(await store.ttl('forever')).toBe(-1)
    expect(await store.expire('forever', 60_000)).toBe(true)
    expect(await store.ttl('forever')).toBeGreaterThan(59_000)
    expect(await store.expire('missing', 1000)).toBe(false)
  })

  it('sets if absent exactly once among concurrent callers', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.setIfAbsent('lock', String(i), 5000)))
    expect(results.filter(Boolean)).toHaveLength(1)
    const winner = results.indexOf(true)
    expect(await store.get('lock')).toBe(String(winner))
  })

  it('swaps atomically: of racing callers one sees the original, and the TTL stays', async () => {
    await store.set('code', 'pending', 5000)
    const seen = await Promise.all(Array.from({ length: 10 }, (_, i) => store.swap('code', `used-${i}`)))
    expect(seen.filter(value => value === 'pending')).toHaveLength(1)
    expect(await store.get('code')).toMatch(/^used-\d$/)
    expect(await store.ttl('code')).toBeGreaterThan(4000)
    expect(await store.swap('missing', 'x')).toBeNull()
    expect(await store.get('missing')).toBeNull()
  })

  it('counts atomically and starts the TTL window at the first increment', async () => {
    const counts = await Promise.all(Array.from({ length: 50 }, () => store.increment('hits', 10_000)))
    expect(counts.sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1))
    const ttl = await store.ttl('hits')
    expect(ttl).toBeGreaterThan(9000)
    await store.increment('hits', 99_999_999)
    expect(await store.ttl('hits')).toBeLessThanOrEqual(10_000)
  })

  it('delivers published messages to every subscriber until it unsubscribes', async () => {
    const first: string[] = []
    const second: string[] = []
    const stopFirst = await store.subscribe('room', message => first.push(message))
    const stopSecond = await store.subscribe('room', message => second.push(message))
    await store.publish('room', 'one')
    await vi.waitFor(() => expect(second).toEqual(['one']))
    expect(first).toEqual(['one'])
    await stopFirst()
    await store.publish('room', 'two')
    await vi.waitFor(() => expect(second).toEqual(['one', 'two']))
    expect(first).toEqual(['one'])
    await stopSecond()
  })

  it('keeps sorted sets: range by score, grow-only adds, one winner per removal', async () => {
    await store.scoreAdd('expiries', 'ada', 300)
    await store.scoreAdd('expiries', 'bob', 100)
    await store.scoreAdd('expiries', 'cy', 200)
    expect(await store.scoreRange('expiries', 0, 250)).toEqual(['bob', 'cy'])
    expect(await store.scoreRange('expiries', 0, 1000, 1)).toEqual(['bob'])
    await store.scoreAdd('expiries', 'ada', 50, true)
    expect(await store.scoreOf('expiries', 'ada')).toBe(300)
    await store.scoreAdd('expiries', 'ada', 400, true)
    expect(await store.scoreOf('expiries', 'ada')).toBe(400)
    await store.scoreAdd('expiries', 'ada', 10)
    expect(await store.scoreOf('expiries', 'ada')).toBe(10)
    const removals = await Promise.all(Array.from({ length: 5 }, () => store.scoreRemove('expiries', 'bob')))
    expect(removals.filter(Boolean)).toHaveLength(1)
    expect(await store.scoreOf('expiries', 'bob')).toBeNull()
    expect(await store.scoreRange('missing', 0, 1)).toEqual([])
  })

  it('spends a token bucket atomically: of parallel takers exactly the burst gets through, then it refills', async () => {
    const takes = await Promise.all(Array.from({ length: 50 }, () => store.takeTokens('bucket', 20, 10)))
    expect(takes.filter(take => take.allowed)).toHaveLength(10)
    const refused = takes.find(take => !take.allowed)!
    expect(refused.retryAfterMs).toBeGreaterThan(0)
    expect(refused.retryAfterMs).toBeLessThanOrEqual(50)
    await vi.waitFor(async () => expect((await store.takeTokens('bucket', 20, 10)).allowed).toBe(true), { timeout: 2000, interval: 20 })
    // A cost larger than what is there is refused whole, and spends nothing.
    expect((await store.takeTokens('costly', 1, 5, 3)).allowed).toBe(true)
    expect(await store.takeTokens('costly', 1, 5, 3)).toEqual({ allowed: false, retryAfterMs: expect.any(Number) })
    expect((await store.takeTokens('costly', 1, 5, 2)).allowed).toBe(true)
    expect(await store.ttl('bucket')).toBeGreaterThan(0)
  })

  describe('one-time secrets', () => {
    const limits = (missesKey: string) => ({ maxGuesses: 5, missesKey, missesTtlMs: 60_000 })

    it('compares at most five of a thousand parallel guesses, then the secret is void', async () => {
      await store.setSecret('secret:burst', 'right', 60_000)
      const digests = Array.from({ length: 1000 }, (_, i) => `wrong-${i}`)
      digests.splice(Math.floor(Math.random() * digests.length), 0, 'right')
      const guesses = await Promise.all(digests.map(digest => store.guessSecret('secret:burst', digest, limits('misses:burst'))))
      const compared = guesses.filter(guess => guess.result === 'right' || guess.result === 'wrong')
      expect(compared.length).toBeGreaterThanOrEqual(1)
      expect(compared.length).toBeLessThanOrEqual(5)
      // Each compared guess saw its own count: no two were compared against the same try.
      expect(compared.map(guess => guess.guesses).sort((a, b) => a - b)).toEqual(Array.from({ length: compared.length }, (_, i) => i + 1))
      const right = guesses.filter(guess => guess.result === 'right')
      expect(right.length).toBeLessThanOrEqual(1)
      // Whatever was not compared was refused: the secret was used (the right guess won) or void.
      expect(new Set(guesses.filter(guess => !compared.includes(guess)).map(guess => guess.result))).toEqual(new Set([right.length ? 'used' : 'void']))
      expect(await store.guessSecret('secret:burst', 'right', limits('misses:burst'))).toMatchObject({ result: right.length ? 'used' : 'void' })
    })

    it('signs in the right guess once: a replay finds it used, and the TTL stays', async () => {
      await store.setSecret('secret:once', 'right', 60_000)
      expect(await store.guessSecret('secret:once', 'nope', limits('misses:once'))).toEqual({ result: 'wrong', guesses: 1, misses: 1 })
      expect(await store.guessSecret('secret:once', 'right', limits('misses:once'))).toEqual({ result: 'right', guesses: 2, misses: 0 })
      expect(await store.guessSecret('secret:once', 'right', limits('misses:once'))).toEqual({ result: 'used', guesses: 2, misses: 0 })
      expect(await store.ttl('secret:once')).toBeGreaterThan(59_000)
      // A right guess clears the misses: they count consecutive failures.
      expect(await store.ttl('misses:once')).toBe(-2)
    })

    it('refuses a guess at a missing secret and writes nothing', async () => {
      expect(await store.guessSecret('secret:none', 'any', limits('misses:none'))).toEqual({ result: 'absent', guesses: 0, misses: 0 })
      expect(await store.ttl('secret:none')).toBe(-2)
      expect(await store.ttl('misses:none')).toBe(-2)
    })

    it('counts misses across fresh secrets from the first miss, and not the refused guesses', async () => {
      await store.setSecret('secret:misses', 'first', 60_000)
      for (let i = 0; i < 5; i++) await store.guessSecret('secret:misses', `no-${i}`, limits('misses:misses'))
      expect(await store.guessSecret('secret:misses', 'first', limits('misses:misses'))).toMatchObject({ result: 'void' })
      await store.setSecret('secret:misses', 'second', 60_000)
      expect(await store.guessSecret('secret:misses', 'no', limits('misses:misses'))).toEqual({ result: 'wrong', guesses: 1, misses: 6 })
      const window = await store.ttl('misses:misses')
      expect(window).toBeGreaterThan(50_000)
      expect(window).toBeLessThanOrEqual(60_000)
      expect(await store.guessSecret('secret:misses', 'second', limits('misses:misses'))).toMatchObject({ result: 'right' })
    })

    it('forgets a secret after its TTL', async () => {
      await store.setSecret('secret:short', 'right', 100)
      await vi.waitFor(async () => expect(await store.ttl('secret:short')).toBe(-2), { timeout: 2000, interval: 25 })
      expect(await store.guessSecret('secret:short', 'right', limits('misses:short'))).toMatchObject({ result: 'absent' })
    })
  })

  it('answers a ping', async () => {
    await expect(store.ping()).resolves.toBeUndefined()
  })
})

// The in-process store's file is the embedded twin's only: with Redis there is no such file.
describe.runIf(!realServices)('store seam: the in-process file', () => {
  it('keeps the event loop turning while it writes the file, and the file whole', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'natter-store-'))
    const file = join(dir, 'store.json')
    const store = createMemoryStore({ file })
    for (let i = 0; i < 50_000; i++) await store.set(`session:${i}`, 'x'.repeat(64), 60_000)
    let turns = 0
    let next = setImmediate(function turn() {
      turns += 1
      next = setImmediate(turn)
    })
    await store.close()
    clearImmediate(next)
    expect(turns).toBeGreaterThan(0)
    expect(JSON.parse(readFileSync(file, 'utf8'))).toHaveLength(50_000)
    rmSync(dir, { recursive: true, force: true })
  })
})
