import { randomId } from './uuid'
import type { ClientFrame } from '../types/frames'

export type OutboxState = 'queued' | 'sending' | 'failed'

/** A message written here that the server has not acknowledged yet. */
export interface OutboxEntry {
  clientId: string
  conversationId: string
  body: string
  createdAt: string
  /** The conversation's last seq when it was written: the server's copy of it can only come later. */
  afterSeq: number
  /** The message it answers (a server id). */
  replyTo?: string
  state: OutboxState
  /** How often it went out on a socket: from the first time on, the server may hold it. */
  attempts: number
  errorCode?: string
  error?: string
}

/** What a change does to its message. */
export type MessageChange
  = | { kind: 'edit', body: string }
    | { kind: 'delete' }
    | { kind: 'react', emoji: string, on: boolean }

/**
 * A change of a message the server has not confirmed yet. `messageId` is the server's id, or the
 * clientId of a message still in this outbox: then the change waits until that message's ack.
 */
export interface ChangeEntry {
  changeId: string
  messageId: string
  /** True while messageId is still an outbox clientId. */
  waiting: boolean
  change: MessageChange
  state: OutboxState
  attempts: number
  errorCode?: string
  error?: string
}

/**
 * Where unsent messages, and unconfirmed changes of messages, outlive a reload (localStorage in
 * the browser, memory elsewhere). A storage without the change half keeps changes in memory only.
 */
export interface OutboxStorage {
  load(): OutboxEntry[]
  save(entries: readonly OutboxEntry[]): void
  loadChanges?(): ChangeEntry[]
  saveChanges?(changes: readonly ChangeEntry[]): void
}

export const memoryStorage = (): OutboxStorage => {
  let kept: OutboxEntry[] = []
  let keptChanges: ChangeEntry[] = []
  return {
    load: () => kept.map(entry => ({ ...entry })),
    save: (entries) => {
      kept = entries.map(entry => ({ ...entry }))
    },
    loadChanges: () => keptChanges.map(change => ({ ...change })),
    saveChanges: (changes) => {
      keptChanges = changes.map(change => ({ ...change }))
    }
  }
}

export interface OutboxOptions {
  /** Puts a frame on the open socket; false when there is none. */
  send(frame: ClientFrame): boolean
  storage?: OutboxStorage
  /** Called after every change, with the entries as they now are. */
  onChange?(entries: readonly OutboxEntry[]): void
  /** Called after every change of the queued message changes (edits, deletions, reactions). */
  onChanges?(changes: readonly ChangeEntry[]): void
  /** The server allows 10 a second in bursts of 20: a long outbox goes a little slower, so no message is refused mid-run and overtaken. */
  perSecond?: number
  burst?: number
  ackTimeoutMs?: number
  newId?(): string
}

// Worth another try on their own; the others wait for the person (retry or discard).
const RETRYABLE = new Set(['timeout', 'unavailable', 'internal', 'rate_limited'])
const MAX_RETRY_MS = 30_000

/**
 * Messages wait here until the server acknowledges them; they go out again, with the same
 * clientId, after a reconnect, a reload, a retryable refusal or an ack that never came, and the
 * server never stores one twice. They go in the order written, paced under the server's limit.
 */
export class Outbox {
  private items: OutboxEntry[]
  private pending: ChangeEntry[]
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>()
  private connected = false
  private tokens: number
  private tokensAt = Date.now()
  private paced?: ReturnType<typeof setTimeout>
  private readonly perSecond: number
  private readonly burst: number
  private readonly ackTimeoutMs: number

  constructor(private readonly options: OutboxOptions) {
    this.perSecond = options.perSecond ?? 6
    this.burst = options.burst ?? 15
    this.ackTimeoutMs = options.ackTimeoutMs ?? 15_000
    this.tokens = this.burst
    // Whatever was on its way when the page went away goes out again.
    this.items = (options.storage?.load() ?? []).map(item => item.state === 'sending' ? { ...item, state: 'queued' } : item)
    this.pending = this.storedChanges(true)
  }

  get entries(): readonly OutboxEntry[] {
    return this.items
  }

  get changes(): readonly ChangeEntry[] {
    return this.pending
  }

  find(clientId: string): OutboxEntry | undefined {
    return this.items.find(item => item.clientId === clientId)
  }

  enqueue(message: { conversationId: string, body: string, afterSeq: number, replyTo?: string }): OutboxEntry {
    const entry: OutboxEntry = {
      clientId: this.options.newId?.() ?? randomId(),
      ...message,
      createdAt: new Date().toISOString(),
      state: 'queued',
      attempts: 0
    }
    this.items.push(entry)
    this.changed()
    this.flush()
    return entry
  }

  /**
   * A change of a message: it goes out in the order made, after the message itself when that is
   * still in this outbox (`messageId` its clientId), and again with the same changeId until answered.
   */
  enqueueChange(messageId: string, change: MessageChange): ChangeEntry {
    const entry: ChangeEntry = {
      changeId: this.options.newId?.() ?? randomId(),
      messageId,
      waiting: this.items.some(item => item.clientId === messageId),
      change,
      state: 'queued',
      attempts: 0
    }
    this.pending.push(entry)
    this.changesChanged()
    this.flush()
    return entry
  }

  /** A change.ack (or the chat.update carrying its changeId): the change it settles, if this page had it. */
  acknowledgeChange(changeId: string): ChangeEntry | undefined {
    this.clearTimer(changeId)
    const index = this.pending.findIndex(item => item.changeId === changeId)
    if (index < 0) return undefined
    const [settled] = this.pending.splice(index, 1)
    this.changesChanged()
    this.flush()
    return settled
  }

  /** An error frame about a change: retryable ones go again, the rest wait to be retried or discarded. */
  rejectChange(changeId: string, code: string, message: string, retryAfterMs?: number): boolean {
    const item = this.pending.find(entry => entry.changeId === changeId)
    if (!item) return false
    this.clearTimer(changeId)
    item.state = 'failed'
    item.errorCode = code
    item.error = message
    if (RETRYABLE.has(code)) {
      const wait = code === 'rate_limited' ? Math.max(250, retryAfterMs ?? 1000) : Math.min(MAX_RETRY_MS, 1000 * 2 ** Math.min(item.attempts, 5))
      this.timers.set(changeId, setTimeout(() => {
        this.timers.delete(changeId)
        if (item.state !== 'failed') return
        this.requeue(item)
        this.changesChanged()
        this.flush()
      }, wait))
    }
    this.changesChanged()
    this.flush()
    return true
  }

  retryChange(changeId: string) {
    const item = this.pending.find(entry => entry.changeId === changeId)
    if (!item || item.state !== 'failed') return
    this.clearTimer(changeId)
    this.requeue(item)
    this.changesChanged()
    this.flush()
  }

  discardChange(changeId: string) {
    this.clearTimer(changeId)
    this.pending = this.pending.filter(item => item.changeId !== changeId)
    this.changesChanged()
  }

  /** The socket is open: everything waiting or on its way goes (again), oldest first. */
  resume() {
    this.connected = true
    for (const item of [...this.items, ...this.pending]) {
      if (item.state === 'sending' || (item.state === 'failed' && item.errorCode && RETRYABLE.has(item.errorCode))) this.requeue(item)
    }
    this.changed()
    this.changesChanged()
    this.flush()
  }

  /** The socket closed: what was on its way goes out again on the next one. */
  pause() {
    this.connected = false
    clearTimeout(this.paced)
    for (const clientId of [...this.timers.keys()]) this.clearTimer(clientId)
    for (const item of [...this.items, ...this.pending]) if (item.state === 'sending') item.state = 'queued'
    this.changed()
    this.changesChanged()
  }

  /**
   * A chat.ack: the entry it settles, gone from the outbox, if this page had it. Changes waiting
   * for that message now name it by the server's `id` and go out.
   */
  acknowledge(clientId: string, id?: string): OutboxEntry | undefined {
    this.clearTimer(clientId)
    const index = this.items.findIndex(item => item.clientId === clientId)
    if (index < 0) return undefined
    const [settled] = this.items.splice(index, 1)
    this.changed()
    if (id) {
      let moved = false
      for (const change of this.pending) {
        if (change.waiting && change.messageId === clientId) {
          change.messageId = id
          change.waiting = false
          moved = true
        }
      }
      if (moved) {
        this.changesChanged()
        this.flush()
      }
    }
    return settled
  }

  /** An error frame about one message. Retryable ones go again by themselves, in order. */
  reject(clientId: string, code: string, message: string, retryAfterMs?: number) {
    this.clearTimer(clientId)
    const item = this.find(clientId)
    if (!item) return
    if (code === 'rate_limited') {
      // Too fast for the server: everything waits, then goes on in order.
      this.requeue(item)
      this.tokens = 0
      this.tokensAt = Date.now()
      clearTimeout(this.paced)
      this.paced = setTimeout(() => this.flush(), Math.max(250, retryAfterMs ?? 1000))
    }
    else {
      item.state = 'failed'
      item.errorCode = code
      item.error = message
      if (RETRYABLE.has(code)) {
        const wait = Math.min(MAX_RETRY_MS, 1000 * 2 ** Math.min(item.attempts, 5))
        this.timers.set(clientId, setTimeout(() => {
          this.timers.delete(clientId)
          if (item.state !== 'failed') return
          this.requeue(item)
          this.changed()
          this.flush()
        }, wait))
      }
    }
    this.changed()
  }

  retry(clientId: string) {
    const item = this.find(clientId)
    if (!item || item.state !== 'failed') return
    this.clearTimer(clientId)
    this.requeue(item)
    this.changed()
    this.flush()
  }

  /** A message given up: the changes waiting for it go with it. */
  discard(clientId: string) {
    this.clearTimer(clientId)
    this.items = this.items.filter(item => item.clientId !== clientId)
    this.changed()
    const before = this.pending.length
    this.pending = this.pending.filter(change => !(change.waiting && change.messageId === clientId))
    if (this.pending.length !== before) this.changesChanged()
  }

  /**
   * Another holder of the same storage (a second tab of the same person) changed it: take its
   * entries as they now are, and send what waits. Not saved back, so two tabs never echo each other.
   */
  reload() {
    this.items = this.options.storage?.load() ?? []
    this.pending = this.storedChanges(false)
    for (const key of [...this.timers.keys()]) {
      if (!this.items.some(entry => entry.clientId === key) && !this.pending.some(change => change.changeId === key)) this.clearTimer(key)
    }
    this.options.onChange?.(this.items)
    this.options.onChanges?.(this.pending)
    this.flush()
  }

  /**
   * The changes kept in storage. After a reload what was on its way goes again (the server applies
   * a changeId once); from another tab, its 'sending' stays that tab's to settle. One still waiting
   * for a message no longer here has nothing left to change.
   */
  private storedChanges(afterReload: boolean): ChangeEntry[] {
    return (this.options.storage?.loadChanges?.() ?? [])
      .filter(change => !change.waiting || this.items.some(item => item.clientId === change.messageId))
      .map(change => afterReload && change.state === 'sending' ? { ...change, state: 'queued' } : change)
  }

  /** Signing out: nothing of this person's stays. */
  clear() {
    this.pause()
    this.items = []
    this.pending = []
    this.changed()
    this.changesChanged()
  }

  private requeue(item: OutboxEntry | ChangeEntry) {
    item.state = 'queued'
    delete item.error
    delete item.errorCode
  }

  private refill() {
    const now = Date.now()
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.tokensAt) / 1000) * this.perSecond)
    this.tokensAt = now
  }

  private flush() {
    clearTimeout(this.paced)
    this.paced = undefined
    if (!this.connected) return
    let changed = false
    let socketGone = false
    for (const item of this.items) {
      if (item.state !== 'queued') continue
      this.refill()
      if (this.tokens < 1) {
        this.paced = setTimeout(() => this.flush(), Math.ceil(((1 - this.tokens) / this.perSecond) * 1000))
        break
      }
      if (!this.options.send({ type: 'chat.send', conversationId: item.conversationId, body: item.body, clientId: item.clientId, ...(item.replyTo && { replyTo: item.replyTo }) })) {
        socketGone = true
        break
      }
      this.tokens -= 1
      item.state = 'sending'
      item.attempts += 1
      changed = true
      this.clearTimer(item.clientId)
      this.timers.set(item.clientId, setTimeout(() => this.reject(item.clientId, 'timeout', 'No answer from the server.'), this.ackTimeoutMs))
    }
    if (changed) this.changed()
    if (this.paced || socketGone) return
    let changesMoved = false
    for (const item of this.pending) {
      if (item.state !== 'queued' || item.waiting) continue
      // A later change of the same message waits for the earlier one, so they apply in order.
      if (this.pending.indexOf(item) > this.pending.findIndex(other => other.messageId === item.messageId && other.state !== 'failed')) continue
      this.refill()
      if (this.tokens < 1) {
        this.paced = setTimeout(() => this.flush(), Math.ceil(((1 - this.tokens) / this.perSecond) * 1000))
        break
      }
      if (!this.options.send(changeFrame(item))) break
      this.tokens -= 1
      item.state = 'sending'
      item.attempts += 1
      changesMoved = true
      this.clearTimer(item.changeId)
      this.timers.set(item.changeId, setTimeout(() => this.rejectChange(item.changeId, 'timeout', 'No answer from the server.'), this.ackTimeoutMs))
    }
    if (changesMoved) this.changesChanged()
  }

  private clearTimer(clientId: string) {
    clearTimeout(this.timers.get(clientId))
    this.timers.delete(clientId)
  }

  private changed() {
    this.options.storage?.save(this.items)
    this.options.onChange?.(this.items)
  }

  private changesChanged() {
    this.options.storage?.saveChanges?.(this.pending)
    this.options.onChanges?.(this.pending)
  }
}

function changeFrame({ changeId, messageId, change }: ChangeEntry): ClientFrame {
  switch (change.kind) {
    case 'edit': return { type: 'chat.edit', messageId, changeId, body: change.body }
    case 'delete': return { type: 'chat.delete', messageId, changeId }
    case 'react': return { type: 'chat.react', messageId, changeId, emoji: change.emoji, on: change.on }
  }
}
