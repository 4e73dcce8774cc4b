import { Kafka, logLevel, Partitioners, type Consumer, type LogEntry } from 'kafkajs'
import { log } from '../log'
import { redeliveryDelay, type Bus, type BusConsumer, type ConsumeOptions } from './types'

const JOIN_TIMEOUT_MS = 30_000

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
  const consumers = new Set<Consumer>()
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
    consumers.add(consumer)
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
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 4,
      eachBatch: async ({ batch, heartbeat, isRunning, isStale, resolveOffset, commitOffsetsIfNecessary }) => {
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
        const next = (BigInt(batch.lastOffset()) + 1n).toString()
        await commitOffsetsIfNecessary({ topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: next }] }] })
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
    return {
      async stop() {
        if (!consumers.delete(consumer)) return
        await consumer.disconnect()
      }
    }
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
    async publish(topic, messages) {
      await connectProducer()
      await producer.send({ topic, acks: -1, messages })
    },
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
      await Promise.allSettled([...consumers].map(consumer => consumer.disconnect()))
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
