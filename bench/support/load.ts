import { randomBytes } from 'node:crypto'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { build, type Histogram } from 'hdr-histogram-js'
import { WebSocket } from 'ws'
import type { BenchUser } from '../seed'
import { sleep } from './procs'

/** Where one bench person's socket goes: Natter (cookie + Origin) or the relay (id in the URL). */
export interface Target {
  label: string
  url(user: BenchUser, index: number): string
  headers(user: BenchUser, index: number): Record<string, string>
}

export interface Step { rate: number, seconds: number }

export interface LoadOptions {
  users: BenchUser[]
  target: Target
  /** Open loop: each step sends `rate` messages a second, round-robin over the people. */
  steps: Step[]
  warmupSeconds: number
  bodyChars: number
  /** After the last send: how long to wait for the answers still due. */
  drainMs: number
  /** Between ramp steps: the backlog of one step must not land in the next one's figures. */
  settleMs: number
  /** The app-level ping every socket sends, as the browser client does (25 s). */
  pingEveryMs: number
  /** Asked after each step; true ends the ramp. */
  stopAfter?: (step: StepStats, index: number) => boolean
  /** Called once every socket is open, before the first message: a moment to sample the server. */
  afterOpen?: () => Promise<void>
  /** Socket i goes out from this local address (more than ~28k sockets need several). */
  localAddress?: (index: number) => string | undefined
  log?: (line: string) => void
}

export interface Percentiles { count: number, mean: number, p50: number, p90: number, p99: number, p999: number, max: number }

export interface StepStats {
  rate: number
  seconds: number
  sent: number
  acked: number
  received: number
  errors: Record<string, number>
  unanswered: number
  ackedNotReceived: number
  /** Per second over the step's window, by arrival time. */
  ackedPerSecond: number
  deliveredPerSecond: number
  ack: Percentiles
  receive: Percentiles
  /** Send → the server's acceptance time (the ack's timestamp, same machine clock): the wait before the gateway took the frame. */
  toGateway: Percentiles
  /** The ack's timestamp → the ack: bus, persister and fanout. */
  gatewayToAck: Percentiles
  /** The backlog did not drain within settleMs after the step. */
  backlogged: boolean
}

export interface SecondStats { second: number, sent: number, acked: number, delivered: number, receive: Percentiles, ack: Percentiles }

export interface LoadResult {
  target: string
  sockets: number
  connectSeconds: number
  connect: Percentiles
  startedAt: number
  /** When the first measured step began (after the warm-up): second 0 of perSecond. */
  measuredAt: number
  endedAt: number
  steps: StepStats[]
  /** Everything after the warm-up, all steps together. */
  total: StepStats
  /** Every message, the warm-up's too: what the loss count is about. */
  all: { sent: number, acked: number, received: number, unanswered: number, ackedNotReceived: number, errors: Record<string, number> }
  perSecond: SecondStats[]
  duplicates: { acks: number, receives: number, misdirected: number }
  pings: { sent: number, pongs: number, rtt: Percentiles }
  otherFrames: Record<string, number>
  closedEarly: number
  /** The generator's own health: if its event loop lags, the figures are the generator's. */
  generator: { loopDelayP99Ms: number, loopDelayMaxMs: number, scheduleLagP99Ms: number, cpuSeconds: number }
  /** Message ids acknowledged, per conversation: what the database must hold. */
  ackedIds: Map<string, string[]>
}

export function histogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 })
}

/** Latencies are recorded in microseconds and reported in milliseconds. */
export function percentiles(h: Histogram): Percentiles {
  const ms = (value: number) => Math.round(value) / 1000
  if (!h.totalCount) return { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 }
  return {
    count: h.totalCount,
    mean: ms(h.mean),
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue)
  }
}

const FILLER = 'the quick brown fox jumps over the lazy dog and then naps in the warm afternoon sun '.repeat(60)
const ERROR_CODES = ['', 'rate_limited', 'unavailable', 'internal', 'not_a_contact', 'invalid_frame', 'invalid_json', 'unknown_type', 'frame_too_large', 'other']

/**
 * Opens one socket per person, `concurrency` upgrades at a time. The first refusal stops new
 * upgrades; the sockets already open are returned with the reason, so they can be closed.
 */
export async function openSockets(users: BenchUser[], target: Target, concurrency = 100, localAddress?: (index: number) => string | undefined, offset = 0): Promise<{ sockets: WebSocket[], connect: Histogram, seconds: number, failed?: string }> {
  const sockets: WebSocket[] = []
  const connect = histogram()
  const started = performance.now()
  let next = 0
  let failed: string | undefined
  await Promise.all(Array.from({ length: Math.min(concurrency, users.length) }, async () => {
    while (next < users.length && !failed) {
      const index = next++
      const user = users[index]!
      const at = performance.now()
      const ws = new WebSocket(target.url(user, index + offset), { headers: target.headers(user, index + offset), perMessageDeflate: false, localAddress: localAddress?.(index + offset), handshakeTimeout: 30_000 })
      try {
        await new Promise<void>((resolve, reject) => {
          ws.once('open', () => resolve())
          ws.once('unexpected-response', (_request, response) => reject(new Error(`${target.label}: upgrade refused with ${response.statusCode} for socket ${index + offset}`)))
          ws.once('error', error => reject(new Error(`${target.label}: socket ${index + offset}: ${error.message}`)))
        })
      }
      catch (error) {
        failed ??= error instanceof Error ? error.message : String(error)
        ws.terminate()
        return
      }
      connect.recordValue(Math.max(1, Math.round((performance.now() - at) * 1000)))
      sockets[index] = ws
    }
  }))
  return { sockets: sockets.filter(Boolean), connect, seconds: (performance.now() - started) / 1000, failed }
}

export async function closeSockets(sockets: WebSocket[]) {
  const closing = sockets.filter(Boolean).map(ws => new Promise<void>((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve()
    const timer = setTimeout(() => {
      ws.terminate()
      resolve()
    }, 3000)
    ws.once('close', () => {
      clearTimeout(timer)
      resolve()
    })
    ws.close(1000, 'bench done')
  }))
  await Promise.all(closing)
}

/**
 * Drives chat.send frames open-loop and times every message from the moment its frame is handed
 * to the socket to its chat.ack (sender) and its chat.receive (recipient). The hot path only
 * stores timestamps; every figure is computed afterwards.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { users, target } = options
  const log = options.log ?? (() => {})
  const capacity = Math.ceil(options.steps.reduce((sum, step) => sum + step.rate * step.seconds, 0) + (options.steps[0]?.rate ?? 0) * options.warmupSeconds) + 16
  const sentAt = new Float64Array(capacity)
  const ackAt = new Float64Array(capacity)
  const recvAt = new Float64Array(capacity)
  const acceptedAt = new Float64Array(capacity)
  const timeOrigin = performance.timeOrigin
  const stepOf = new Int16Array(capacity)
  const errorOf = new Uint8Array(capacity)
  const senderOf = new Int32Array(capacity)
  const idOf: string[] = []
  const errorCounts = new Map<string, number>()
  const duplicates = { acks: 0, receives: 0, misdirected: 0 }
  const otherFrames: Record<string, number> = {}
  const pingRtt = histogram()
  const pings = { sent: 0, pongs: 0 }
  const pingAt = new Float64Array(users.length)
  let closedEarly = 0
  let finished = false

  // A client id per message that carries its index: no map lookups on the hot path.
  const prefix = (() => {
    const hex = randomBytes(8).toString('hex')
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(12, 15)}-8${hex.slice(0, 3)}-`
  })()
  const indexOfClientId = (clientId: unknown) => (typeof clientId === 'string' && clientId.startsWith(prefix) ? Number.parseInt(clientId.slice(24), 16) : -1)

  const opened = await openSockets(users, target, 100, options.localAddress)
  if (opened.failed) {
    await closeSockets(opened.sockets)
    throw new Error(opened.failed)
  }
  const sockets = opened.sockets
  log(`${target.label}: ${sockets.length} sockets open in ${opened.seconds.toFixed(1)} s`)
  await options.afterOpen?.()

  sockets.forEach((ws, me) => {
    const myId = users[me]!.id
    ws.on('close', () => {
      if (!finished) closedEarly++
    })
    ws.on('message', (data) => {
      const now = performance.now()
      const frame = JSON.parse(String(data))
      switch (frame.type) {
        case 'chat.ack': {
          const index = indexOfClientId(frame.clientId)
          if (index < 0) return
          if (ackAt[index]) {
            duplicates.acks++
            return
          }
          ackAt[index] = now
          acceptedAt[index] = Date.parse(frame.timestamp) - timeOrigin
          idOf[index] = `${frame.conversationId}/${frame.id}`
          return
        }
        case 'chat.receive': {
          if (frame.from === myId) return
          if (frame.to !== myId) duplicates.misdirected++
          const body = frame.body as string
          const index = body.charCodeAt(0) === 35 ? Number.parseInt(body.slice(1, body.indexOf(' ')), 10) : -1
          if (!(index >= 0 && index < capacity)) return
          if (recvAt[index]) {
            duplicates.receives++
            return
          }
          recvAt[index] = now
          return
        }
        case 'error': {
          const code = ERROR_CODES.includes(frame.code) ? frame.code : 'other'
          const index = indexOfClientId(frame.ref)
          if (index >= 0 && !errorOf[index]) errorOf[index] = ERROR_CODES.indexOf(code)
          else errorCounts.set(`${code} (no ref)`, (errorCounts.get(`${code} (no ref)`) ?? 0) + 1)
          return
        }
        case 'pong':
          pings.pongs++
          if (pingAt[me]) pingRtt.recordValue(Math.max(1, Math.round((now - pingAt[me]) * 1000)))
          pingAt[me] = 0
          return
        default:
          otherFrames[frame.type] = (otherFrames[frame.type] ?? 0) + 1
      }
    })
  })

  // Each person writes to their partner; a shuffled round-robin spaces each one's messages evenly.
  const order = users.map((_, index) => index)
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[order[i], order[j]] = [order[j]!, order[i]!]
  }
  const heads = users.map(user => `{"type":"chat.send","to":"${users[user.partner]!.id}","body":"#`)
  const filler = FILLER.slice(0, Math.max(1, options.bodyChars - 8))
  let count = 0
  let turn = 0
  const scheduleLag = histogram()

  function send(step: number) {
    const sender = order[turn++ % order.length]!
    const ws = sockets[sender]!
    const index = count++
    const clientId = prefix + index.toString(16).padStart(12, '0')
    sentAt[index] = performance.now()
    stepOf[index] = step
    senderOf[index] = sender
    ws.send(`${heads[sender]}${index} ${filler}","clientId":"${clientId}"}`)
  }

  const pinger = setInterval(() => {
    // Every socket pings once per pingEveryMs, spread over the interval in 100 ms slices.
    const slice = Math.ceil(sockets.length / (options.pingEveryMs / 100))
    const now = performance.now()
    for (let k = 0; k < slice; k++) {
      const index = (pings.sent + k) % sockets.length
      pingAt[index] = now
      sockets[index]!.send('{"type":"ping"}')
    }
    pings.sent += slice
  }, 100)

  const loop = monitorEventLoopDelay({ resolution: 10 })
  loop.enable()
  const cpuBefore = process.cpuUsage()

  async function drive(step: number, rate: number, seconds: number) {
    const begin = performance.now()
    const total = Math.round(rate * seconds)
    let done = 0
    while (done < total) {
      const elapsed = performance.now() - begin
      const due = Math.min(total, Math.floor((rate * elapsed) / 1000) + 1)
      while (done < due) {
        const intended = begin + (done * 1000) / rate
        scheduleLag.recordValue(Math.max(1, Math.round((performance.now() - intended) * 1000)))
        send(step)
        done++
      }
      await sleep(1)
    }
  }

  function outstanding(from: number, to: number) {
    let open = 0
    for (let i = from; i < to; i++) {
      if (errorOf[i]) continue
      if (!ackAt[i] || !recvAt[i]) open++
    }
    return open
  }

  async function settle(from: number, to: number, ms: number): Promise<boolean> {
    const deadline = performance.now() + ms
    while (performance.now() < deadline) {
      if (!outstanding(from, to)) return true
      await sleep(20)
    }
    return !outstanding(from, to)
  }

  const startedAt = performance.now()
  const stepBounds: Array<{ from: number, to: number, begin: number, end: number, backlogged: boolean }> = []
  if (options.warmupSeconds > 0 && options.steps.length) {
    const from = count
    await drive(-1, options.steps[0]!.rate, options.warmupSeconds)
    await settle(from, count, options.settleMs)
    log(`${target.label}: warm-up done (${count - from} messages)`)
  }
  const measuredFrom = count
  for (const [index, step] of options.steps.entries()) {
    const from = count
    const begin = performance.now()
    await drive(index, step.rate, step.seconds)
    const end = performance.now()
    const last = index === options.steps.length - 1
    const drained = await settle(from, count, last ? options.drainMs : options.settleMs)
    stepBounds.push({ from, to: count, begin, end, backlogged: !drained })
    const stats = stepStats(index)
    log(`${target.label}: ${step.rate} msg/s for ${step.seconds} s: acked ${stats.ackedPerSecond.toFixed(0)}/s, receive p50 ${stats.receive.p50} ms p99 ${stats.receive.p99} ms max ${stats.receive.max} ms, errors ${JSON.stringify(stats.errors)}${drained ? '' : ', backlog not drained'}`)
    if (!last && options.stopAfter?.(stats, index)) {
      log(`${target.label}: ramp stops after ${step.rate} msg/s`)
      break
    }
  }
  // Whatever is still due after the ramp stopped early gets the full drain time.
  await settle(measuredFrom, count, options.drainMs)
  const endedAt = performance.now()
  finished = true
  clearInterval(pinger)
  loop.disable()
  const cpu = process.cpuUsage(cpuBefore)
  await closeSockets(sockets)

  function errorsOf(from: number, to: number) {
    const errors: Record<string, number> = {}
    for (let i = from; i < to; i++) {
      if (!errorOf[i]) continue
      const code = ERROR_CODES[errorOf[i]!]!
      errors[code] = (errors[code] ?? 0) + 1
    }
    return errors
  }

  function statsBetween(from: number, to: number, begin: number, end: number, rate: number, seconds: number, backlogged: boolean): StepStats {
    const ack = histogram()
    const receive = histogram()
    const toGateway = histogram()
    const gatewayToAck = histogram()
    let acked = 0
    let received = 0
    let unanswered = 0
    let ackedNotReceived = 0
    let ackedInWindow = 0
    let deliveredInWindow = 0
    for (let i = from; i < to; i++) {
      if (ackAt[i]) {
        acked++
        ack.recordValue(Math.max(1, Math.round((ackAt[i]! - sentAt[i]!) * 1000)))
        if (acceptedAt[i]) {
          toGateway.recordValue(Math.max(1, Math.round((acceptedAt[i]! - sentAt[i]!) * 1000)))
          gatewayToAck.recordValue(Math.max(1, Math.round((ackAt[i]! - acceptedAt[i]!) * 1000)))
        }
        if (ackAt[i]! >= begin && ackAt[i]! < end) ackedInWindow++
        if (!recvAt[i]) ackedNotReceived++
      }
      else if (!errorOf[i]) {
        unanswered++
      }
      if (recvAt[i]) {
        received++
        receive.recordValue(Math.max(1, Math.round((recvAt[i]! - sentAt[i]!) * 1000)))
        if (recvAt[i]! >= begin && recvAt[i]! < end) deliveredInWindow++
      }
    }
    const window = (end - begin) / 1000
    return {
      rate,
      seconds,
      sent: to - from,
      acked,
      received,
      errors: errorsOf(from, to),
      unanswered,
      ackedNotReceived,
      ackedPerSecond: window > 0 ? ackedInWindow / window : 0,
      deliveredPerSecond: window > 0 ? deliveredInWindow / window : 0,
      ack: percentiles(ack),
      receive: percentiles(receive),
      toGateway: percentiles(toGateway),
      gatewayToAck: percentiles(gatewayToAck),
      backlogged
    }
  }

  function stepStats(index: number): StepStats {
    const bound = stepBounds[index]!
    const step = options.steps[index]!
    return statsBetween(bound.from, bound.to, bound.begin, bound.end, step.rate, step.seconds, bound.backlogged)
  }

  const steps = stepBounds.map((_, index) => stepStats(index))
  const first = stepBounds[0]
  const lastBound = stepBounds[stepBounds.length - 1]
  const total = first && lastBound
    ? statsBetween(first.from, lastBound.to, first.begin, lastBound.end, steps.reduce((sum, step) => sum + step.rate * step.seconds, 0) / steps.reduce((sum, step) => sum + step.seconds, 0), steps.reduce((sum, step) => sum + step.seconds, 0), steps.some(step => step.backlogged))
    : statsBetween(0, 0, 0, 0, 0, 0, false)
  for (const [key, value] of errorCounts) total.errors[key] = value
  const whole = statsBetween(0, count, startedAt, endedAt, 0, 0, false)
  const all = { sent: whole.sent, acked: whole.acked, received: whole.received, unanswered: whole.unanswered, ackedNotReceived: whole.ackedNotReceived, errors: whole.errors }

  // Per second of the measured run, by send time for latency and by arrival time for rates.
  const perSecond: SecondStats[] = []
  if (first) {
    const seconds = Math.ceil((endedAt - first.begin) / 1000)
    const rows = Array.from({ length: seconds }, (_, second) => ({ second, sent: 0, acked: 0, delivered: 0, ackH: histogram(), recvH: histogram() }))
    const row = (at: number) => rows[Math.floor((at - first.begin) / 1000)]
    for (let i = measuredFrom; i < count; i++) {
      const sentRow = row(sentAt[i]!)
      if (sentRow) {
        sentRow.sent++
        if (ackAt[i]) sentRow.ackH.recordValue(Math.max(1, Math.round((ackAt[i]! - sentAt[i]!) * 1000)))
        if (recvAt[i]) sentRow.recvH.recordValue(Math.max(1, Math.round((recvAt[i]! - sentAt[i]!) * 1000)))
      }
      if (ackAt[i]) {
        const ackRow = row(ackAt[i]!)
        if (ackRow) ackRow.acked++
      }
      if (recvAt[i]) {
        const recvRow = row(recvAt[i]!)
        if (recvRow) recvRow.delivered++
      }
    }
    for (const { second, sent, acked, delivered, ackH, recvH } of rows) {
      perSecond.push({ second, sent, acked, delivered, ack: percentiles(ackH), receive: percentiles(recvH) })
    }
  }

  const ackedIds = new Map<string, string[]>()
  for (let i = 0; i < count; i++) {
    if (!idOf[i]) continue
    const [conversationId, id] = idOf[i]!.split('/') as [string, string]
    const list = ackedIds.get(conversationId) ?? []
    list.push(id)
    ackedIds.set(conversationId, list)
  }

  return {
    target: target.label,
    sockets: sockets.length,
    connectSeconds: opened.seconds,
    connect: percentiles(opened.connect),
    startedAt,
    measuredAt: first?.begin ?? startedAt,
    endedAt,
    steps,
    total,
    all,
    perSecond,
    duplicates,
    pings: { ...pings, rtt: percentiles(pingRtt) },
    otherFrames,
    closedEarly,
    generator: {
      loopDelayP99Ms: Math.round(loop.percentile(99) / 1000) / 1000,
      loopDelayMaxMs: Math.round(loop.max / 1000) / 1000,
      scheduleLagP99Ms: percentiles(scheduleLag).p99,
      cpuSeconds: (cpu.user + cpu.system) / 1e6
    },
    ackedIds
  }
}
