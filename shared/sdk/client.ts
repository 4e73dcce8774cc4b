import { STREAM_FRAME_TYPES, type ClientFrame, type ServerFrame, type ServerFrameOf, type ServerFrameType, type StreamFrame } from '../types/frames'
import { createApi, isApiError, type Api, type SocketLike, type Transport } from './api'
import { Outbox, type ChangeEntry, type OutboxEntry, type OutboxStorage } from './outbox'

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'offline'

export interface ClientOptions {
  transport: Transport
  /** The person signed in: their own messages, confirmed by an ack, are theirs. */
  userId: string
  storage?: OutboxStorage
  /** The server ended the session (4401, or 401 after a refused upgrade). */
  onSignedOut?(): void
  pingEveryMs?: number
  pongTimeoutMs?: number
  firstRetryMs?: number
  maxRetryMs?: number
  /** Whether the device thinks it has a network (the browser's navigator.onLine). */
  online?(): boolean
  /** The other person of a direct conversation (null in a room): my own messages, built from their acks, are to them. */
  peerOf?(conversationId: string): string | null
  outbox?: {
    perSecond?: number
    burst?: number
    ackTimeoutMs?: number
    onChange?: (entries: readonly OutboxEntry[]) => void
    onChanges?: (changes: readonly ChangeEntry[]) => void
  }
}

type Listener<T extends ServerFrameType> = (frame: ServerFrameOf<T>) => void

const STREAM = new Set<string>(STREAM_FRAME_TYPES)
const EVENTS_PAGE = 500
// Frames held while the ones before them are fetched: past this, the replay brings them anyway.
const MAX_HELD = 1000
const SOCKET_OPEN = 1

/**
 * The one client of Natter's protocol, framework-free: the page's stores, the tests and the
 * benchmark all use it. It keeps a socket open (backoff with jitter, a ping that finds dead
 * connections), sends the outbox in order until each message is acknowledged, and applies each
 * conversation's stream in seq order: a frame after a gap is held while the missing ones are
 * replayed from the events endpoint, so whoever listens sees every change once, in order, after
 * any outage.
 */
export class NatterClient {
  readonly api: Api
  readonly outbox: Outbox
  state: ConnectionState = 'idle'
  retryAt: number | null = null
  private readonly listeners = new Map<string, Set<(frame: never) => void>>()
  private readonly stateListeners = new Set<(state: ConnectionState) => void>()
  private readonly gapListeners = new Set<(conversationId: string, reason: 'retention' | 'gone') => void>()
  private readonly applied = new Map<string, number>()
  private readonly held = new Map<string, Map<number, StreamFrame>>()
  private readonly resyncing = new Map<string, Promise<boolean>>()
  private readonly again = new Set<string>()
  private readonly reads = new Map<string, number>()
  // Conversations I am no longer in: frames of them still on their way are not applied, until
  // my own "added" or "joined" brings one back, or the page tracks it afresh.
  private readonly gone = new Set<string>()
  private watching: string | null = null
  private socket: SocketLike | null = null
  private running = false
  private attempt = 0
  private retryTimer?: ReturnType<typeof setTimeout>
  private pingTimer?: ReturnType<typeof setInterval>
  private pongTimer?: ReturnType<typeof setTimeout>

  constructor(private readonly options: ClientOptions) {
    this.api = createApi(options.transport)
    this.outbox = new Outbox({ send: frame => this.send(frame), storage: options.storage, ...options.outbox })
  }

  /** Hears one kind of server frame; stream frames come in seq order, once each. */
  on<T extends ServerFrameType>(type: T, listener: Listener<T>): () => void {
    let set = this.listeners.get(type)
    if (!set) this.listeners.set(type, set = new Set())
    set.add(listener as (frame: never) => void)
    return () => set.delete(listener as (frame: never) => void)
  }

  onState(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener)
    return () => this.stateListeners.delete(listener)
  }

  /**
   * A conversation whose stream cannot be replayed: `retention` removed what was missed (load it
   * afresh), or it is `gone` (I left or was removed while away).
   */
  onGap(listener: (conversationId: string, reason: 'retention' | 'gone') => void): () => void {
    this.gapListeners.add(listener)
    return () => this.gapListeners.delete(listener)
  }

  start() {
    if (this.running) return
    this.running = true
    this.connect()
  }

  stop() {
    this.running = false
    clearTimeout(this.retryTimer)
    this.drop(1000)
    this.setState('idle')
  }

  /** The device's network came back or went away. */
  networkChanged(online: boolean) {
    if (online) return this.reconnectNow()
    clearTimeout(this.retryTimer)
    this.drop(1000)
    this.setState('offline')
  }

  /** Skips the wait before the next attempt. */
  reconnectNow() {
    if (!this.running || this.socket) return
    this.attempt = 0
    this.connect()
  }

  /** True when the frame went out on an open socket. */
  send(frame: ClientFrame): boolean {
    if (!this.socket || this.socket.readyState !== SOCKET_OPEN) return false
    this.socket.send(JSON.stringify(frame))
    return true
  }

  /** Writes a message: it waits in the outbox until the server has it. `replyTo`: the server id of the message it answers. */
  sendMessage(conversationId: string, body: string, options: { replyTo?: string } = {}): OutboxEntry {
    return this.outbox.enqueue({ conversationId, body, afterSeq: this.appliedSeq(conversationId), ...(options.replyTo && { replyTo: options.replyTo }) })
  }

  /**
   * Changes my message's text. `messageId` is the server's id, or the clientId of a message
   * still in the outbox: the edit then goes once that message is acknowledged. It is applied
   * when its chat.update comes in the stream; a refusal arrives as an `error` with `ref: changeId`.
   */
  edit(messageId: string, body: string): ChangeEntry {
    return this.outbox.enqueueChange(messageId, { kind: 'edit', body })
  }

  /** Deletes a message (mine, or anyone's in a room I own or administer); as `edit` for ids and answers. */
  remove(messageId: string): ChangeEntry {
    return this.outbox.enqueueChange(messageId, { kind: 'delete' })
  }

  /** Turns my reaction with one emoji on or off; as `edit` for ids and answers. */
  react(messageId: string, emoji: string, on: boolean): ChangeEntry {
    return this.outbox.enqueueChange(messageId, { kind: 'react', emoji, on })
  }

  /** The last seq of the conversation this client has applied (0: none yet). */
  appliedSeq(conversationId: string): number {
    return this.applied.get(conversationId) ?? 0
  }

  /** A page of the conversation was loaded up to `seq` (0: it is new): the stream goes on from there. */
  track(conversationId: string, seq: number) {
    this.gone.delete(conversationId)
    if (!this.applied.has(conversationId) || seq > this.appliedSeq(conversationId)) this.applied.set(conversationId, seq)
    this.release(conversationId)
  }

  /** The conversations whose streams this client follows, with the last seq applied. */
  tracked(): ReadonlyMap<string, number> {
    return this.applied
  }

  /** No longer in it: nothing of it is kept or replayed, and what of it is still on its way is dropped. */
  forget(conversationId: string) {
    this.gone.add(conversationId)
    this.applied.delete(conversationId)
    this.held.delete(conversationId)
    this.reads.delete(conversationId)
    if (this.watching === conversationId) this.watch(null)
  }

  /** Everything up to `seq` is read here: said now, or on the next connection. */
  markRead(conversationId: string, seq: number) {
    if (seq <= (this.reads.get(conversationId) ?? 0)) return
    this.reads.set(conversationId, seq)
    this.flushReads()
  }

  /** The room whose members' presence this page shows (null: none); kept across reconnects. */
  watch(conversationId: string | null) {
    this.watching = conversationId
    this.send({ type: 'presence.watch', conversationId })
  }

  /** Fetches what this client missed of a conversation and applies it in order; true when it got to the end. */
  resync(conversationId: string): Promise<boolean> {
    const running = this.resyncing.get(conversationId)
    if (running) {
      this.again.add(conversationId)
      return running
    }
    const work = this.replay(conversationId).finally(() => {
      this.resyncing.delete(conversationId)
    }).then(async (done) => {
      if (!this.again.delete(conversationId)) return done
      return this.resync(conversationId)
    })
    this.resyncing.set(conversationId, work)
    return work
  }

  private async replay(conversationId: string): Promise<boolean> {
    for (;;) {
      const after = this.appliedSeq(conversationId)
      let page: { events: ServerFrame[], lastSeq: number }
      try {
        page = await this.api('GET', `/api/conversations/${conversationId}/events?after=${after}&limit=${EVENTS_PAGE}`)
      }
      catch (error) {
        if (isApiError(error) && error.status === 404) {
          this.forget(conversationId)
          this.emitGap(conversationId, 'gone')
          return true
        }
        // Anything else: the next reconnect or gap tries again.
        return false
      }
      const first = page.events[0] as StreamFrame | undefined
      if (first && first.seq > after + 1) {
        // Retention removed what was missed: the conversation starts again from here.
        this.applied.set(conversationId, first.seq - 1)
        this.emitGap(conversationId, 'retention')
      }
      for (const frame of page.events) this.stream(frame as StreamFrame)
      if (page.events.length < EVENTS_PAGE || this.appliedSeq(conversationId) >= page.lastSeq) return true
    }
  }

  private connect() {
    clearTimeout(this.retryTimer)
    if (!this.running || this.socket) return
    if (this.options.online && !this.options.online()) return this.setState('offline')
    this.setState('connecting')
    const socket = this.options.transport.openSocket('/ws')
    this.socket = socket
    let opened = false
    socket.onopen = () => {
      if (this.socket !== socket) return
      opened = true
      this.attempt = 0
      this.setState('connected')
      this.startPing()
      this.connected()
    }
    socket.onmessage = (event) => {
      if (this.socket === socket && typeof event.data === 'string') this.receive(event.data)
    }
    socket.onclose = (event) => {
      if (this.socket !== socket) return
      this.socket = null
      this.closed(event.code, opened)
    }
    socket.onerror = () => {}
  }

  /** Lets go of the current socket at once; its close event, whenever it comes, is ignored. */
  private drop(code: number) {
    const socket = this.socket
    if (!socket) return
    this.socket = null
    this.stopPing()
    this.outbox.pause()
    try {
      socket.close(code)
    }
    catch {
      // Already closing.
    }
  }

  private connected() {
    this.outbox.resume()
    if (this.watching) this.send({ type: 'presence.watch', conversationId: this.watching })
    this.flushReads()
    for (const conversationId of this.applied.keys()) void this.resync(conversationId)
  }

  private closed(code: number, wasOpen: boolean) {
    this.stopPing()
    this.outbox.pause()
    if (!this.running) return
    if (code === 4401) return this.signedOut()
    if (this.options.online && !this.options.online()) return this.setState('offline')
    // 1012: the server is restarting; another instance (or this one, soon) takes the socket.
    if (code === 1012) return this.retryIn(Math.random() * 1000)
    // A refused upgrade looks like any failed connection: ask whether the session is still there.
    if (!wasOpen) void this.checkSession()
    const base = Math.min(this.options.maxRetryMs ?? 30_000, (this.options.firstRetryMs ?? 500) * 2 ** this.attempt)
    this.attempt += 1
    this.retryIn(base / 2 + Math.random() * (base / 2))
  }

  private retryIn(delay: number) {
    clearTimeout(this.retryTimer)
    this.retryAt = Date.now() + delay
    this.setState('reconnecting')
    this.retryTimer = setTimeout(() => this.connect(), delay)
  }

  private async checkSession() {
    try {
      await this.api('GET', '/api/me')
    }
    catch (error) {
      if (isApiError(error) && error.status === 401) this.signedOut()
    }
  }

  private signedOut() {
    this.stop()
    this.options.onSignedOut?.()
  }

  private startPing() {
    this.stopPing()
    this.pingTimer = setInterval(() => {
      if (!this.send({ type: 'ping' })) return
      clearTimeout(this.pongTimer)
      // No pong: the connection is dead without having said so (a sleeping laptop, a lost route).
      this.pongTimer = setTimeout(() => {
        this.drop(4000)
        this.closed(1006, true)
      }, this.options.pongTimeoutMs ?? 10_000)
    }, this.options.pingEveryMs ?? 25_000)
  }

  private stopPing() {
    clearInterval(this.pingTimer)
    clearTimeout(this.pongTimer)
  }

  private flushReads() {
    for (const [conversationId, seq] of this.reads) {
      if (!this.send({ type: 'read.update', conversationId, seq })) return
      this.reads.delete(conversationId)
    }
  }

  private receive(text: string) {
    let frame: ServerFrame
    try {
      frame = JSON.parse(text) as ServerFrame
    }
    catch {
      return
    }
    if (STREAM.has(frame.type)) return this.stream(frame as StreamFrame)
    switch (frame.type) {
      case 'chat.ack': {
        const entry = this.outbox.acknowledge(frame.clientId, frame.id)
        // The ack is my message's place in the stream: it is applied like anyone's message.
        // What the server computed (mentions) is not in the ack: a page that shows them reloads the message.
        if (entry) {
          this.stream({ type: 'chat.receive', id: frame.id, conversationId: frame.conversationId, seq: frame.seq, from: this.options.userId, to: this.options.peerOf?.(frame.conversationId) ?? null, body: entry.body, timestamp: frame.timestamp, replyTo: entry.replyTo ?? null, attachments: [], mentions: [] })
        }
        else void this.resync(frame.conversationId)
        break
      }
      case 'change.ack':
        this.outbox.acknowledgeChange(frame.changeId)
        break
      case 'pong':
        clearTimeout(this.pongTimer)
        break
      case 'error':
        if (frame.ref && !this.outbox.rejectChange(frame.ref, frame.code, frame.message, frame.retryAfterMs)) this.outbox.reject(frame.ref, frame.code, frame.message, frame.retryAfterMs)
        break
    }
    this.emit(frame)
  }

  /** One frame of a conversation's stream: applied if next, dropped if known, held after a gap. */
  private stream(frame: StreamFrame) {
    const { conversationId, seq } = frame
    if (this.gone.has(conversationId)) {
      if (frame.type !== 'room.update' || frame.userId !== this.options.userId || (frame.change !== 'added' && frame.change !== 'joined')) return
      this.gone.delete(conversationId)
    }
    const applied = this.applied.get(conversationId)
    if (applied === undefined || seq === applied + 1) {
      this.applied.set(conversationId, seq)
      this.emit(frame)
      this.release(conversationId)
      return
    }
    if (seq <= applied) return
    let held = this.held.get(conversationId)
    if (!held) this.held.set(conversationId, held = new Map())
    if (held.size < MAX_HELD) held.set(seq, frame)
    void this.resync(conversationId)
  }

  /** Applies held frames that are next now. */
  private release(conversationId: string) {
    const held = this.held.get(conversationId)
    if (!held) return
    for (;;) {
      const applied = this.appliedSeq(conversationId)
      for (const seq of held.keys()) if (seq <= applied) held.delete(seq)
      const next = held.get(applied + 1)
      if (!next) break
      held.delete(applied + 1)
      this.applied.set(conversationId, next.seq)
      this.emit(next)
    }
    if (!held.size) this.held.delete(conversationId)
  }

  private emit(frame: ServerFrame) {
    for (const listener of this.listeners.get(frame.type) ?? []) {
      try {
        (listener as (frame: ServerFrame) => void)(frame)
      }
      catch (error) {
        console.error('natter client: a listener failed', error)
      }
    }
  }

  private emitGap(conversationId: string, reason: 'retention' | 'gone') {
    for (const listener of this.gapListeners) listener(conversationId, reason)
  }

  private setState(state: ConnectionState) {
    if (state !== 'reconnecting') this.retryAt = null
    this.state = state
    for (const listener of this.stateListeners) listener(state)
  }
}
