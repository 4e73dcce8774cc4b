import { Gauge } from 'prom-client'
import { metrics } from '../metrics'
import { instanceId } from '../realtime/sockets'

/**
 * Backpressure for chat.send. Each instance remembers the sends it put on the bus until their
 * delivery comes back (persisted), oldest first, and how fast deliveries have been coming back.
 * A new send is refused at once with rate_limited (clients wait a second and send again, with the
 * same clientId) when the sends already waiting would take more than BACKLOG_SECONDS to come
 * back at that pace, or when the pipeline is stuck: sends have waited over MAX_WAIT_MS and nothing at
 * all came back in that time (a database outage). Stuck is judged from the pipeline's progress,
 * never from how many sends are late: one person's sends that the persister refuses settle at
 * once (with an error frame), and must not make everyone else wait. Queueing without bound
 * instead, the first overload run saw acks 27 s behind and the accepted rate fall to half of what
 * the instance can persist.
 */
export const MAX_WAIT_MS = 5000
const BACKLOG_SECONDS = 2
// Below this many waiting, never refuse: a burst of reconnecting outboxes after a quiet spell.
const MIN_WAITING = 1000
// A delivery lost on the way (pub/sub is best effort) must not hold sends back for ever: the client
// sends such a message again anyway.
const FORGET_AFTER_MS = 30_000

const waiting = new Map<string, number>()
// Deliveries back per second, smoothed over about two seconds.
let pace = 0
let settledSince = 0
let paceFrom = Date.now()
// When a send of this instance last came back: the pipeline's own sign of life.
let progressAt = Date.now()

new Gauge({
  name: 'natter_sends_waiting',
  help: 'chat.send frames this instance put on the bus that are not persisted yet',
  registers: [metrics],
  collect() {
    this.set(waiting.size)
  }
})

function settledPerSecond(now: number): number {
  const elapsed = now - paceFrom
  if (elapsed >= 1000) {
    const current = settledSince * 1000 / elapsed
    pace = pace ? (pace + current) / 2 : current
    settledSince = 0
    paceFrom = now
  }
  return pace
}

/** Whether a new send may go on the bus now. */
export function acceptingSends(now = Date.now()): boolean {
  if (waiting.size >= Math.max(MIN_WAITING, settledPerSecond(now) * BACKLOG_SECONDS)) return false
  for (const [key, at] of waiting) {
    if (now - at < FORGET_AFTER_MS) break
    waiting.delete(key)
  }
  const oldest = waiting.values().next()
  return oldest.done || now - oldest.value < MAX_WAIT_MS || now - progressAt < MAX_WAIT_MS
}

/** A send is about to go on the bus from one of this instance's sockets (before, so that even a delivery faster than the publish's own answer finds it). */
export function sendWaiting(origin: string, clientId: string, at = Date.now()) {
  waiting.set(`${origin}/${clientId}`, at)
}

/**
 * A delivery came back persisted, or the bus refused the send: it waits no more. Sends accepted
 * more than MAX_WAIT_MS before this one and still waiting lost their delivery on the way (Redis
 * restarted under them): they are forgotten now, not held against new sends for FORGET_AFTER_MS.
 */
export function sendSettled(origin: string, clientId: string, now = Date.now()) {
  if (!origin.startsWith(`${instanceId}:`)) return
  const key = `${origin}/${clientId}`
  const at = waiting.get(key)
  if (at === undefined) return
  waiting.delete(key)
  settledSince++
  progressAt = now
  for (const [older, when] of waiting) {
    if (when >= at - MAX_WAIT_MS) break
    waiting.delete(older)
  }
}
