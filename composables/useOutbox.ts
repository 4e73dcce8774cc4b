import { randomId } from '#shared/sdk/uuid'
import type { OutboxEntry } from '~/stores/chat'

const ACK_TIMEOUT_MS = 15_000
// Worth another try on their own once the connection is back; the others wait for the person.
const RETRYABLE = new Set(['timeout', 'unavailable', 'internal'])
// The server allows bursts of 20 and 10 a second: a long outbox goes out a little slower than
// that, so no message is refused in the middle of a run and overtaken by the next one.
const BURST = 15
const PER_SECOND = 6

interface Outbox {
  /** Loads this person's unsent messages kept by the browser (after a reload, say). */
  restore(userId: string): void
  enqueue(message: { to: string, conversationId: string, body: string }): OutboxEntry
  /** The socket is open: send everything waiting, oldest first. */
  resume(): void
  /** The socket closed: what was on its way goes out again on the next one. */
  pause(): void
  /** A chat.ack: returns the entry it settles (gone from the outbox), if this page had it. */
  acknowledge(clientId: string): OutboxEntry | undefined
  /** An error frame about one message. */
  reject(clientId: string, code: string, message: string): void
  retry(clientId: string): void
  discard(clientId: string): void
  /** Signing out: nothing of this person's stays in the browser. */
  forget(): void
}

let shared: Outbox | undefined

/**
 * Messages wait here, kept in localStorage, until the server acknowledges them; they are sent again
 * after a reconnect or a reload with the same clientId, which the server never stores twice.
 */
export function useOutbox(): Outbox {
  // One per page in the browser; never shared between the requests a server renders.
  if (import.meta.server) return createOutbox()
  shared ??= createOutbox()
  return shared
}

function createOutbox(): Outbox {
  const chat = useChatStore()
  const timers = new Map<string, ReturnType<typeof setTimeout>>()
  let storageKey: string | null = null
  let connected = false
  let tokens = BURST
  let tokensAt = Date.now()
  let paced: ReturnType<typeof setTimeout> | undefined

  function entry(clientId: string) {
    return chat.outbox.find(candidate => candidate.clientId === clientId)
  }

  function save() {
    if (!storageKey) return
    try {
      if (chat.outbox.length) localStorage.setItem(storageKey, JSON.stringify(chat.outbox))
      else localStorage.removeItem(storageKey)
    }
    catch {
      // Storage full or blocked: the messages still go out from memory.
    }
  }

  function read(text: string | null): OutboxEntry[] {
    try {
      const entries = JSON.parse(text ?? '[]') as OutboxEntry[]
      return Array.isArray(entries) ? entries.filter(item => item && typeof item.clientId === 'string' && typeof item.body === 'string') : []
    }
    catch {
      return []
    }
  }

  function clearTimer(clientId: string) {
    clearTimeout(timers.get(clientId))
    timers.delete(clientId)
  }

  // Another tab of the same person changed the outbox (it sent or settled something).
  function onStorage(event: StorageEvent) {
    if (!storageKey || event.key !== storageKey) return
    const entries = read(event.newValue)
    for (const clientId of timers.keys()) {
      if (!entries.some(item => item.clientId === clientId)) clearTimer(clientId)
    }
    chat.outbox = entries
  }

  function restore(userId: string) {
    if (!storageKey) window.addEventListener('storage', onStorage)
    storageKey = `natter_outbox:${userId}`
    for (const clientId of [...timers.keys()]) clearTimer(clientId)
    // Whatever was on its way when the page went away goes out again.
    chat.outbox = read(localStorage.getItem(storageKey)).map(item => item.state === 'sending' ? { ...item, state: 'queued' } : item)
    save()
  }

  function refill() {
    const now = Date.now()
    tokens = Math.min(BURST, tokens + ((now - tokensAt) / 1000) * PER_SECOND)
    tokensAt = now
  }

  function flush() {
    clearTimeout(paced)
    paced = undefined
    if (!connected) return
    const socket = useChatSocket()
    let changed = false
    for (const item of chat.outbox) {
      if (item.state !== 'queued') continue
      refill()
      if (tokens < 1) {
        paced = setTimeout(flush, Math.ceil(((1 - tokens) / PER_SECOND) * 1000))
        break
      }
      if (!socket.send({ type: 'chat.send', to: item.to, body: item.body, clientId: item.clientId })) break
      tokens -= 1
      item.state = 'sending'
      item.attempts += 1
      changed = true
      clearTimer(item.clientId)
      timers.set(item.clientId, setTimeout(() => reject(item.clientId, 'timeout', 'No answer from the server.'), ACK_TIMEOUT_MS))
    }
    if (changed) save()
  }

  function enqueue(message: { to: string, conversationId: string, body: string }): OutboxEntry {
    chat.outbox.push({
      clientId: randomId(),
      ...message,
      createdAt: new Date().toISOString(),
      afterSeq: chat.lastSeq(message.conversationId),
      state: 'queued',
      attempts: 0
    })
    save()
    flush()
    return chat.outbox.at(-1)!
  }

  function resume() {
    connected = true
    for (const item of chat.outbox) {
      if (item.state === 'sending' || (item.state === 'failed' && item.errorCode && RETRYABLE.has(item.errorCode))) {
        item.state = 'queued'
        delete item.error
        delete item.errorCode
      }
    }
    save()
    flush()
  }

  function pause() {
    connected = false
    clearTimeout(paced)
    for (const clientId of [...timers.keys()]) clearTimer(clientId)
    for (const item of chat.outbox) if (item.state === 'sending') item.state = 'queued'
    save()
  }

  function acknowledge(clientId: string): OutboxEntry | undefined {
    clearTimer(clientId)
    const index = chat.outbox.findIndex(item => item.clientId === clientId)
    if (index < 0) return undefined
    const [settled] = chat.outbox.splice(index, 1)
    save()
    return settled
  }

  function reject(clientId: string, code: string, message: string) {
    clearTimer(clientId)
    const item = entry(clientId)
    if (!item) return
    if (code === 'rate_limited') {
      // Too fast for the server: wait a moment and go on in order.
      item.state = 'queued'
      tokens = 0
      tokensAt = Date.now()
      clearTimeout(paced)
      paced = setTimeout(flush, 1000)
    }
    else {
      item.state = 'failed'
      item.errorCode = code
      item.error = message
    }
    save()
  }

  function retry(clientId: string) {
    const item = entry(clientId)
    if (!item || item.state !== 'failed') return
    item.state = 'queued'
    delete item.error
    delete item.errorCode
    save()
    flush()
  }

  function discard(clientId: string) {
    clearTimer(clientId)
    chat.outbox = chat.outbox.filter(item => item.clientId !== clientId)
    save()
  }

  function forget() {
    pause()
    if (storageKey) localStorage.removeItem(storageKey)
    storageKey = null
    window.removeEventListener('storage', onStorage)
    chat.outbox = []
  }

  return { restore, enqueue, resume, pause, acknowledge, reject, retry, discard, forget }
}
