import { log } from '../log'
import { redeliveryDelay, type Bus, type BusConsumer, type BusRecord, type ConsumeOptions, type TopicSpec } from './types'

interface Partition { base: number, records: BusRecord[] }
interface Topic { partitions: Partition[], groups: Map<string, Group> }
interface Group { committed: number[], members: Member[] }
interface Member { owned: Set<number>, wake: () => void, running: boolean }

const MAX_BATCH = 500

/**
 * Kafka's semantics in one process: partitions by key hash, consumer groups with committed
 * offsets, batches per partition in order, redelivery after a handler error.
 */
export function createMemoryBus(defaultPartitions = 4): Bus {
  const topics = new Map<string, Topic>()
  const members = new Set<{ stop: () => Promise<void> }>()

  function topicOf(name: string): Topic {
    let topic = topics.get(name)
    if (!topic) {
      topic = { partitions: Array.from({ length: defaultPartitions }, () => ({ base: 0, records: [] })), groups: new Map() }
      topics.set(name, topic)
    }
    return topic
  }

  function end(partition: Partition) {
    return partition.base + partition.records.length
  }

  function rebalance(topic: Topic, group: Group) {
    group.members.forEach(member => member.owned.clear())
    topic.partitions.forEach((_, index) => {
      const member = group.members[index % Math.max(1, group.members.length)]
      member?.owned.add(index)
    })
    group.members.forEach(member => member.wake())
  }

  // Keep only what some group has yet to commit: the in-process log is a queue, not an archive.
  function trim(topic: Topic, index: number) {
    const partition = topic.partitions[index]!
    let low = end(partition)
    for (const group of topic.groups.values()) low = Math.min(low, group.committed[index]!)
    const drop = low - partition.base
    if (drop > 0) {
      partition.records.splice(0, drop)
      partition.base = low
    }
  }

  async function consume(options: ConsumeOptions): Promise<BusConsumer> {
    const topic = topicOf(options.topic)
    let group = topic.groups.get(options.group)
    if (!group) {
      const start = (p: Partition) => (options.fromBeginning ? p.base : end(p))
      group = { committed: topic.partitions.map(start), members: [] }
      topic.groups.set(options.group, group)
    }
    const theGroup = group
    // A wake that lands while a batch runs must not be lost: remember it until the loop looks.
    let signalled = false
    let waiting: (() => void) | undefined
    const member: Member = {
      owned: new Set(),
      running: true,
      wake: () => {
        signalled = true
        waiting?.()
      }
    }
    theGroup.members.push(member)
    rebalance(topic, theGroup)

    async function deliver(index: number): Promise<boolean> {
      const partition = topic.partitions[index]!
      const from = theGroup.committed[index]!
      if (from >= end(partition)) return false
      const records = partition.records.slice(from - partition.base, from - partition.base + MAX_BATCH)
      for (let attempt = 0; member.running && member.owned.has(index); attempt++) {
        try {
          await options.onBatch(records)
          // Another member may have committed further meanwhile (after a rebalance): never move back.
          theGroup.committed[index] = Math.max(theGroup.committed[index]!, from + records.length)
          trim(topic, index)
          return true
        }
        catch (error) {
          log.warn('bus: handler failed, redelivering', { topic: options.topic, group: options.group, partition: index, attempt, error })
          await new Promise(resolve => setTimeout(resolve, redeliveryDelay(attempt)))
        }
      }
      return false
    }

    const loop = (async () => {
      while (member.running) {
        signalled = false
        const progressed = await Promise.all([...member.owned].map(deliver))
        if (!member.running) break
        if (!progressed.some(Boolean) && !signalled) await new Promise<void>(resolve => (waiting = resolve))
        waiting = undefined
      }
    })()

    const handle = {
      async stop() {
        if (!member.running) return
        member.running = false
        member.wake()
        await loop
        theGroup.members.splice(theGroup.members.indexOf(member), 1)
        rebalance(topic, theGroup)
        members.delete(handle)
      }
    }
    members.add(handle)
    return handle
  }

  return {
    mode: 'in-process',
    async ensureTopics(specs: TopicSpec[]) {
      for (const spec of specs) {
        if (topics.has(spec.topic)) continue
        topics.set(spec.topic, {
          partitions: Array.from({ length: spec.partitions }, () => ({ base: 0, records: [] })),
          groups: new Map()
        })
      }
    },
    async publish(name, messages) {
      const topic = topicOf(name)
      for (const message of messages) {
        const index = partitionFor(message.key, topic.partitions.length)
        const partition = topic.partitions[index]!
        partition.records.push({ ...message, topic: name, partition: index, offset: String(end(partition)), timestamp: Date.now() })
      }
      for (const group of topic.groups.values()) group.members.forEach(member => member.wake())
    },
    consume,
    async lag(name, groupName) {
      const topic = topics.get(name)
      const group = topic?.groups.get(groupName)
      if (!topic || !group) return 0
      return topic.partitions.reduce((sum, partition, index) => sum + end(partition) - group.committed[index]!, 0)
    },
    async ping() {},
    async close() {
      await Promise.all([...members].map(member => member.stop()))
      topics.clear()
    }
  }
}

/** A stable partition per key (FNV-1a), so one conversation's messages stay in order. */
export function partitionFor(key: string, partitions: number): number {
  let hash = 0x811C9DC5
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return (hash >>> 0) % partitions
}
