import { NatterClient, type ConnectionState } from '#shared/sdk/client'
import type { SocketLike, Transport } from '#shared/sdk/api'
import type { ChangeEntry, OutboxEntry, OutboxStorage } from '#shared/sdk/outbox'

/** A cookie of this page as the browser holds it; a value that does not decode counts as absent. */
export function readBrowserCookie(name: string): string | null {
  for (const pair of document.cookie.split(';')) {
    const [key, ...value] = pair.trim().split('=')
    if (key !== name) continue
    try {
      return decodeURIComponent(value.join('='))
    }
    catch {
      return null
    }
  }
  return null
}

/** The browser's way to the server: fetch on this origin with its cookies, and the socket at /ws. */
export const browserTransport: Transport = {
  fetch: (path, init) => fetch(path, { ...init, credentials: 'same-origin' }),
  openSocket: path => new WebSocket(`${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${path}`) as unknown as SocketLike,
  csrfToken: () => readBrowserCookie('natter_csrf') ?? undefined
}

/**
 * Unsent messages and unconfirmed changes in localStorage, one pair of keys per person, so they
 * outlive a reload and reach other tabs.
 */
function localOutbox(userId: string): OutboxStorage {
  const messagesKey = `natter_outbox:${userId}`
  const changesKey = `natter_changes:${userId}`
  return {
    load: () => readList<OutboxEntry>(messagesKey, entry => typeof entry.clientId === 'string' && typeof entry.body === 'string' && typeof entry.conversationId === 'string'),
    save: entries => writeList(messagesKey, entries),
    loadChanges: () => readList<ChangeEntry>(changesKey, entry => typeof entry.changeId === 'string' && typeof entry.messageId === 'string' && !!entry.change && ['edit', 'delete', 'react'].includes(entry.change.kind)),
    saveChanges: changes => writeList(changesKey, changes)
  }
}

// What another version of the page, or a person's own tinkering, left there is checked, not trusted.
function readList<T>(key: string, valid: (entry: T) => boolean): T[] {
  try {
    const entries = JSON.parse(localStorage.getItem(key) ?? '[]') as T[]
    return Array.isArray(entries) ? entries.filter(entry => entry && typeof entry === 'object' && valid(entry)) : []
  }
  catch {
    return []
  }
}

function writeList(key: string, entries: readonly unknown[]) {
  try {
    if (entries.length) localStorage.setItem(key, JSON.stringify(entries))
    else localStorage.removeItem(key)
  }
  catch {
    // Storage full or blocked: everything still goes out from memory.
  }
}

const outboxListeners = new Set<(entries: readonly OutboxEntry[]) => void>()
const changeListeners = new Set<(changes: readonly ChangeEntry[]) => void>()
const connection = shallowReactive<{ state: ConnectionState, retryAt: number | null }>({ state: 'idle', retryAt: null })
let shared: NatterClient | undefined

/**
 * The page's one protocol client (browser only; rendering on the server gets one that never
 * connects). Made for the person signed in when first asked for: signing out loads a fresh page,
 * so a client never outlives its person.
 */
export function useNatter(): NatterClient {
  if (import.meta.server) return new NatterClient({ transport: nowhere, userId: '' })
  if (shared) return shared
  const userId = useSessionStore().user?.id
  if (!userId) throw new Error('useNatter() needs a signed-in person')
  const client = new NatterClient({
    transport: browserTransport,
    userId,
    storage: localOutbox(userId),
    online: () => navigator.onLine,
    // A session that ended elsewhere keeps the outbox for this person's next sign-in.
    onSignedOut: () => leavePage('/login'),
    peerOf: conversationId => useConversationsStore().byId(conversationId)?.peer?.user.id ?? null,
    outbox: {
      onChange: entries => outboxListeners.forEach(listener => listener(entries)),
      onChanges: changes => changeListeners.forEach(listener => listener(changes))
    }
  })
  client.onState((state) => {
    connection.state = state
    connection.retryAt = client.retryAt
  })
  window.addEventListener('online', () => client.state !== 'idle' && client.networkChanged(true))
  window.addEventListener('offline', () => client.state !== 'idle' && client.networkChanged(false))
  // Back on the tab: no reason to sit out the rest of a long backoff.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && client.state === 'reconnecting') client.reconnectNow()
  })
  window.addEventListener('storage', (event) => {
    if (event.key === `natter_outbox:${userId}` || event.key === `natter_changes:${userId}`) client.outbox.reload()
  })
  shared = client
  return client
}

/** The connection as the page shows it: its state, and when the next attempt is due. */
export function useConnection(): Readonly<{ state: ConnectionState, retryAt: number | null }> {
  return connection
}

/** Hears every change of the outbox, with its entries as they now are. */
export function onOutboxChange(listener: (entries: readonly OutboxEntry[]) => void): () => void {
  outboxListeners.add(listener)
  return () => outboxListeners.delete(listener)
}

/** Hears every change of the queued message changes (edits, deletions, reactions), as they now are. */
export function onChangesChange(listener: (changes: readonly ChangeEntry[]) => void): () => void {
  changeListeners.add(listener)
  return () => changeListeners.delete(listener)
}

/** Signing out here: this person's unsent messages and changes go, from memory and from the browser. */
export function dropOutbox(userId: string) {
  shared?.outbox.clear()
  try {
    localStorage.removeItem(`natter_outbox:${userId}`)
    localStorage.removeItem(`natter_changes:${userId}`)
  }
  catch {
    // Storage blocked: there is nothing in it either.
  }
}

/**
 * Signing out, here or elsewhere: a fresh page at `path`, so nothing of this person (stores,
 * client, timers) stays in memory for whoever signs in next on this tab.
 */
export function leavePage(path: string) {
  shared?.stop()
  window.location.assign(path)
}

const nowhere: Transport = {
  fetch: () => Promise.reject(new Error('no requests from the server render')),
  openSocket: () => {
    throw new Error('no sockets from the server render')
  },
  csrfToken: () => undefined
}
