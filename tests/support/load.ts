import { randomUUID } from 'node:crypto'
import pg from 'pg'
import type { WebSocket } from 'ws'
import type { Method, SocketLike, Transport } from '#shared/sdk/api'
import { NatterClient } from '#shared/sdk/client'
import { NodeTransport } from '#shared/sdk/node'
import type { OutboxEntry } from '#shared/sdk/outbox'
import type { ClientFrame, ServerFrame } from '#shared/types/frames'
import { serviceUrls } from './backends'
import type { MailCatcher } from './mail-catcher'
import type { TestServer } from './server'

/**
 * A steady chat load across app instances, each person's tab run by the page's own protocol client
 * (shared/sdk): every message keeps its clientId until the server acknowledges it; it is sent again,
 * with the same clientId, after a reconnect, after a retryable error and when no answer came in
 * time; after every (re)connect the client replays its conversation's events. When the load stops,
 * `verify` holds each client's view and its log against PostgreSQL.
 */

const ACK_TIMEOUT_MS = 10_000
const RETRYABLE = new Set(['unavailable', 'internal', 'rate_limited', 'timeout'])
const FIRST_RETRY_MS = 200
const MAX_RETRY_MS = 3000
const HTTP_TIMEOUT_MS = 5000

export interface Message { id: string, seq: number, from: string, body: string }

/** One chat.send as the client logged it. */
export interface Sent {
  clientId: string
  body: string
  createdAt: number
  state: OutboxEntry['state'] | 'acked'
  attempts: number
  lastSentAt?: number
  ack?: { id: string, seq: number, at: number }
  /** The last error code, and every code seen. */
  error?: string
  errors: string[]
  /** Acks for a clientId already acknowledged: a resend answered with the original message. */
  repeatAcks: number
}

export interface LoadOptions {
  mail: MailCatcher
  /** The instances clients may use; the list can change while the load runs. */
  servers: () => TestServer[]
  pairs?: number
  /** Messages a second per pair, both people together. */
  perPairPerSecond?: number
}

const wait = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

export class LoadPerson {
  readonly cookies = new Map<string, string>()
  id = ''
  signIns = 0
  needsSignIn = false
  constructor(readonly email: string, readonly ip: string) {}

  /** Plain fetch with this person's cookies, the instance's Origin and the CSRF token; never throws. */
  async http(base: string, method: string, path: string, body?: unknown): Promise<{ status: number, json: any, retryAfter?: string }> {
    try {
      if (method !== 'GET' && !this.cookies.get('natter_csrf')) await this.http(base, 'GET', '/api/auth/csrf')
      const headers: Record<string, string> = {}
      if (method !== 'GET') headers['x-csrf-token'] = this.cookies.get('natter_csrf') ?? ''
      if (body !== undefined) headers['content-type'] = 'application/json'
      const transport = new NodeTransport(base, { cookies: this.cookies, headers: { 'x-forwarded-for': this.ip }, timeoutMs: HTTP_TIMEOUT_MS })
      const response = await transport.fetch(path, { method: method as Method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
      const text = await response.text()
      let json: unknown = text
      try {
        json = text ? JSON.parse(text) : null
      }
      catch { /* not JSON */ }
      return { status: response.status, json, retryAfter: response.headers.get('retry-after') ?? undefined }
    }
    catch {
      return { status: 0, json: null }
    }
  }

  /** Signs in through the real endpoints (the code comes from the mail catcher). */
  async signIn(base: string, mail: MailCatcher) {
    this.cookies.delete('natter_session')
    const before = mail.mails.length
    const requested = await this.http(base, 'POST', '/api/auth/request-otp', { email: this.email })
    if (requested.status !== 202) throw new Error(`request-otp for ${this.email} answered ${requested.status}: ${JSON.stringify(requested.json)}`)
    const otp = await mail.codeFor(this.email, before)
    const verified = await this.http(base, 'POST', '/api/auth/verify-otp', { email: this.email, otp })
    if (verified.status !== 200) throw new Error(`verify-otp for ${this.email} answered ${verified.status}: ${JSON.stringify(verified.json)}`)
    this.id = verified.json.user.id
    this.signIns += 1
  }
}

/**
 * The instances a load client may use, its home first: each socket attempt goes to the next one
 * after a failure (a killed instance), and requests follow the last one that answered.
 */
class FailoverTransport implements Transport {
  failures = 0
  base?: string
  socket?: WebSocket

  constructor(private readonly person: LoadPerson, private readonly candidates: () => TestServer[], private readonly onOpen: (base: string) => void) {}

  private pick(): string | undefined {
    const servers = this.candidates()
    return servers.length ? servers[this.failures % servers.length]!.url : undefined
  }

  csrfToken() {
    return this.person.cookies.get('natter_csrf')
  }

  async fetch(path: string, init: { method: Method, headers: Record<string, string>, body?: string }) {
    const base = this.base ?? this.pick() ?? 'http://127.0.0.1:1'
    return new NodeTransport(base, { cookies: this.person.cookies, headers: { 'x-forwarded-for': this.person.ip } }).fetch(path, init)
  }

  openSocket(path: string): SocketLike {
    const base = this.pick() ?? 'http://127.0.0.1:1'
    const socket = new NodeTransport(base, { cookies: this.person.cookies, headers: { 'x-forwarded-for': this.person.ip } }).openSocket(path) as unknown as WebSocket
    this.socket = socket
    let opened = false
    socket.on('open', () => {
      opened = true
      this.base = base
      this.onOpen(base)
    })
    socket.on('unexpected-response', (_request, response) => {
      if (response.statusCode === 401) this.person.needsSignIn = true
    })
    socket.on('close', () => {
      if (!opened) this.failures += 1
    })
    return socket as unknown as SocketLike
  }
}

/**
 * One person's browser tab, run by the same protocol client as the page (shared/sdk): it keeps
 * each message's clientId until the server acknowledges it, sends it again after a reconnect, a
 * retryable error or a missing answer, and replays the conversation's events after every
 * reconnect. This class only keeps a log of what was sent and seen, for `verify`.
 */
export class LoadClient {
  /** Every message this client wrote, by clientId, as its log. */
  readonly outbox = new Map<string, Sent>()
  readonly view = new Map<number, Message>()
  /** Problems seen live: two messages at one seq, an ack for something never sent. */
  readonly anomalies: string[] = []
  readonly natter: NatterClient
  reconnects = 0
  private sending?: NodeJS.Timeout
  private readonly transport: FailoverTransport
  private readonly watchers = new Set<(frame: ServerFrame) => void>()

  constructor(readonly person: LoadPerson, readonly partner: LoadPerson, readonly conversationId: string, home: number, private readonly load: ChatLoad) {
    this.transport = new FailoverTransport(person, () => {
      const servers = load.servers()
      return servers.map((_, i) => servers[(home + i) % servers.length]!)
    }, () => {
      this.reconnects += 1
    })
    this.natter = new NatterClient({
      transport: this.transport,
      userId: person.id,
      firstRetryMs: FIRST_RETRY_MS,
      maxRetryMs: MAX_RETRY_MS,
      pingEveryMs: 5000,
      pongTimeoutMs: 5000,
      // The session is gone (the store lost it): sign in again, as a person would, and go on.
      onSignedOut: () => void this.signInAgain().then(() => this.natter.start()),
      outbox: { ackTimeoutMs: ACK_TIMEOUT_MS, onChange: entries => this.logOutbox(entries) }
    })
    this.natter.track(conversationId, 0)
    for (const type of ['chat.receive', 'chat.ack', 'error', 'presence.update', 'typing.update', 'read.update'] as const) {
      this.natter.on(type, (frame: ServerFrame) => {
        this.heard(frame)
        for (const watch of [...this.watchers]) watch(frame)
      })
    }
  }

  get open() {
    return this.natter.state === 'connected'
  }

  /** The instance this client last connected to. */
  get base() {
    return this.transport.base
  }

  /** Messages sent again (after a reconnect, an error or a missing ack). */
  get resends() {
    return [...this.outbox.values()].reduce((sum, sent) => sum + Math.max(0, sent.attempts - 1), 0)
  }

  start() {
    this.natter.start()
  }

  /** Sends `perSecond` new messages a second until `stopSending`. */
  startSending(perSecond: number) {
    let n = 0
    this.sending = setInterval(() => this.enqueue(`${this.person.email.split('@')[0]} #${++n} ${randomUUID().slice(0, 8)}`), 1000 / perSecond)
  }

  stopSending() {
    clearInterval(this.sending)
  }

  stop() {
    this.stopSending()
    this.natter.stop()
  }

  /** Drops the socket as a network cut would; the client reconnects by itself. */
  cut() {
    this.transport.socket?.terminate()
  }

  enqueue(body: string): Sent {
    const entry = this.natter.sendMessage(this.conversationId, body)
    const sent: Sent = { clientId: entry.clientId, body, createdAt: Date.now(), state: 'queued', attempts: 0, errors: [], repeatAcks: 0 }
    this.outbox.set(sent.clientId, sent)
    this.logOutbox(this.natter.outbox.entries)
    return sent
  }

  /** Sends any frame on the open socket (typing, say); false when there is none. */
  send(frame: ClientFrame): boolean {
    return this.natter.send(frame)
  }

  /** Waits for a frame from now on that matches. */
  next(match: (frame: ServerFrame & { [key: string]: any }) => boolean, timeoutMs = 10_000): Promise<ServerFrame & { [key: string]: any }> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.watchers.delete(watch)
        reject(new Error(`${this.person.email}: no matching frame within ${timeoutMs} ms`))
      }, timeoutMs)
      const watch = (frame: ServerFrame) => {
        if (!match(frame)) return
        clearTimeout(timer)
        this.watchers.delete(watch)
        resolve(frame)
      }
      this.watchers.add(watch)
    })
  }

  private logOutbox(entries: readonly OutboxEntry[]) {
    for (const entry of entries) {
      const sent = this.outbox.get(entry.clientId)
      if (!sent || sent.state === 'acked') continue
      sent.attempts = entry.attempts
      sent.state = entry.state
      if (entry.errorCode && sent.error !== entry.errorCode) {
        sent.error = entry.errorCode
        sent.errors.push(entry.errorCode)
      }
    }
  }

  private heard(frame: ServerFrame) {
    if (frame.type === 'chat.ack') {
      const sent = this.outbox.get(frame.clientId)
      if (!sent) return void this.anomalies.push(`ack for a clientId never sent: ${frame.clientId}`)
      if (sent.ack) {
        sent.repeatAcks += 1
        if (sent.ack.id !== frame.id || sent.ack.seq !== frame.seq) this.anomalies.push(`two acks disagree for ${frame.clientId}: ${JSON.stringify(sent.ack)} then ${frame.id}/${frame.seq}`)
        return
      }
      sent.state = 'acked'
      sent.ack = { id: frame.id, seq: frame.seq, at: Date.now() }
      return
    }
    if (frame.type === 'chat.receive' && frame.conversationId === this.conversationId) {
      const known = this.view.get(frame.seq)
      if (known && known.id !== frame.id) this.anomalies.push(`seq ${frame.seq} is ${known.id} and ${frame.id}`)
      this.view.set(frame.seq, { id: frame.id, seq: frame.seq, from: frame.from, body: frame.body })
    }
  }

  private async signInAgain() {
    const base = this.transport.base ?? this.load.servers()[0]?.url
    if (!base) return
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        await this.person.signIn(base, this.load.mail)
        this.person.needsSignIn = false
        return
      }
      catch {
        // The store may still be down: try again shortly.
        await wait(500)
      }
    }
  }

  /** Signs in again if the session is gone (the store lost it), then replays; true when it got through. */
  async catchUp(): Promise<boolean> {
    const base = this.transport.base ?? this.load.servers()[0]?.url
    if (!base) return false
    if (this.person.needsSignIn || (await this.person.http(base, 'GET', '/api/me')).status === 401) {
      await this.signInAgain()
      this.natter.start()
    }
    return this.natter.resync(this.conversationId)
  }

  /** Messages not settled yet: neither acknowledged nor refused for good. */
  unsettled(): Sent[] {
    return [...this.outbox.values()].filter(sent => sent.state !== 'acked' && !(sent.state === 'failed' && !RETRYABLE.has(sent.error ?? '')))
  }
}

/** One row of the summary a fault test prints. */
export interface FaultSummary {
  fault: string
  sent: number
  acknowledged: number
  stored: number
  duplicates: number
  lost: number
  /** Sent but neither acknowledged nor refused when the test ended. */
  unknown: number
  resends: number
  reconnects: number
  /** From the end of the fault until every client had an ack for a message written after it. */
  recoverySeconds: number
  /** The longest a message waited for its ack (from first written to acknowledged). */
  slowestAckSeconds: number
  /** What /api/ready answered while the fault lasted, e.g. "503×12, no answer×4". */
  readiness: string
}

export interface Verdict {
  summary: FaultSummary
  /** Every broken invariant, in words; empty when all hold. */
  violations: string[]
}

/** Polls /api/ready on every instance and keeps what each answered, with the time. */
export class ReadinessLog {
  readonly answers: Array<{ at: number, url: string, status: number }> = []
  private timer?: NodeJS.Timeout

  constructor(private readonly servers: () => TestServer[], private readonly everyMs = 250) {}

  start() {
    this.timer = setInterval(() => {
      for (const server of this.servers()) {
        const at = Date.now()
        fetch(`${server.url}/api/ready`, { signal: AbortSignal.timeout(4000) })
          .then(response => response.status, () => 0)
          .then(status => this.answers.push({ at, url: server.url, status }))
      }
    }, this.everyMs)
  }

  stop() {
    clearInterval(this.timer)
  }

  /** What was answered between `from` and `to`, counted by status (0: no answer). */
  between(from: number, to: number): Map<number, number> {
    const counts = new Map<number, number>()
    for (const answer of this.answers) if (answer.at >= from && answer.at <= to) counts.set(answer.status, (counts.get(answer.status) ?? 0) + 1)
    return counts
  }

  describe(from: number, to: number): string {
    return [...this.between(from, to)].sort(([a], [b]) => a - b).map(([status, count]) => `${status === 0 ? 'no answer' : status}×${count}`).join(', ')
  }
}

/** People in pairs, each pair one conversation, their clients spread over the instances. */
export class ChatLoad {
  readonly clients: LoadClient[] = []
  readonly mail: MailCatcher
  readonly servers: () => TestServer[]
  private readonly pairs: number
  private readonly perPairPerSecond: number

  constructor(options: LoadOptions) {
    this.mail = options.mail
    this.servers = options.servers
    this.pairs = options.pairs ?? 10
    this.perPairPerSecond = options.perPairPerSecond ?? 5
  }

  /** Signs everyone in, pairs them up and opens every client's socket. */
  async start() {
    const run = randomUUID().slice(0, 6)
    const seed = Math.floor(Math.random() * 200)
    const people = Array.from({ length: this.pairs * 2 }, (_, i) => new LoadPerson(`load-${run}-${i}@example.org`, `10.${200 + (i >> 8)}.${seed}.${i & 255}`))
    const servers = this.servers()
    await Promise.all(people.map((person, i) => person.signIn(servers[i % servers.length]!.url, this.mail)))
    for (let pair = 0; pair < this.pairs; pair++) {
      const [a, b] = [people[2 * pair]!, people[2 * pair + 1]!]
      const opened = await a.http(servers[0]!.url, 'POST', '/api/contacts', { email: b.email })
      if (opened.status !== 201) throw new Error(`contacts answered ${opened.status}: ${JSON.stringify(opened.json)}`)
      const accepted = await b.http(servers[0]!.url, 'POST', `/api/contacts/${a.id}/accept`)
      if (accepted.status !== 204) throw new Error(`accept answered ${accepted.status}: ${JSON.stringify(accepted.json)}`)
      // The two people of a pair sit on different instances: every message crosses between them.
      this.clients.push(new LoadClient(a, b, opened.json.conversationId, 0, this), new LoadClient(b, a, opened.json.conversationId, 1, this))
    }
    for (const client of this.clients) client.start()
    await this.until(() => this.clients.every(client => client.open), 30_000, 'every client connected')
  }

  startSending() {
    for (const client of this.clients) client.startSending(this.perPairPerSecond / 2)
  }

  stopSending() {
    for (const client of this.clients) client.stopSending()
  }

  stop() {
    for (const client of this.clients) client.stop()
  }

  /** A message from every client, written now: the system has recovered once all of them are acknowledged. */
  probe(): Sent[] {
    return this.clients.map(client => client.enqueue(`probe ${randomUUID().slice(0, 8)}`))
  }

  /** Waits for every probe's ack; returns the seconds since `from`. */
  async recovered(probes: Sent[], from: number, timeoutMs: number): Promise<number> {
    await this.until(() => probes.every(sent => sent.ack), timeoutMs, 'every client got an ack for a message sent after the fault')
    return Math.max(...probes.map(sent => sent.ack!.at)) / 1000 - from / 1000
  }

  /** Stops the load, then waits until every message is settled and every client has resynced. */
  async drain(timeoutMs: number) {
    this.stopSending()
    const deadline = Date.now() + timeoutMs
    await this.until(() => this.clients.every(client => client.unsettled().length === 0), timeoutMs, 'every message acknowledged or refused', () => this.clients.flatMap(client => client.unsettled()).length + ' unsettled')
    for (const client of this.clients) {
      while (!(await client.catchUp())) {
        if (Date.now() > deadline) throw new Error(`${client.person.email} could not resync`)
        await wait(500)
      }
    }
  }

  async until(done: () => boolean, timeoutMs: number, what: string, detail?: () => string) {
    const deadline = Date.now() + timeoutMs
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`not within ${timeoutMs / 1000} s: ${what}${detail ? ` (${detail()})` : ''}`)
      await wait(100)
    }
  }

  /**
   * Holds the clients' logs and views against PostgreSQL: every acknowledged message stored once,
   * with the acknowledged id and seq; no clientId twice; seq 1..n per conversation; every client's
   * view equal to the database, in order; what was never acknowledged stored at most once, whole.
   */
  async verify(fault: string, recoverySeconds: number, readiness: string): Promise<Verdict> {
    const violations: string[] = []
    const conversations = [...new Set(this.clients.map(client => client.conversationId))]
    const db = new pg.Client({ connectionString: serviceUrls.DATABASE_URL })
    await db.connect()
    let rows: Array<{ id: string, conversation_id: string, seq: string, sender_id: string, client_id: string, body: string }>
    let counters: Array<{ id: string, last_seq: string }>
    try {
      rows = (await db.query('select id, conversation_id, seq, sender_id, client_id, body from messages where conversation_id = any($1) order by conversation_id, seq', [conversations])).rows
      counters = (await db.query('select id, last_seq from conversations where id = any($1)', [conversations])).rows
    }
    finally {
      await db.end()
    }
    const byKey = new Map<string, typeof rows>()
    for (const row of rows) byKey.set(`${row.sender_id}/${row.client_id}`, [...(byKey.get(`${row.sender_id}/${row.client_id}`) ?? []), row])
    const duplicates = [...byKey.values()].reduce((sum, list) => sum + list.length - 1, 0)
    if (duplicates) violations.push(`${duplicates} rows repeat a (sender, clientId)`)

    for (const conversationId of conversations) {
      const seqs = rows.filter(row => row.conversation_id === conversationId).map(row => Number(row.seq))
      const gap = seqs.findIndex((seq, i) => seq !== i + 1)
      if (gap >= 0) violations.push(`conversation ${conversationId}: seq ${seqs[gap]} where ${gap + 1} was due`)
      const counter = Number(counters.find(row => row.id === conversationId)?.last_seq ?? -1)
      if (counter !== seqs.length) violations.push(`conversation ${conversationId}: last_seq ${counter} but ${seqs.length} rows`)
    }

    let sent = 0
    let acknowledged = 0
    let lost = 0
    let unknown = 0
    for (const client of this.clients) {
      violations.push(...client.anomalies.map(anomaly => `${client.person.email}: ${anomaly}`))
      for (const message of client.outbox.values()) {
        sent += 1
        const stored = byKey.get(`${client.person.id}/${message.clientId}`) ?? []
        if (message.ack) {
          acknowledged += 1
          if (!stored.length) {
            lost += 1
            violations.push(`acknowledged but not stored: ${message.clientId} "${message.body}"`)
          }
          else if (stored[0]!.id !== message.ack.id || Number(stored[0]!.seq) !== message.ack.seq) {
            violations.push(`acknowledged as ${message.ack.id}/${message.ack.seq} but stored as ${stored[0]!.id}/${stored[0]!.seq}`)
          }
        }
        else {
          unknown += message.state === 'failed' && !RETRYABLE.has(message.error ?? '') ? 0 : 1
        }
        if (stored.some(row => row.body !== message.body.trim() || row.conversation_id !== client.conversationId)) violations.push(`stored half-done or elsewhere: ${message.clientId}`)
      }
      // The page, after its resync, shows exactly what the database holds, in order.
      const expected = rows.filter(row => row.conversation_id === client.conversationId).map(row => `${row.seq} ${row.id} ${row.sender_id} ${row.body}`)
      const shown = [...client.view.values()].sort((x, y) => x.seq - y.seq).map(message => `${message.seq} ${message.id} ${message.from} ${message.body}`)
      if (shown.join('\n') !== expected.join('\n')) {
        const first = shown.findIndex((line, i) => line !== expected[i])
        violations.push(`${client.person.email} shows ${shown.length} messages, the database ${expected.length}; first difference at ${first}: ${shown[first]} vs ${expected[first]}`)
      }
    }
    const summary: FaultSummary = {
      fault,
      sent,
      acknowledged,
      stored: rows.length,
      duplicates,
      lost,
      unknown,
      resends: this.clients.reduce((sum, client) => sum + client.resends, 0),
      reconnects: this.clients.reduce((sum, client) => sum + client.reconnects - 1, 0),
      recoverySeconds: Math.round(recoverySeconds * 10) / 10,
      slowestAckSeconds: Math.round(Math.max(0, ...this.clients.flatMap(client => [...client.outbox.values()].filter(sent => sent.ack).map(sent => sent.ack!.at - sent.createdAt))) / 100) / 10,
      readiness
    }
    return { summary, violations }
  }
}

/** The summary as a table for the test log (and docs/reliability.md). */
export function summaryTable(rows: FaultSummary[]): string {
  const head = ['fault', 'sent', 'acknowledged', 'stored', 'duplicates', 'lost', 'unknown', 'resends', 'reconnects', 'recovery (s)', 'slowest ack (s)', '/api/ready during the fault']
  const lines = rows.map(row => [row.fault, row.sent, row.acknowledged, row.stored, row.duplicates, row.lost, row.unknown, row.resends, row.reconnects, row.recoverySeconds, row.slowestAckSeconds, row.readiness].map(String))
  return [head, head.map(() => '---'), ...lines].map(cells => `| ${cells.join(' | ')} |`).join('\n')
}
