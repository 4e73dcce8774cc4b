import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { WebSocket } from 'ws'
import { serviceUrls } from './backends'
import type { MailCatcher } from './mail-catcher'
import type { TestServer } from './server'

/**
 * A steady chat load across app instances, with clients that behave like the browser's outbox
 * (composables/useOutbox.ts): every message keeps its clientId until the server acknowledges it;
 * it is sent again, with the same clientId, after a reconnect, after a retryable error and when no
 * answer came in time; after every (re)connect the client resyncs by seq. When the load stops,
 * `verify` holds each client's view and its log against PostgreSQL.
 */

const ACK_TIMEOUT_MS = 10_000
const RETRYABLE = new Set(['unavailable', 'internal', 'rate_limited'])
const OUTBOX_BURST = 15
const OUTBOX_PER_SECOND = 6
const FIRST_RETRY_MS = 200
const MAX_RETRY_MS = 3000
const HTTP_TIMEOUT_MS = 5000

export interface Message { id: string, seq: number, from: string, body: string }

/** One chat.send as the client logged it. */
export interface Sent {
  clientId: string
  body: string
  createdAt: number
  state: 'queued' | 'sending' | 'acked' | 'failed'
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
  constructor(readonly email: string, readonly ip: string) {}

  /** Plain fetch with this person's cookies, the instance's Origin and the CSRF token; never throws. */
  async http(base: string, method: string, path: string, body?: unknown): Promise<{ status: number, json: any, retryAfter?: string }> {
    try {
      if (method !== 'GET' && !this.cookies.get('natter_csrf')) await this.http(base, 'GET', '/api/auth/csrf')
      const headers: Record<string, string> = { 'origin': base, 'x-forwarded-for': this.ip, 'cookie': [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ') }
      if (method !== 'GET') headers['x-csrf-token'] = this.cookies.get('natter_csrf') ?? ''
      if (body !== undefined) headers['content-type'] = 'application/json'
      const response = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) })
      for (const cookie of response.headers.getSetCookie()) {
        const [pair] = cookie.split(';')
        const [name, ...rest] = pair!.split('=')
        if (/max-age=0|expires=Thu, 01 Jan 1970/i.test(cookie) || rest.join('=') === '') this.cookies.delete(name!.trim())
        else this.cookies.set(name!.trim(), rest.join('='))
      }
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

/** One person's browser tab: one socket, an outbox, and the conversation as the page shows it. */
export class LoadClient {
  readonly outbox = new Map<string, Sent>()
  readonly view = new Map<number, Message>()
  /** Problems seen live: two messages at one seq, an ack for something never sent. */
  readonly anomalies: string[] = []
  ws?: WebSocket
  base?: string
  reconnects = 0
  resends = 0
  private attempt = 0
  private nextAttemptAt = 0
  private running = false
  private connecting = false
  private sending?: NodeJS.Timeout
  private ticker?: NodeJS.Timeout
  private tokens = OUTBOX_BURST
  private tokensAt = Date.now()
  private needsSignIn = false
  private resyncing?: Promise<void>
  private lastResyncOk = 0
  private readonly watchers = new Set<(frame: { type: string, [key: string]: any }) => void>()

  constructor(readonly person: LoadPerson, readonly partner: LoadPerson, readonly conversationId: string, private readonly home: number, private readonly load: ChatLoad) {}

  get open() {
    return this.ws?.readyState === WebSocket.OPEN
  }

  start() {
    this.running = true
    this.ticker = setInterval(() => this.tick(), 250)
    void this.connect()
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
    this.running = false
    this.stopSending()
    clearInterval(this.ticker)
    this.ws?.terminate()
  }

  /** Drops the socket as a network cut would; the client reconnects by itself. */
  cut() {
    this.ws?.terminate()
  }

  enqueue(body: string): Sent {
    const sent: Sent = { clientId: randomUUID(), body, createdAt: Date.now(), state: 'queued', attempts: 0, errors: [], repeatAcks: 0 }
    this.outbox.set(sent.clientId, sent)
    this.flush()
    return sent
  }

  /** The servers to try, this client's home instance first. */
  private candidates(): TestServer[] {
    const servers = this.load.servers()
    return servers.map((_, i) => servers[(this.home + i) % servers.length]!)
  }

  private async connect() {
    if (!this.running || this.connecting || this.ws || Date.now() < this.nextAttemptAt) return
    this.connecting = true
    try {
      for (const server of this.candidates()) {
        if (this.needsSignIn) await this.signInAgain(server.url)
        const opened = await this.upgrade(server.url)
        if (opened) {
          this.attempt = 0
          return
        }
      }
      // Every instance refused: back off (with jitter, so clients do not come back in step).
      this.attempt += 1
      const delay = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** this.attempt) * (0.5 + Math.random() / 2)
      this.nextAttemptAt = Date.now() + delay
      setTimeout(() => void this.connect(), delay)
    }
    finally {
      this.connecting = false
    }
  }

  private async signInAgain(base: string) {
    try {
      await this.person.signIn(base, this.load.mail)
      this.needsSignIn = false
    }
    catch { /* the store may still be down: the next attempt tries again */ }
  }

  private upgrade(base: string): Promise<boolean> {
    return new Promise((resolve) => {
      const cookie = [...this.person.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
      const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws`, { headers: { origin: base, cookie }, handshakeTimeout: HTTP_TIMEOUT_MS })
      let settled = false
      const settle = (value: boolean) => {
        if (!settled) resolve(value)
        settled = true
      }
      ws.once('unexpected-response', (_request, response) => {
        if (response.statusCode === 401) this.needsSignIn = true
        ws.terminate()
        settle(false)
      })
      // Errors come before a close (which reconnects) or instead of the open.
      ws.on('error', () => settle(false))
      ws.once('open', () => {
        this.ws = ws
        this.base = base
        this.reconnects += 1
        settle(true)
        this.opened()
      })
      ws.on('message', data => this.receive(JSON.parse(String(data))))
      ws.once('close', () => {
        if (this.ws !== ws) return
        this.ws = undefined
        // What was on its way goes out again on the next socket.
        for (const sent of this.outbox.values()) if (sent.state === 'sending') sent.state = 'queued'
        if (this.running) setTimeout(() => void this.connect(), FIRST_RETRY_MS * (0.5 + Math.random()))
      })
    })
  }

  /** As the browser does on every (re)connect: resend the outbox in order, then resync. */
  private opened() {
    for (const sent of this.outbox.values()) {
      if (sent.state === 'sending' || (sent.state === 'failed' && RETRYABLE.has(sent.error ?? ''))) sent.state = 'queued'
    }
    this.flush()
    void this.resync()
  }

  /** Sends any frame on the open socket (typing, say); false when there is none. */
  send(frame: object): boolean {
    if (!this.open) return false
    this.ws!.send(JSON.stringify(frame))
    return true
  }

  /** Waits for a frame from now on that matches. */
  next(match: (frame: { type: string, [key: string]: any }) => boolean, timeoutMs = 10_000): Promise<{ type: string, [key: string]: any }> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.watchers.delete(watch)
        reject(new Error(`${this.person.email}: no matching frame within ${timeoutMs} ms`))
      }, timeoutMs)
      const watch = (frame: { type: string, [key: string]: any }) => {
        if (!match(frame)) return
        clearTimeout(timer)
        this.watchers.delete(watch)
        resolve(frame)
      }
      this.watchers.add(watch)
    })
  }

  private receive(frame: { type: string, [key: string]: any }) {
    for (const watch of [...this.watchers]) watch(frame)
    switch (frame.type) {
      case 'chat.ack': {
        const sent = this.outbox.get(frame.clientId)
        if (!sent) return void this.anomalies.push(`ack for a clientId never sent: ${frame.clientId}`)
        if (sent.ack) {
          sent.repeatAcks += 1
          if (sent.ack.id !== frame.id || sent.ack.seq !== frame.seq) this.anomalies.push(`two acks disagree for ${frame.clientId}: ${JSON.stringify(sent.ack)} then ${frame.id}/${frame.seq}`)
          return
        }
        sent.state = 'acked'
        sent.ack = { id: frame.id, seq: frame.seq, at: Date.now() }
        this.see({ id: frame.id, seq: frame.seq, from: this.person.id, body: sent.body })
        return
      }
      case 'chat.receive':
        if (frame.conversationId === this.conversationId) this.see({ id: frame.id, seq: frame.seq, from: frame.from, body: frame.body })
        return
      case 'error': {
        const sent = frame.ref ? this.outbox.get(frame.ref) : undefined
        if (!sent || sent.state === 'acked') return
        sent.errors.push(frame.code)
        sent.error = frame.code
        sent.state = 'failed'
      }
    }
  }

  private see(message: Message) {
    const known = this.view.get(message.seq)
    if (known && known.id !== message.id) this.anomalies.push(`seq ${message.seq} is ${known.id} and ${message.id}`)
    this.view.set(message.seq, message)
  }

  /** Sends what is queued, oldest first, paced like the browser's outbox so the server's limit is never hit. */
  private flush() {
    if (!this.open) return
    for (const sent of this.outbox.values()) {
      if (sent.state !== 'queued') continue
      const now = Date.now()
      this.tokens = Math.min(OUTBOX_BURST, this.tokens + ((now - this.tokensAt) / 1000) * OUTBOX_PER_SECOND)
      this.tokensAt = now
      if (this.tokens < 1) return
      this.tokens -= 1
      if (sent.attempts > 0) this.resends += 1
      sent.attempts += 1
      sent.state = 'sending'
      sent.lastSentAt = now
      this.ws!.send(JSON.stringify({ type: 'chat.send', to: this.partner.id, body: sent.body, clientId: sent.clientId }))
    }
  }

  /** Every 250 ms: retry what failed for a passing reason, resend what got no answer, keep sending. */
  private tick() {
    const now = Date.now()
    for (const sent of this.outbox.values()) {
      if (sent.state === 'failed' && RETRYABLE.has(sent.error ?? '') && now - (sent.lastSentAt ?? 0) > 1000) sent.state = 'queued'
      if (sent.state === 'sending' && now - (sent.lastSentAt ?? 0) > ACK_TIMEOUT_MS) sent.state = 'queued'
    }
    this.flush()
    if (!this.ws) void this.connect()
    // A resync that failed (the store or the database was away) is tried again.
    if (this.open && now - this.lastResyncOk > 15_000) void this.resync()
  }

  /** GET …/messages?after=<last seq without a gap>, page by page, as the chat store's resync does. */
  resync(): Promise<void> {
    this.resyncing ??= (async () => {
      try {
        for (let page = 0; page < 100; page++) {
          let after = 0
          while (this.view.has(after + 1)) after += 1
          const base = this.base ?? this.candidates()[0]?.url
          if (!base) return
          const answer = await this.person.http(base, 'GET', `/api/conversations/${this.conversationId}/messages?after=${after}&limit=200`)
          if (answer.status === 401) this.needsSignIn = true
          if (answer.status !== 200) return
          for (const message of answer.json.messages as Message[]) this.see({ id: message.id, seq: message.seq, from: message.from, body: message.body })
          if (answer.json.messages.length < 200) {
            this.lastResyncOk = Date.now()
            return
          }
        }
      }
      finally {
        this.resyncing = undefined
      }
    })()
    return this.resyncing
  }

  /** Signs in again if the session is gone (the store lost it), then resyncs; true when it got through. */
  async catchUp(): Promise<boolean> {
    const base = this.base ?? this.candidates()[0]?.url
    if (!base) return false
    if (this.needsSignIn || (await this.person.http(base, 'GET', '/api/me')).status === 401) await this.signInAgain(base)
    this.lastResyncOk = 0
    await this.resync()
    return this.lastResyncOk > 0
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
