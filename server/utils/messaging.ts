import { useBackends, type Backends } from './backends'
import type { BusConsumer } from './bus/types'
import { fanOut } from './fanout'
import { log } from './log'
import { ensureMessagePartitions } from './partitions'
import { measureBusLag } from './metrics'
import { DELIVERY_CHANNEL, MESSAGES_TOPIC, PERSISTER_GROUP, startPersister, type Delivery } from './persister'
import { lastSocketClosed, socketOpened, startPresence } from './presence'
import { startReceipts } from './receipts'
import { SESSION_REVOKED_CHANNEL } from './sessions'
import { publishTyping, startTyping } from './typing'
import { allSockets, registerSocket, unregisterSocket, type ChatSocket } from './sockets'
import { useConfig } from './config'

const lifecycle = new Set<() => Promise<void>>()
let accepting = true
let running = false

/** True once this instance persists, fans out and tracks presence: readiness waits for it. */
export function pipelineRunning() {
  return running
}

/** Starts this instance's share of the pipeline: partitions, the persister, the fanout. */
export async function startMessaging(backends: Backends) {
  accepting = true
  await backends.bus.ensureTopics([{
    topic: MESSAGES_TOPIC,
    partitions: 8,
    config: {
      'retention.ms': String(useConfig().retentionDays * 24 * 3600_000),
      // Segments roll daily so Kafka can delete expired ones on time.
      'segment.ms': String(24 * 3600_000)
    }
  }])
  await ensureMessagePartitions(backends.database.db)
  const persister: BusConsumer = await startPersister(backends)
  lifecycle.add(() => persister.stop())
  measureBusLag(() => backends.bus.lag(MESSAGES_TOPIC, PERSISTER_GROUP))
  const stopDeliveries = await backends.store.subscribe(DELIVERY_CHANNEL, (text) => {
    try {
      fanOut(JSON.parse(text) as Delivery[])
    }
    catch (error) {
      log.error('fanout: unreadable delivery', { error })
    }
  })
  lifecycle.add(stopDeliveries)
  // Sign-out anywhere closes that session's sockets here.
  const stopRevocations = await backends.store.subscribe(SESSION_REVOKED_CHANNEL, (sessionId) => {
    for (const socket of allSockets()) if (socket.sessionId === sessionId) socket.close(4401, 'signed out')
  })
  lifecycle.add(stopRevocations)
  lifecycle.add(await startPresence(backends))
  lifecycle.add(await startTyping(backends))
  lifecycle.add(await startReceipts(backends))
  running = true
  log.info('messaging: persister, fanout, presence, typing and receipts running')
}

/** Stops whatever part of the pipeline has started (also after a failed start, before a retry). */
export async function stopPipeline() {
  running = false
  const steps = [...lifecycle]
  lifecycle.clear()
  await Promise.allSettled(steps.map(step => step()))
}

/**
 * Graceful stop: refuse new sockets, close the open ones with 1012 so clients reconnect to
 * another instance, then let the persister finish and commit its batch.
 */
export async function stopMessaging() {
  accepting = false
  for (const socket of [...allSockets()]) socket.close(1012, 'service restart')
  await stopPipeline()
}

export async function onSocketOpened(socket: ChatSocket) {
  if (!accepting) return socket.close(1012, 'service restart')
  registerSocket(socket)
  await socketOpened(await useBackends(), socket)
}

/** True when it was the person's last socket on this instance. */
export async function onSocketClosed(socket: ChatSocket): Promise<boolean> {
  const last = unregisterSocket(socket)
  const backends = await useBackends()
  if (socket.typingTo) await publishTyping(backends, socket, socket.typingTo, false)
  // During a graceful stop the person is not gone: their client reconnects to another instance.
  if (last && accepting) await lastSocketClosed(backends, socket.userId)
  return last
}
