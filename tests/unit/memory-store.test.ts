import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { createMemoryStore } from '../../server/utils/store/memory'

describe('in-process store kept in a file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'natter-store-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('brings keys back with what was left of their TTL, and nothing that expired meanwhile', async () => {
    const file = join(dir, 'a', 'store.json')
    const before = createMemoryStore({ file })
    await before.set('session:1', 'ada', 60_000)
    await before.set('forever', 'x')
    await before.set('short', 'gone soon', 50)
    await before.increment('throttle:ip', 60_000)
    await before.scoreAdd('presence:ada', 'instance-1', Date.now() + 20_000)
    await before.close()
    expect(statSync(file).mode & 0o777).toBe(0o600)

    await vi.waitFor(() => expect(Date.now()).toBeGreaterThan(statSync(file).mtimeMs + 60), { interval: 20 })
    const after = createMemoryStore({ file })
    expect(await after.get('session:1')).toBe('ada')
    const ttl = await after.ttl('session:1')
    expect(ttl).toBeGreaterThan(50_000)
    expect(ttl).toBeLessThanOrEqual(60_000)
    expect(await after.ttl('forever')).toBe(-1)
    expect(await after.get('short')).toBeNull()
    expect(await after.increment('throttle:ip', 60_000)).toBe(2)
    // Presence describes live processes: it starts empty, as after Redis lost its data.
    expect(await after.scoreOf('presence:ada', 'instance-1')).toBeNull()
    await after.close()
  })

  it('forgets a deleted key for good', async () => {
    const file = join(dir, 'b.json')
    const first = createMemoryStore({ file })
    await first.set('session:2', 'bob', 60_000)
    await first.delete('session:2')
    await first.close()
    const second = createMemoryStore({ file })
    expect(await second.get('session:2')).toBeNull()
    await second.close()
  })

  it('starts empty from a missing or unreadable file', async () => {
    const missing = createMemoryStore({ file: join(dir, 'none', 'store.json') })
    expect(await missing.get('anything')).toBeNull()
    await missing.close()
    const file = join(dir, 'broken.json')
    writeFileSync(file, '{"not": "a list"')
    const broken = createMemoryStore({ file })
    expect(await broken.get('anything')).toBeNull()
    await broken.set('k', 'v')
    await broken.close()
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual([['k', 'v', null]])
  })
})
