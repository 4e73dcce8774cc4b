export interface BusMessage {
  /** Messages with one key keep their order: the key picks the partition. */
  key: string
  value: string
}

export interface BusRecord extends BusMessage {
  topic: string
  partition: number
  offset: string
  timestamp: number
}

export interface TopicSpec {
  topic: string
  partitions: number
  /** Kafka topic configs, e.g. retention.ms; the in-process bus keeps nothing past the last commit anyway. */
  config?: Record<string, string>
}

export interface ConsumeOptions {
  topic: string
  /** Members of one group share the partitions; every group sees every message. */
  group: string
  fromBeginning?: boolean
  /**
   * Called with records of one partition, in order. The offsets are committed only after it
   * resolves; when it throws, the same records come again (at-least-once).
   */
  onBatch: (records: BusRecord[]) => Promise<void>
}

export interface BusConsumer {
  stop(): Promise<void>
}

export interface Bus {
  readonly mode: 'kafka' | 'in-process'
  ensureTopics(topics: TopicSpec[]): Promise<void>
  /** Resolves once every message is durable (Kafka: acknowledged by all in-sync replicas). */
  publish(topic: string, messages: BusMessage[]): Promise<void>
  /** Resolves once the consumer has joined its group and owns its partitions. */
  consume(options: ConsumeOptions): Promise<BusConsumer>
  /** Records published to the topic that the group has not committed yet. */
  lag(topic: string, group: string): Promise<number>
  ping(): Promise<void>
  close(): Promise<void>
}

/** Wait before redelivering a batch whose handler failed: 100 ms doubling to 5 s. */
export function redeliveryDelay(attempt: number): number {
  return Math.min(5000, 100 * 2 ** Math.min(attempt, 6))
}

/** The same bus with its topic and group names prefixed, so deployments sharing a broker never meet. */
export function namespaced(bus: Bus, namespace: string | undefined): Bus {
  if (!namespace) return bus
  const name = (topic: string) => `${namespace}.${topic}`
  return {
    mode: bus.mode,
    ensureTopics: specs => bus.ensureTopics(specs.map(spec => ({ ...spec, topic: name(spec.topic) }))),
    publish: (topic, messages) => bus.publish(name(topic), messages),
    consume: options => bus.consume({ ...options, topic: name(options.topic), group: name(options.group) }),
    lag: (topic, group) => bus.lag(name(topic), name(group)),
    ping: () => bus.ping(),
    close: () => bus.close()
  }
}
