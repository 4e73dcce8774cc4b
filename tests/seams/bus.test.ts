import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { Bus, BusConsumer, BusRecord } from '../../server/utils/bus/types'
import { realServices, testBus, uniqueName } from '../support/backends'

describe(`bus seam (${realServices ? 'kafka' : 'in-process'})`, () => {
  let bus: Bus
  const consumers: BusConsumer[] = []
  beforeAll(() => {
    bus = testBus()
  })
  afterAll(async () => {
    await Promise.all(consumers.map(consumer => consumer.stop()))
    await bus.close()
  })

  async function freshTopic(partitions = 3) {
    const topic = uniqueName('topic')
    await bus.ensureTopics([{ topic, partitions }])
    return topic
  }

  function collect(topic: string, group: string, onBatch?: (records: BusRecord[]) => Promise<void>) {
    const seen: BusRecord[] = []
    const ready = bus.consume({
      topic,
      group,
      fromBeginning: true,
      onBatch: async (records) => {
        await onBatch?.(records)
        seen.push(...records)
      }
    }).then((consumer) => {
      consumers.push(consumer)
      return consumer
    })
    return { seen, ready }
  }

  it('keeps the order of messages that share a key', async () => {
    const topic = await freshTopic()
    const keys = ['alpha', 'beta', 'gamma', 'delta']
    const sent = keys.flatMap(key => Array.from({ length: 25 }, (_, i) => ({ key, value: `${key}:${i}` })))
    await bus.publish(topic, sent)
    const { seen, ready } = collect(topic, uniqueName('group'))
    await ready
    await vi.waitFor(() => expect(seen).toHaveLength(sent.length), { timeout: 20_000 })
    for (const key of keys) {
      expect(seen.filter(record => record.key === key).map(record => record.value)).toEqual(sent.filter(m => m.key === key).map(m => m.value))
    }
  })

  it('gives every group every message', async () => {
    const topic = await freshTopic()
    const first = collect(topic, uniqueName('first'))
    const second = collect(topic, uniqueName('second'))
    await Promise.all([first.ready, second.ready])
    await bus.publish(topic, Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: String(i) })))
    await vi.waitFor(() => {
      expect(first.seen).toHaveLength(10)
      expect(second.seen).toHaveLength(10)
    }, { timeout: 20_000 })
  })

  it('redelivers a batch whose handler failed, and loses nothing', async () => {
    const topic = await freshTopic(1)
    let failures = 0
    const attempts: string[][] = []
    const { seen, ready } = collect(topic, uniqueName('group'), async (records) => {
      attempts.push(records.map(record => record.value))
      if (failures < 2) {
        failures++
        throw new Error('database unavailable')
      }
    })
    await ready
    await bus.publish(topic, [{ key: 'k', value: 'a' }, { key: 'k', value: 'b' }])
    await vi.waitFor(() => expect(seen.map(record => record.value)).toEqual(['a', 'b']), { timeout: 20_000 })
    expect(failures).toBe(2)
    // Each retry starts at the first uncommitted record.
    for (const attempt of attempts) expect(attempt[0]).toBe('a')
  })

  it('resumes a group after its last commit when a member replaces another', async () => {
    const topic = await freshTopic(1)
    const group = uniqueName('group')
    const first = collect(topic, group)
    const consumer = await first.ready
    await bus.publish(topic, [{ key: 'k', value: '1' }, { key: 'k', value: '2' }])
    await vi.waitFor(() => expect(first.seen).toHaveLength(2), { timeout: 20_000 })
    await consumer.stop()
    await bus.publish(topic, [{ key: 'k', value: '3' }])
    const second = collect(topic, group)
    await second.ready
    await vi.waitFor(() => expect(second.seen.map(record => record.value)).toEqual(['3']), { timeout: 30_000 })
  })

  it('reports the lag of a group: published but not yet committed', async () => {
    const topic = await freshTopic(2)
    const group = uniqueName('group')
    let release!: () => void
    const held = new Promise<void>(resolve => (release = resolve))
    const { seen, ready } = collect(topic, group, () => held)
    await ready
    await bus.publish(topic, Array.from({ length: 6 }, (_, i) => ({ key: `k${i}`, value: String(i) })))
    expect(await bus.lag(topic, group)).toBe(6)
    release()
    await vi.waitFor(async () => {
      expect(seen).toHaveLength(6)
      expect(await bus.lag(topic, group)).toBe(0)
    }, { timeout: 20_000 })
  })

  it('answers a ping', async () => {
    await expect(bus.ping()).resolves.toBeUndefined()
  })
})
