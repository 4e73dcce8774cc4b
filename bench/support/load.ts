import { loadavg } from 'node:os'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { build, type Histogram } from 'hdr-histogram-js'
import { WebSocket } from 'ws'
import type { Method, SocketLike, Transport } from '#shared/sdk/api'
import { NatterClient } from '#shared/sdk/client'
import type { ChangeEntry } from '#shared/sdk/outbox'
import { NodeTransport } from '#shared/sdk/node'
import type { BenchConversation, BenchUser } from '../seed'
import { sleep } from './procs'

/**
 * How a bench person's protocol client reaches the server: the REST calls through NodeTransport
 * (the person's cookie and address), the socket opened here so that the bench can pick the local
 * address (more than ~28k sockets need several), see a refused upgrade's status, and time the
 * client's own pings as they leave.
 */
export class BenchTransport implements Transport {
  /** Why the last socket did not open (a refused upgrade's status, or the error). */
  failure?: string
  socket?: WebSocket
  private readonly http: NodeTransport

  constructor(readonly base: string, private readonly options: { cookie?: string, ip?: string, socketQuery?: string, localAddress?: string, onPing?: () => void }) {
    const cookies = new Map<string, string>()
    const [name, ...value] = (options.cookie ?? '').split('=')
    if (name && value.length) cookies.set(name, value.join('='))
    this.http = new NodeTransport(base, { cookies, headers: options.ip ? { 'x-forwarded-for': options.ip } : {} })
  }

  csrfToken() {
    return this.http.csrfToken()
  }

  fetch(path: string, init: { method: Method, headers: Record<string, string>, body?: string }) {
    return this.http.fetch(path, init)
  }

  openSocket(path: string): SocketLike {
    const cookie = this.http.cookieHeader()
    const ws = new WebSocket(`${this.base.replace(/^http/, 'ws')}${path}${this.options.socketQuery ?? ''}`, {
      headers: { origin: this.http.origin, ...(cookie && { cookie }) },
      perMessageDeflate: false,
      localAddress: this.options.localAddress,
      handshakeTimeout: 30_000
    })
    this.failure = undefined
    ws.once('error', (error) => {
      this.failure ??= error.message
    })
    const onPing = this.options.onPing
    if (onPing) {
      // The client's own ping, timed as it leaves: its pong is heard through client.on('pong').
      const send = ws.send.bind(ws) as (text: string) => void
      ws.send = ((text: string) => {
        if (text === PING) onPing()
        send(text)
      }) as typeof ws.send
    }
    this.socket = ws
    return ws as unknown as SocketLike
  }
}

const PING = '{"type":"ping"}'

/** Where bench person `index`'s client connects: Natter (cookie + Origin) or the relay (id in the URL). */
export interface Target {
  label: string
  transport(user: BenchUser, index: number, extra: { localAddress?: string, onPing?: () => void }): BenchTransport
  /** Told the run's conversations before any socket opens (the relay routes by them). */
  prepare?(users: BenchUser[], conversations: BenchConversation[]): Promise<void>
}

/** One bench person's tab: the page's protocol client and its transport. */
export interface BenchClient {
  natter: NatterClient
  transport: BenchTransport
}

/** Which conversation the `turn`-th message of a step goes to, and who writes it (indices). */
export type Route = (turn: number) => { sender: number, conversation: number }

export interface Step {
  rate: number
  seconds: number
  /** A name for the report (e.g. "rooms of 50 + direct", "1,000-member room"). */
  label?: string
  route: Route
  /** This fraction (0..1) of the step's operations are changes of recent messages instead of new ones, at the same total rate. */
  changes?: number
}

export interface LoadOptions {
  users: BenchUser[]
  conversations: BenchConversation[]
  target: Target
  /** Open loop: each step sends `rate` messages a second, as its route says. */
  steps: Step[]
  warmupSeconds: number
  bodyChars: number
  /** After the last send: how long to wait for the answers still due. */
  drainMs: number
  /** Between ramp steps: the backlog of one step must not land in the next one's figures. */
  settleMs: number
  /** The client's own ping (pingEveryMs), as the browser's (25 s). */
  pingEveryMs: number
  /** Asked after each step; true ends the ramp. */
  stopAfter?: (step: StepStats, index: number) => boolean
  /** Called once every client is connected, before the first message: a moment to sample the server. */
  afterOpen?: () => Promise<void>
  /** Client i's socket goes out from this local address. */
  localAddress?: (index: number) => string | undefined
  log?: (line: string) => void
}

export interface Percentiles { count: number, mean: number, p50: number, p90: number, p99: number, p999: number, max: number }

export const CHANGE_KINDS = ['react', 'edit', 'delete'] as const
export type ChangeKind = typeof CHANGE_KINDS[number]

/** Message changes (chat.react, chat.edit, chat.delete) of a step, as the protocol client sent them. */
export interface ChangeStats {
  sent: number
  kinds: Record<ChangeKind, number>
  /** Answered by change.ack; `noops` of them with seq null (nothing new: no chat.update is due). */
  acked: number
  noops: number
  /** Refused at least once, by the last code (retryable ones are sent again by the outbox). */
  refused: Record<string, number>
  /** Neither acknowledged nor refused for good after the drain. */
  unanswered: number
  /** Acknowledged with a seq, and some member (the one who made it included) never saw its chat.update. */
  ackedNotSeen: number
  /** chat.updates due (each applied change × every member) and seen. */
  deliveriesExpected: number
  deliveries: number
  missingDeliveries: number
  /** Change handed to the client → its change.ack. */
  ack: Percentiles
  /** Change handed to the client → chat.update, every other member of every change. */
  update: Percentiles
}

export interface StepStats {
  label?: string
  rate: number
  seconds: number
  /** When the step's sends began and ended (performance.now()): the window for CPU figures. */
  begin: number
  end: number
  sent: number
  acked: number
  /** Messages every other member received. */
  received: number
  /** Messages refused at least once, by the last code (the outbox sends retryable ones again). */
  errors: Record<string, number>
  /** Neither acknowledged nor refused for good after the drain. */
  unanswered: number
  /** Acknowledged, but some member never got it. */
  ackedNotReceived: number
  /** Deliveries due (each message × the other members) and made. */
  deliveriesExpected: number
  deliveries: number
  missingDeliveries: number
  /** Per second over the step's window, by arrival time. */
  ackedPerSecond: number
  deliveredPerSecond: number
  ack: Percentiles
  /** Send → chat.receive, every recipient of every message. */
  receive: Percentiles
  /** The same by kind of conversation. */
  receiveBy: Partial<Record<BenchConversation['kind'], Percentiles>>
  /** Send → the server's acceptance time (the ack's timestamp, same machine clock): the wait before the gateway took the frame. */
  toGateway: Percentiles
  /** The ack's timestamp → the ack: bus, persister and fanout. */
  gatewayToAck: Percentiles
  /** The backlog did not drain within settleMs after the step. */
  backlogged: boolean
  /** The machine's 1-minute load average as the step's sends ended: the box is shared. */
  loadAverage?: number
  /** When the step mixed message changes in: their counts and latency (the figures above are new messages only). */
  changes?: ChangeStats
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
  all: { sent: number, acked: number, received: number, unanswered: number, ackedNotReceived: number, missingDeliveries: number, deliveries: number, errors: Record<string, number>, changes?: ChangeStats }
  perSecond: SecondStats[]
  duplicates: { acks: number, misdirected: number }
  /** Stream gaps the client could not replay, and reconnects after the first open. */
  gaps: number
  reconnects: number
  pings: { sent: number, pongs: number, rtt: Percentiles }
  otherFrames: Record<string, number>
  /** Error frames that named no message of the run, by code. */
  unrefErrors: Record<string, number>
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

const micros = (ms: number) => Math.max(1, Math.round(ms * 1000))

const FILLER = 'the quick brown fox jumps over the lazy dog and then naps in the warm afternoon sun '.repeat(60)
const ERROR_CODES = ['', 'rate_limited', 'unavailable', 'internal', 'not_a_contact', 'not_found', 'forbidden', 'blocked', 'duplicate_client_id', 'invalid_frame', 'invalid_json', 'unknown_type', 'frame_too_large', 'other']
// What the outbox sends again by itself; any other refusal is final.
const RETRYABLE = new Set(['rate_limited', 'unavailable', 'internal'])
const OTHER_FRAMES = ['presence.update', 'typing.update', 'read.update', 'room.update'] as const
// A reaction toggles one of these (fewer than MAX_REACTIONS_PER_MESSAGE, so the cap is never met).
const EMOJI = ['👍', '😂', '🎉', '👀', '🔥']
// Of the changes: deletions, then edits (both of the person's own recent messages), the rest reactions.
const DELETE_SHARE = 0.05
const EDIT_SHARE = 0.25
// Recent messages a change can pick: per conversation, and per person (their own).
const RECENT_IN_CONVERSATION = 50
const RECENT_OWN = 5

export interface OpenOptions {
  /** The client's ping interval; a long one keeps the sockets idle. */
  pingEveryMs: number
  concurrency?: number
  localAddress?: (index: number) => string | undefined
  /** Client i is bench person `offset + i` (the target picks the instance by it). */
  offset?: number
  onPing?: (index: number) => void
}

/**
 * Starts one protocol client per person, `concurrency` at a time, each until its socket is open.
 * The first refusal stops new ones; the clients already open are returned with the reason, so
 * they can be stopped.
 */
export async function openClients(users: BenchUser[], target: Target, options: OpenOptions): Promise<{ clients: BenchClient[], connect: Histogram, seconds: number, failed?: string }> {
  const clients: BenchClient[] = []
  const connect = histogram()
  const started = performance.now()
  const offset = options.offset ?? 0
  let next = 0
  let failed: string | undefined
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 100, users.length) }, async () => {
    while (next < users.length && !failed) {
      const index = next++
      const user = users[index]!
      const at = performance.now()
      const onPing = options.onPing
      const transport = target.transport(user, index + offset, { localAddress: options.localAddress?.(index + offset), onPing: onPing && (() => onPing(index)) })
      const natter = new NatterClient({ transport, userId: user.id, pingEveryMs: options.pingEveryMs })
      const outcome = await new Promise<string | undefined>((resolve) => {
        const stop = natter.onState((state) => {
          if (state === 'connected' || state === 'reconnecting' || state === 'idle') {
            stop()
            resolve(state === 'connected' ? undefined : `${target.label}: socket ${index + offset}: ${transport.failure ?? state}`)
          }
        })
        natter.start()
      })
      if (outcome) {
        failed ??= outcome
        natter.stop()
        return
      }
      connect.recordValue(micros(performance.now() - at))
      clients[index] = { natter, transport }
    }
  }))
  return { clients: clients.filter(Boolean), connect, seconds: (performance.now() - started) / 1000, failed }
}

/** Stops every client (a 1000 close, as a closing tab) and waits for its socket to close. */
export async function closeClients(clients: BenchClient[]) {
  await Promise.all(clients.map(({ natter, transport }) => new Promise<void>((resolve) => {
    const ws = transport.socket
    natter.stop()
    if (!ws || ws.readyState === WebSocket.CLOSED) return resolve()
    const timer = setTimeout(() => {
      ws.terminate()
      resolve()
    }, 3000)
    ws.once('close', () => {
      clearTimeout(timer)
      resolve()
    })
  })))
}

/** Keeps the newest `keep` items of one key's list. */
function remember<T>(lists: Map<number, T[]>, key: number, item: T, keep: number) {
  let list = lists.get(key)
  if (!list) lists.set(key, list = [])
  list.push(item)
  if (list.length > keep) list.shift()
}

function forget<T extends { id: string }>(lists: Map<number, T[]>, key: number, id: string) {
  const list = lists.get(key)
  const at = list?.findIndex(item => item.id === id) ?? -1
  if (at >= 0) list!.splice(at, 1)
}

/** A growable list of (message, arrival) pairs: one per recipient of every message. */
class Deliveries {
  length = 0
  message = new Int32Array(1 << 16)
  at = new Float64Array(1 << 16)

  push(message: number, at: number) {
    if (this.length === this.message.length) {
      const message = new Int32Array(this.length * 2)
      message.set(this.message)
      this.message = message
      const arrival = new Float64Array(this.length * 2)
      arrival.set(this.at)
      this.at = arrival
    }
    this.message[this.length] = message
    this.at[this.length++] = at
  }
}

/**
 * Drives messages open-loop through each person's protocol client (`sendMessage`, its outbox)
 * and times every message from the moment it is handed to the client to its chat.ack (sender)
 * and to its chat.receive at every other member's client. The hot path only stores timestamps;
 * every figure is computed afterwards.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { users, target, conversations } = options
  const log = options.log ?? (() => {})
  const capacity = Math.ceil(options.steps.reduce((sum, step) => sum + step.rate * step.seconds, 0) + (options.steps[0]?.rate ?? 0) * options.warmupSeconds) + 16
  const sentAt = new Float64Array(capacity)
  const ackAt = new Float64Array(capacity)
  const acceptedAt = new Float64Array(capacity)
  const timeOrigin = performance.timeOrigin
  const stepOf = new Int16Array(capacity)
  const errorOf = new Uint8Array(capacity)
  const conversationOf = new Int32Array(capacity)
  const gotOf = new Uint16Array(capacity)
  const idOf: string[] = []
  const indexOfClientId = new Map<string, number>()
  // Message changes, indexed in the order they were handed to the clients.
  const changeSentAt = new Float64Array(capacity)
  const changeAckAt = new Float64Array(capacity)
  const changeNoop = new Uint8Array(capacity)
  const changeKindOf = new Uint8Array(capacity)
  const changeConversationOf = new Int32Array(capacity)
  const changeSeen = new Uint16Array(capacity)
  const changeRefusal: string[] = []
  const indexOfChangeId = new Map<string, number>()
  const updates = new Deliveries()
  // Acknowledged messages a change can pick, newest last; a deleted one leaves both lists.
  const recentIn = new Map<number, Array<{ id: string, sender: number }>>()
  const recentOwn = new Map<number, Array<{ id: string, conversation: number }>>()
  const reacted = new Set<string>()
  const deliveries = new Deliveries()
  const unrefErrors: Record<string, number> = {}
  const duplicates = { acks: 0, misdirected: 0 }
  const otherFrames: Record<string, number> = {}
  const pingRtt = histogram()
  const pings = { sent: 0, pongs: 0 }
  const pingAt = new Float64Array(users.length)
  let gaps = 0
  let reconnects = 0
  let finished = false

  await target.prepare?.(users, conversations)
  const opened = await openClients(users, target, {
    pingEveryMs: options.pingEveryMs,
    localAddress: options.localAddress,
    onPing: (me) => {
      pings.sent++
      pingAt[me] = performance.now()
    }
  })
  if (opened.failed) {
    await closeClients(opened.clients)
    throw new Error(opened.failed)
  }
  const clients = opened.clients
  log(`${target.label}: ${clients.length} clients connected in ${opened.seconds.toFixed(1)} s`)

  clients.forEach(({ natter }, me) => {
    const myId = users[me]!.id
    natter.onState((state) => {
      if (state === 'reconnecting' && !finished) reconnects++
    })
    natter.onGap(() => {
      gaps++
    })
    natter.on('chat.ack', (frame) => {
      const now = performance.now()
      const index = indexOfClientId.get(frame.clientId)
      if (index === undefined) return
      if (ackAt[index]) {
        duplicates.acks++
        return
      }
      ackAt[index] = now
      acceptedAt[index] = Date.parse(frame.timestamp) - timeOrigin
      idOf[index] = frame.id
      remember(recentIn, conversationOf[index]!, { id: frame.id, sender: me }, RECENT_IN_CONVERSATION)
      remember(recentOwn, me, { id: frame.id, conversation: conversationOf[index]! }, RECENT_OWN)
    })
    natter.on('change.ack', (frame) => {
      const now = performance.now()
      const index = indexOfChangeId.get(frame.changeId)
      if (index === undefined) return
      if (changeAckAt[index]) {
        duplicates.acks++
        return
      }
      changeAckAt[index] = now
      changeNoop[index] = frame.seq === null ? 1 : 0
    })
    natter.on('chat.update', (frame) => {
      const now = performance.now()
      const index = frame.changeId === undefined ? undefined : indexOfChangeId.get(frame.changeId)
      if (index === undefined) return
      if (conversations[changeConversationOf[index]!]!.id !== frame.conversationId) duplicates.misdirected++
      changeSeen[index] = changeSeen[index]! + 1
      if (frame.by !== myId) updates.push(index, now)
    })
    natter.on('chat.receive', (frame) => {
      const now = performance.now()
      // My own messages come back as the ack, applied to the stream by the client.
      if (frame.from === myId) return
      const body = frame.body
      const index = body.charCodeAt(0) === 35 ? Number.parseInt(body.slice(1, body.indexOf(' ')), 10) : -1
      if (!(index >= 0 && index < capacity)) return
      if (conversations[conversationOf[index]!]!.id !== frame.conversationId) duplicates.misdirected++
      gotOf[index] = gotOf[index]! + 1
      deliveries.push(index, now)
    })
    natter.on('error', (frame) => {
      const change = frame.ref === undefined ? undefined : indexOfChangeId.get(frame.ref)
      if (change !== undefined) {
        changeRefusal[change] = frame.code
        return
      }
      const code = ERROR_CODES.includes(frame.code) ? frame.code : 'other'
      const index = frame.ref === undefined ? undefined : indexOfClientId.get(frame.ref)
      if (index !== undefined) errorOf[index] = ERROR_CODES.indexOf(code)
      else unrefErrors[code] = (unrefErrors[code] ?? 0) + 1
    })
    natter.on('pong', () => {
      pings.pongs++
      if (pingAt[me]) pingRtt.recordValue(micros(performance.now() - pingAt[me]))
      pingAt[me] = 0
    })
    for (const type of OTHER_FRAMES) {
      natter.on(type, () => {
        otherFrames[type] = (otherFrames[type] ?? 0) + 1
      })
    }
  })
  // Each client follows its conversations from where their streams stand, as the page does
  // once it has loaded their newest messages: a gap after that is replayed from the events.
  for (const conversation of conversations) {
    if (conversation.lastSeq < 0) continue
    for (const member of conversation.members) clients[member]?.natter.track(conversation.id, conversation.lastSeq)
  }
  await options.afterOpen?.()

  const filler = FILLER.slice(0, Math.max(1, options.bodyChars - 8))
  let count = 0
  let changes = 0
  let turn = 0
  const scheduleLag = histogram()

  function send(step: number, sender: number, conversation: number) {
    const index = count++
    sentAt[index] = performance.now()
    stepOf[index] = step
    conversationOf[index] = conversation
    const entry = clients[sender]!.natter.sendMessage(conversations[conversation]!.id, `#${index} ${filler}`)
    indexOfClientId.set(entry.clientId, index)
  }

  /**
   * A change by `sender` in `conversation`: a deletion or an edit of one of their own recent
   * messages there, else a reaction toggled on a recent message of the conversation (anyone's).
   * False when the conversation has no acknowledged message yet: a new message goes instead.
   */
  function change(sender: number, conversation: number): boolean {
    const roll = Math.random()
    const own = roll < DELETE_SHARE + EDIT_SHARE ? recentOwn.get(sender)?.findLast(message => message.conversation === conversation) : undefined
    const natter = clients[sender]!.natter
    const index = changes
    let entry: ChangeEntry
    if (own && roll < DELETE_SHARE) {
      entry = natter.remove(own.id)
      forget(recentOwn, sender, own.id)
      forget(recentIn, conversation, own.id)
    }
    else if (own) {
      // A body of its own each time: the same text again would change nothing (no chat.update).
      entry = natter.edit(own.id, `edit ${index} ${filler}`)
    }
    else {
      const recent = recentIn.get(conversation)
      if (!recent?.length) return false
      const { id } = recent[Math.floor(Math.random() * recent.length)]!
      const emoji = EMOJI[Math.floor(Math.random() * EMOJI.length)]!
      const key = `${id} ${sender} ${emoji}`
      const on = !reacted.has(key)
      if (on) reacted.add(key)
      else reacted.delete(key)
      entry = natter.react(id, emoji, on)
    }
    changes++
    changeSentAt[index] = performance.now()
    changeKindOf[index] = CHANGE_KINDS.indexOf(entry.change.kind)
    changeConversationOf[index] = conversation
    indexOfChangeId.set(entry.changeId, index)
    return true
  }

  const loop = monitorEventLoopDelay({ resolution: 10 })
  loop.enable()
  const cpuBefore = process.cpuUsage()

  async function drive(step: number, { rate, seconds, route, changes: share = 0 }: { rate: number, seconds: number, route: Route, changes?: number }) {
    const begin = performance.now()
    const total = Math.round(rate * seconds)
    let done = 0
    while (done < total) {
      const elapsed = performance.now() - begin
      const due = Math.min(total, Math.floor((rate * elapsed) / 1000) + 1)
      while (done < due) {
        const intended = begin + (done * 1000) / rate
        scheduleLag.recordValue(micros(performance.now() - intended))
        const { sender, conversation } = route(turn++)
        // Drawn, not every 1/share-th turn: the route goes round the people in a fixed order, so a
        // fixed stride would give the changes to the same people every round, who then never write.
        if (!(share > 0 && Math.random() < share && change(sender, conversation))) send(step, sender, conversation)
        done++
      }
      await sleep(1)
    }
  }

  const expected = (index: number) => conversations[conversationOf[index]!]!.members.length - 1
  const refusedForGood = (index: number) => errorOf[index] !== 0 && !RETRYABLE.has(ERROR_CODES[errorOf[index]!]!)
  // Every member sees an applied change, the one who made it too.
  const updatesDue = (index: number) => changeNoop[index] ? 0 : conversations[changeConversationOf[index]!]!.members.length
  const changeRefusedForGood = (index: number) => changeRefusal[index] !== undefined && !RETRYABLE.has(changeRefusal[index]!)

  /** Messages and changes (index ranges) still waiting for an answer or a delivery. */
  interface Span { from: number, to: number, changeFrom: number, changeTo: number }
  const spanFrom = (): Pick<Span, 'from' | 'changeFrom'> => ({ from: count, changeFrom: changes })

  function outstanding({ from, to, changeFrom, changeTo }: Span) {
    let open = 0
    for (let i = from; i < to; i++) {
      if (ackAt[i] ? gotOf[i]! < expected(i) : !refusedForGood(i)) open++
    }
    for (let i = changeFrom; i < changeTo; i++) {
      if (changeAckAt[i] ? changeSeen[i]! < updatesDue(i) : !changeRefusedForGood(i)) open++
    }
    return open
  }

  async function settle(span: Span, ms: number): Promise<boolean> {
    const deadline = performance.now() + ms
    while (performance.now() < deadline) {
      if (!outstanding(span)) return true
      await sleep(20)
    }
    return !outstanding(span)
  }

  let firstDelivery = new Int32Array(1)
  let arrivals = new Float64Array(0)
  const startedAt = performance.now()
  const stepBounds: Array<Span & { begin: number, end: number, backlogged: boolean, loadAverage: number }> = []
  if (options.warmupSeconds > 0 && options.steps.length) {
    const start = spanFrom()
    await drive(-1, { ...options.steps[0]!, seconds: options.warmupSeconds })
    await settle({ ...start, to: count, changeTo: changes }, options.settleMs)
    log(`${target.label}: warm-up done (${count - start.from} messages, ${changes - start.changeFrom} changes)`)
  }
  const measuredFrom = spanFrom()
  for (const [index, step] of options.steps.entries()) {
    const start = spanFrom()
    const begin = performance.now()
    await drive(index, step)
    const end = performance.now()
    const loadAverage = Math.round(loadavg()[0]! * 100) / 100
    const last = index === options.steps.length - 1
    const span = { ...start, to: count, changeTo: changes }
    const drained = await settle(span, last ? options.drainMs : options.settleMs)
    stepBounds.push({ ...span, begin, end, backlogged: !drained, loadAverage })
    regroup()
    const stats = stepStats(stepBounds.length - 1)
    const mixed = stats.changes ? `; changes ${stats.changes.acked}/${stats.changes.sent} acked (${stats.changes.noops} no-ops), chat.update p50 ${stats.changes.update.p50} ms p99 ${stats.changes.update.p99} ms, missing ${stats.changes.missingDeliveries}, refused ${JSON.stringify(stats.changes.refused)}` : ''
    log(`${target.label}: ${step.label ? `${step.label}, ` : ''}${step.rate} msg/s for ${step.seconds} s: acked ${stats.acked}/${stats.sent}, ${stats.deliveredPerSecond.toFixed(0)} deliveries/s, receive p50 ${stats.receive.p50} ms p99 ${stats.receive.p99} ms max ${stats.receive.max} ms, missing deliveries ${stats.missingDeliveries}, errors ${JSON.stringify(stats.errors)}${mixed}${drained ? '' : ', backlog not drained'}; load average ${loadAverage}`)
    if (!last && options.stopAfter?.(stats, index)) {
      log(`${target.label}: ramp stops after ${step.rate} msg/s`)
      break
    }
  }
  // Whatever is still due after the ramp stopped early gets the full drain time.
  await settle({ ...measuredFrom, to: count, changeTo: changes }, options.drainMs)
  const endedAt = performance.now()
  finished = true
  loop.disable()
  const cpu = process.cpuUsage(cpuBefore)
  await closeClients(clients)

  // Every delivery grouped by message (a prefix sum over the messages, then their arrivals):
  // the per-step, per-kind and per-second figures read it. Rebuilt when a ramp asks mid-run.
  function regroup() {
    firstDelivery = new Int32Array(count + 1)
    for (let d = 0; d < deliveries.length; d++) firstDelivery[deliveries.message[d]! + 1] = firstDelivery[deliveries.message[d]! + 1]! + 1
    for (let i = 0; i < count; i++) firstDelivery[i + 1] = firstDelivery[i + 1]! + firstDelivery[i]!
    arrivals = new Float64Array(deliveries.length)
    const fill = firstDelivery.slice(0, count)
    for (let d = 0; d < deliveries.length; d++) {
      const message = deliveries.message[d]!
      arrivals[fill[message]!] = deliveries.at[d]!
      fill[message] = fill[message]! + 1
    }
  }

  function errorsOf(from: number, to: number) {
    const errors: Record<string, number> = {}
    for (let i = from; i < to; i++) {
      if (!errorOf[i]) continue
      const code = ERROR_CODES[errorOf[i]!]!
      errors[code] = (errors[code] ?? 0) + 1
    }
    return errors
  }

  function statsBetween(from: number, to: number, begin: number, end: number, rate: number, seconds: number, backlogged: boolean, label?: string): StepStats {
    const ack = histogram()
    const receive = histogram()
    const receiveBy = { direct: histogram(), room: histogram() }
    const toGateway = histogram()
    const gatewayToAck = histogram()
    let acked = 0
    let received = 0
    let unanswered = 0
    let ackedNotReceived = 0
    let ackedInWindow = 0
    let deliveredInWindow = 0
    let deliveriesExpected = 0
    let delivered = 0
    let missingDeliveries = 0
    for (let i = from; i < to; i++) {
      const due = expected(i)
      const got = firstDelivery[i + 1]! - firstDelivery[i]!
      deliveriesExpected += due
      delivered += got
      if (ackAt[i]) {
        acked++
        ack.recordValue(micros(ackAt[i]! - sentAt[i]!))
        if (acceptedAt[i]) {
          toGateway.recordValue(micros(acceptedAt[i]! - sentAt[i]!))
          gatewayToAck.recordValue(micros(ackAt[i]! - acceptedAt[i]!))
        }
        if (ackAt[i]! >= begin && ackAt[i]! < end) ackedInWindow++
        if (got < due) {
          ackedNotReceived++
          missingDeliveries += due - got
        }
      }
      else if (!refusedForGood(i)) {
        unanswered++
      }
      if (got >= due) received++
      const byKind = receiveBy[conversations[conversationOf[i]!]!.kind]
      for (let d = firstDelivery[i]!; d < firstDelivery[i + 1]!; d++) {
        const latency = micros(arrivals[d]! - sentAt[i]!)
        receive.recordValue(latency)
        byKind.recordValue(latency)
        if (arrivals[d]! >= begin && arrivals[d]! < end) deliveredInWindow++
      }
    }
    const window = (end - begin) / 1000
    return {
      label,
      rate,
      seconds,
      begin,
      end,
      sent: to - from,
      acked,
      received,
      errors: errorsOf(from, to),
      unanswered,
      ackedNotReceived,
      deliveriesExpected,
      deliveries: delivered,
      missingDeliveries,
      ackedPerSecond: window > 0 ? ackedInWindow / window : 0,
      deliveredPerSecond: window > 0 ? deliveredInWindow / window : 0,
      ack: percentiles(ack),
      receive: percentiles(receive),
      receiveBy: Object.fromEntries(Object.entries(receiveBy).filter(([, h]) => h.totalCount).map(([kind, h]) => [kind, percentiles(h)])),
      toGateway: percentiles(toGateway),
      gatewayToAck: percentiles(gatewayToAck),
      backlogged
    }
  }

  /** The changes with indices in [from, to); undefined when there are none. */
  function changeStats(from: number, to: number): ChangeStats | undefined {
    if (to <= from) return undefined
    const ack = histogram()
    const update = histogram()
    const kinds: Record<ChangeKind, number> = { react: 0, edit: 0, delete: 0 }
    const refused: Record<string, number> = {}
    let acked = 0
    let noops = 0
    let unanswered = 0
    let ackedNotSeen = 0
    let deliveriesExpected = 0
    let deliveries = 0
    for (let i = from; i < to; i++) {
      kinds[CHANGE_KINDS[changeKindOf[i]!]!]++
      const code = changeRefusal[i]
      if (code !== undefined) refused[code] = (refused[code] ?? 0) + 1
      if (!changeAckAt[i]) {
        if (!changeRefusedForGood(i)) unanswered++
        continue
      }
      acked++
      if (changeNoop[i]) noops++
      ack.recordValue(micros(changeAckAt[i]! - changeSentAt[i]!))
      const due = updatesDue(i)
      deliveriesExpected += due
      deliveries += Math.min(due, changeSeen[i]!)
      if (changeSeen[i]! < due) ackedNotSeen++
    }
    for (let d = 0; d < updates.length; d++) {
      const i = updates.message[d]!
      if (i >= from && i < to) update.recordValue(micros(updates.at[d]! - changeSentAt[i]!))
    }
    return {
      sent: to - from,
      kinds,
      acked,
      noops,
      refused,
      unanswered,
      ackedNotSeen,
      deliveriesExpected,
      deliveries,
      missingDeliveries: deliveriesExpected - deliveries,
      ack: percentiles(ack),
      update: percentiles(update)
    }
  }

  function stepStats(index: number): StepStats {
    const bound = stepBounds[index]!
    const step = options.steps[index]!
    return { ...statsBetween(bound.from, bound.to, bound.begin, bound.end, step.rate, step.seconds, bound.backlogged, step.label), loadAverage: bound.loadAverage, changes: changeStats(bound.changeFrom, bound.changeTo) }
  }

  regroup()
  const steps = stepBounds.map((_, index) => stepStats(index))
  const first = stepBounds[0]
  const lastBound = stepBounds[stepBounds.length - 1]
  const seconds = steps.reduce((sum, step) => sum + step.seconds, 0)
  const total = first && lastBound
    ? { ...statsBetween(first.from, lastBound.to, first.begin, lastBound.end, steps.reduce((sum, step) => sum + step.rate * step.seconds, 0) / seconds, seconds, steps.some(step => step.backlogged)), changes: changeStats(first.changeFrom, lastBound.changeTo) }
    : statsBetween(0, 0, 0, 0, 0, 0, false)
  const whole = statsBetween(0, count, startedAt, endedAt, 0, 0, false)
  const all = { sent: whole.sent, acked: whole.acked, received: whole.received, unanswered: whole.unanswered, ackedNotReceived: whole.ackedNotReceived, missingDeliveries: whole.missingDeliveries, deliveries: whole.deliveries, errors: whole.errors, changes: changeStats(0, changes) }

  // Per second of the measured run, by send time for latency and by arrival time for rates.
  const perSecond: SecondStats[] = []
  if (first) {
    const length = Math.ceil((endedAt - first.begin) / 1000)
    const rows = Array.from({ length }, (_, second) => ({ second, sent: 0, acked: 0, delivered: 0, ackH: histogram(), recvH: histogram() }))
    const row = (at: number) => rows[Math.floor((at - first.begin) / 1000)]
    for (let i = measuredFrom.from; i < count; i++) {
      const sentRow = row(sentAt[i]!)
      if (sentRow) {
        sentRow.sent++
        if (ackAt[i]) sentRow.ackH.recordValue(micros(ackAt[i]! - sentAt[i]!))
      }
      if (ackAt[i]) {
        const ackRow = row(ackAt[i]!)
        if (ackRow) ackRow.acked++
      }
      for (let d = firstDelivery[i]!; d < firstDelivery[i + 1]!; d++) {
        sentRow?.recvH.recordValue(micros(arrivals[d]! - sentAt[i]!))
        const arrivalRow = row(arrivals[d]!)
        if (arrivalRow) arrivalRow.delivered++
      }
    }
    for (const { second, sent, acked, delivered, ackH, recvH } of rows) {
      perSecond.push({ second, sent, acked, delivered, ack: percentiles(ackH), receive: percentiles(recvH) })
    }
  }

  const ackedIds = new Map<string, string[]>()
  for (let i = 0; i < count; i++) {
    if (!idOf[i]) continue
    const conversationId = conversations[conversationOf[i]!]!.id
    const list = ackedIds.get(conversationId) ?? []
    list.push(idOf[i]!)
    ackedIds.set(conversationId, list)
  }

  return {
    target: target.label,
    sockets: clients.length,
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
    gaps,
    reconnects,
    pings: { ...pings, rtt: percentiles(pingRtt) },
    otherFrames,
    unrefErrors,
    generator: {
      loopDelayP99Ms: Math.round(loop.percentile(99) / 1000) / 1000,
      loopDelayMaxMs: Math.round(loop.max / 1000) / 1000,
      scheduleLagP99Ms: percentiles(scheduleLag).p99,
      cpuSeconds: (cpu.user + cpu.system) / 1e6
    },
    ackedIds
  }
}
