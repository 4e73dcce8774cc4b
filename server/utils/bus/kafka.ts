import { Kafka, logLevel, Partitioners, type Consumer, type LogEntry } from 'kafkajs'
import { log } from '../log'
import { redeliveryDelay, type Bus, type BusConsumer, type BusMessage, type ConsumeOptions } from './types'

const JOIN_TIMEOUT_MS = 30_000
const MAX_REQUEST_BYTES = 512 * 1024
// A commit is a round trip to the group coordinator: once per batch it paced the whole consumer.
// Up to this much may be redelivered after a crash or a rebalance; the persister's writes are
// idempotent, so a redelivery costs a lookup, not a duplicate.
const COMMIT_INTERVAL_MS = 1000

// kafkajs logs through its own creator; route it into ours so production logs stay one JSON per line.
function logCreator() {
  return ({ level, log: entry }: LogEntry) => {
    const { message, ...fields } = entry
    const text = `kafka: ${message}`
    if (level <= logLevel.ERROR) log.error(text, fields)
    else if (level === logLevel.WARN) log.warn(text, fields)
  }
}

/** Kafka through kafkajs: acks from all in-sync replicas, an idempotent producer, manual commits. */
export function createKafkaBus(brokers: string[], clientId = 'natter'): Bus {
  const kafka = new Kafka({
    clientId,
    brokers,
    logLevel: logLevel.WARN,
    logCreator,
    retry: { initialRetryTime: 100, maxRetryTime: 2000, retries: 6 }
  })
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner
  })
  const admin = kafka.admin()
  // Each running consumer's stop, which commits what it has processed before leaving.
  const consumers = new Map<Consumer, () => Promise<void>>()
  let producerReady: Promise<void> | undefined
  let adminReady: Promise<void> | undefined

  const connectProducer = () => (producerReady ??= producer.connect().catch((error) => {
    producerReady = undefined
    throw error
  }))
  const connectAdmin = () => (adminReady ??= admin.connect().catch((error) => {
    adminReady = undefined
    throw error
  }))

  // Group commit for sends: the idempotent producer keeps one request in flight, so sends that
  // arrive while one is on its way go together in the next request instead of queueing one by
  // one behind it. Alone, a send goes at once; under load, requests grow instead of the queue.
  // Order holds: a batch keeps arrival order, and batches go one after another.
  let waiting: Array<{ topic: string, messages: BusMessage[], bytes: number, settle: (error?: unknown) => void }> = []
  let sending = false

  function publish(topic: string, messages: BusMessage[]): Promise<void> {
    const bytes = messages.reduce((sum, message) => sum + message.key.length + message.value.length + 64, 0)
    return new Promise<void>((resolve, reject) => {
      waiting.push({ topic, messages, bytes, settle: error => (error === undefined ? resolve() : reject(error)) })
      if (!sending) void sendWaiting()
    })
  }

  async function sendWaiting() {
    sending = true
    while (waiting.length) {
      // Well under the broker's 1 MB per partition batch (message.max.bytes), whatever the keys.
      let size = 0
      let count = 0
      while (count < waiting.length && (count === 0 || size + waiting[count]!.bytes <= MAX_REQUEST_BYTES)) size += waiting[count++]!.bytes
      const batch = waiting.slice(0, count)
      waiting = waiting.slice(count)
      const byTopic = new Map<string, BusMessage[]>()
      for (const item of batch) {
        const list = byTopic.get(item.topic) ?? []
        list.push(...item.messages)
        byTopic.set(item.topic, list)
      }
      try {
        await connectProducer()
        await producer.sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) })
        for (const item of batch) item.settle()
      }
      catch (error) {
        for (const item of batch) item.settle(error ?? new Error('kafka: send failed'))
      }
    }
    sending = false
  }

  async function consume(options: ConsumeOptions): Promise<BusConsumer> {
    const consumer = kafka.consumer({
      groupId: options.group,
      maxWaitTimeInMs: 100,
      // A crashed member's partitions wait this long for a new owner: 10 s, not the default 30.
      // The redelivery loop heartbeats between attempts, so a database outage does not evict.
      sessionTimeout: 10_000,
      heartbeatInterval: 1000,
      allowAutoTopicCreation: false
    })
    consumers.set(consumer, () => consumer.disconnect())
    await consumer.connect()
    await consumer.subscribe({ topic: options.topic, fromBeginning: options.fromBeginning ?? false })
    const joined = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`kafka: group ${options.group} did not join within ${JOIN_TIMEOUT_MS} ms`)), JOIN_TIMEOUT_MS)
      const off = consumer.on(consumer.events.GROUP_JOIN, () => {
        clearTimeout(timer)
        off()
        resolve()
      })
    })
    // Processed but not yet committed, by partition: the offset to resume from.
    const pending = new Map<number, string>()
    let lastCommit = Date.now()
    let closing = false
    // When traffic stops, what is pending still gets committed within the interval.
    let later: NodeJS.Timeout | undefined
    async function commitPending() {
      clearTimeout(later)
      later = undefined
      if (!pending.size) return
      const offsets = [...pending].map(([partition, offset]) => ({ topic: options.topic, partition, offset }))
      pending.clear()
      lastCommit = Date.now()
      try {
        await consumer.commitOffsets(offsets)
      }
      catch (error) {
        // Most likely a rebalance under way; the next commit carries these unless a newer one
        // replaced them, and a new owner of the partition resumes from the last commit that held.
        for (const { partition, offset } of offsets) if (!pending.has(partition)) pending.set(partition, offset)
        log.warn('bus: offset commit failed, retrying with the next batch', { topic: options.topic, group: options.group, error })
      }
    }
    // After a rebalance the partitions may belong to another member, which starts from the last
    // commit: what this member still holds is no longer its to commit.
    consumer.on(consumer.events.GROUP_JOIN, () => pending.clear())
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      // One worker per partition of chat.messages, so a fetch's batches are stored side by side.
      partitionsConsumedConcurrently: 8,
      eachBatch: async ({ batch, heartbeat, isRunning, isStale, resolveOffset }) => {
        if (batch.messages.length === 0) return
        const records = batch.messages.map(message => ({
          topic: batch.topic,
          partition: batch.partition,
          offset: message.offset,
          timestamp: Number(message.timestamp),
          key: message.key?.toString() ?? '',
          value: message.value?.toString() ?? ''
        }))
        // Retry here rather than throw into kafkajs: the same records come again, and the
        // heartbeat keeps this member in the group while, say, PostgreSQL is down.
        for (let attempt = 0; ; attempt++) {
          if (!isRunning() || isStale()) return
          try {
            await options.onBatch(records)
            break
          }
          catch (error) {
            log.warn('bus: handler failed, redelivering', { topic: batch.topic, group: options.group, partition: batch.partition, attempt, error })
            await new Promise(resolve => setTimeout(resolve, redeliveryDelay(attempt)))
            await heartbeat()
          }
        }
        // Resolving moves kafkajs' fetch position; committing makes it survive this member.
        resolveOffset(batch.lastOffset())
        pending.set(batch.partition, (BigInt(batch.lastOffset()) + BigInt(1)).toString())
        const wait = COMMIT_INTERVAL_MS - (Date.now() - lastCommit)
        if (closing || wait <= 0) await commitPending()
        else later ??= setTimeout(() => void commitPending(), wait).unref()
      }
    })
    try {
      await joined
    }
    catch (error) {
      consumers.delete(consumer)
      await consumer.disconnect().catch(() => {})
      throw error
    }
    async function stop() {
      if (!consumers.delete(consumer)) return
      // A clean stop hands over exactly where it got to: batches still running commit as they end.
      closing = true
      await commitPending()
      await consumer.disconnect()
    }
    consumers.set(consumer, stop)
    return { stop }
  }

  return {
    mode: 'kafka',
    async ensureTopics(specs) {
      await connectAdmin()
      const existing = new Set(await admin.listTopics())
      const missing = specs.filter(spec => !existing.has(spec.topic))
      if (missing.length) {
        await admin.createTopics({
          waitForLeaders: true,
          topics: missing.map(spec => ({
            topic: spec.topic,
            numPartitions: spec.partitions,
            replicationFactor: 1,
            configEntries: Object.entries(spec.config ?? {}).map(([name, value]) => ({ name, value }))
          }))
        })
      }
      // Existing topics get today's config too, so a changed retention applies without a manual step.
      const present = specs.filter(spec => existing.has(spec.topic) && spec.config)
      if (present.length) {
        await admin.alterConfigs({
          validateOnly: false,
          resources: present.map(spec => ({
            type: 2, // TOPIC
            name: spec.topic,
            configEntries: Object.entries(spec.config!).map(([name, value]) => ({ name, value }))
          }))
        })
      }
    },
    publish,
    consume,
    async lag(topic, group) {
      await connectAdmin()
      const [ends, [committed]] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId: group, topics: [topic] })])
      const done = new Map(committed?.partitions.map(p => [p.partition, Number(p.offset)]) ?? [])
      // A partition the group never committed counts from its low watermark (-1 means none yet).
      return ends.reduce((sum, end) => {
        const at = done.get(end.partition) ?? -1
        return sum + Number(end.high) - (at < 0 ? Number(end.low) : at)
      }, 0)
    },
    async ping() {
      await connectAdmin()
      await withTimeout(admin.describeCluster(), 2000, 'kafka did not answer within 2 s')
    },
    async close() {
      await Promise.allSettled([...consumers.values()].map(stop => stop()))
      consumers.clear()
      await Promise.allSettled([producer.disconnect(), admin.disconnect()])
    }
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms)
    })
  ])
}
