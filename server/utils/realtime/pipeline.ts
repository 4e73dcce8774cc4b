import { useBackends, type Backends } from '../backends'
import { useConfig } from '../config'
import { log } from '../log'
import { measureBusLag } from '../metrics'
import { startMessageDelivery } from '../messages/delivery'
import { CONVERSATIONS_TOPIC, PERSISTER_GROUP, startPersister } from '../messages/persister'
import { lastSocketClosed, socketOpened, startPresence, unwatch } from '../presence/presence'
import { ensureMessagePartitions } from '../retention/partitions'
import { SESSION_REVOKED_CHANNEL } from '../sessions'
import { publishTyping, startTyping } from '../typing/typing'
import { startBroadcast } from './broadcast'
import { forgetMemberships, loadMemberships } from './membership'
import { allSockets, registerSocket, unregisterSocket, type ChatSocket } from './sockets'

const lifecycle = new Set<() => Promise<void>>()
let accepting = true
let running = false

/** True once this instance persists, broadcasts and tracks presence: readiness waits for it. */
export function pipelineRunning() {
  return running
}

/** Starts this instance's share of the realtime spine: the bus topic, the persister, the broadcast. */
export async function startPipeline(backends: Backends) {
  accepting = true
  await backends.bus.ensureTopics([{
    topic: CONVERSATIONS_TOPIC,
    partitions: 8,
    config: {
      'retention.ms': String(useConfig().retentionDays * 24 * 3600_000),
      // Segments roll daily so Kafka can delete expired ones on time.
      'segment.ms': String(24 * 3600_000)
    }
  }])
  await ensureMessagePartitions(backends.database.db)
  // The broadcast first: the persister's first batch is delivered through it.
  lifecycle.add(await startBroadcast(backends.store))
  lifecycle.add(startMessageDelivery())
  lifecycle.add(startTyping())
  lifecycle.add(await startPresence(backends))
  const persister = await startPersister(backends)
  lifecycle.add(() => persister.stop())
  measureBusLag(() => backends.bus.lag(CONVERSATIONS_TOPIC, PERSISTER_GROUP))
  // Sign-out anywhere closes that session's sockets here.
  lifecycle.add(await backends.store.subscribe(SESSION_REVOKED_CHANNEL, (sessionId) => {
    for (const socket of allSockets()) if (socket.sessionId === sessionId) socket.close(4401, 'signed out')
  }))
  running = true
  log.info('pipeline: persister, broadcast, presence and typing running')
}

/** Stops whatever part of the pipeline has started (also after a failed start, before a retry). */
export async function stopPipeline() {
  running = false
  const steps = [...lifecycle].reverse()
  lifecycle.clear()
  for (const step of steps) await step().catch(error => log.warn('pipeline: a part did not stop cleanly', { error }))
}

/**
 * Graceful stop: refuse new sockets, close the open ones with 1012 so clients reconnect to
 * another instance, then let the persister finish and commit its batch.
 */
export async function stopAccepting() {
  accepting = false
  for (const socket of [...allSockets()]) socket.close(1012, 'service restart')
  await stopPipeline()
}

export async function onSocketOpened(socket: ChatSocket) {
  if (!accepting) return socket.close(1012, 'service restart')
  registerSocket(socket)
  const backends = await useBackends()
  // Before any frame of this socket is handled: membership answers them without the database.
  await loadMemberships(backends.database.db, socket.userId)
  await socketOpened(backends, socket)
}

/** True when it was the person's last socket on this instance. */
export async function onSocketClosed(socket: ChatSocket): Promise<boolean> {
  const last = unregisterSocket(socket)
  unwatch(socket)
  if (socket.typingIn) await publishTyping(socket, socket.typingIn, false)
  if (!last) return false
  forgetMemberships(socket.userId)
  // During a graceful stop the person is not gone: their client reconnects to another instance.
  if (accepting) await lastSocketClosed(await useBackends(), socket.userId)
  return true
}
