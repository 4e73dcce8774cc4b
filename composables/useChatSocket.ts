import type { ClientFrame, ServerFrame } from '#shared/types/frames'

const PING_EVERY_MS = 25_000
const PONG_TIMEOUT_MS = 10_000
const FIRST_RETRY_MS = 500
const MAX_RETRY_MS = 30_000
const MAX_IDS_PER_REPORT = 500

export interface ChatConnection {
  /** Connects and keeps connecting until stop(); idempotent. */
  start(): void
  stop(): void
  /** True when the frame went out on an open socket. */
  send(frame: ClientFrame): boolean
  /** Skips the wait before the next attempt. */
  reconnectNow(): void
  /** Read receipts: on the socket when it is open, else over REST, else kept for the next connection. */
  reportRead(messageIds: string[]): Promise<void>
}

const inert: ChatConnection = {
  start() {},
  stop() {},
  send: () => false,
  reconnectNow() {},
  reportRead: async () => {}
}

let shared: ChatConnection | undefined

/**
 * The one WebSocket of this page (client only): reconnects with backoff and jitter, pings every
 * 25 s, and on every (re)connect sends the outbox again in order, resyncs the open conversations
 * and refreshes the contacts. Its state is `useChatStore().connection`.
 */
export function useChatSocket(): ChatConnection {
  if (import.meta.server) return inert
  shared ??= createChatSocket()
  return shared
}

function createChatSocket(): ChatConnection {
  const nuxtApp = useNuxtApp()
  const api = useApi()
  const chat = useChatStore()
  const contacts = useContactsStore()
  const session = useSessionStore()
  const outbox = useOutbox()
  let ws: WebSocket | null = null
  let running = false
  let owner: string | null = null
  let attempt = 0
  let everConnected = false
  let retryTimer: ReturnType<typeof setTimeout> | undefined
  let pingTimer: ReturnType<typeof setInterval> | undefined
  let pongTimer: ReturnType<typeof setTimeout> | undefined
  let clockTimer: ReturnType<typeof setInterval> | undefined

  function address() {
    return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`
  }

  function start() {
    if (running || !session.user) return
    running = true
    if (owner !== session.user.id) {
      // Someone else signed in on this tab: nothing of the last person's may show or be sent.
      chat.reset()
      contacts.reset()
      owner = session.user.id
      everConnected = false
    }
    outbox.restore(owner)
    window.addEventListener('online', onOnline)
    window.addEventListener('offline', onOffline)
    document.addEventListener('visibilitychange', onVisibilityChange)
    clockTimer = setInterval(() => chat.tick(), 15_000)
    void contacts.load()
    connect()
  }

  function stop() {
    running = false
    window.removeEventListener('online', onOnline)
    window.removeEventListener('offline', onOffline)
    document.removeEventListener('visibilitychange', onVisibilityChange)
    clearInterval(clockTimer)
    clearTimeout(retryTimer)
    drop(1000)
    chat.setConnection('idle')
  }

  function connect() {
    clearTimeout(retryTimer)
    if (!running || ws) return
    if (!navigator.onLine) {
      chat.setConnection('offline')
      return
    }
    chat.setConnection('connecting')
    const socket = new WebSocket(address())
    ws = socket
    let opened = false
    socket.onopen = () => {
      if (ws !== socket) return
      opened = true
      attempt = 0
      chat.setConnection('connected')
      startPing()
      connected()
    }
    socket.onmessage = (event) => {
      if (ws === socket && typeof event.data === 'string') handle(event.data)
    }
    socket.onclose = (event) => {
      if (ws !== socket) return
      ws = null
      closed(event.code, opened)
    }
  }

  /** Lets go of the current socket at once; its close event, whenever it comes, is ignored. */
  function drop(code: number) {
    const socket = ws
    if (!socket) return
    ws = null
    stopPing()
    outbox.pause()
    try {
      socket.close(code)
    }
    catch {
      // Already closing.
    }
  }

  function connected() {
    outbox.resume()
    const unreported = chat.unreportedReads.splice(0)
    if (unreported.length) void reportRead(unreported)
    void chat.resyncAll()
    if (everConnected || !contacts.loaded) void contacts.load()
    everConnected = true
  }

  function closed(code: number, wasOpen: boolean) {
    stopPing()
    outbox.pause()
    // Nobody tells this page about typing while it is away.
    for (const userId of Object.keys(contacts.typing)) contacts.setTyping(userId, false)
    if (!running) return
    if (code === 4401) return signedOut()
    if (!navigator.onLine) return chat.setConnection('offline')
    // 1012: the server is restarting; another instance (or this one, soon) takes the socket.
    if (code === 1012) return retryIn(Math.random() * 1000)
    // A refused upgrade looks like any failed connection: ask whether the session is still there.
    if (!wasOpen) void checkSession()
    const base = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** attempt)
    attempt += 1
    retryIn(base / 2 + Math.random() * (base / 2))
  }

  function retryIn(delay: number) {
    clearTimeout(retryTimer)
    chat.setConnection('reconnecting', Date.now() + delay)
    retryTimer = setTimeout(connect, delay)
  }

  function reconnectNow() {
    if (!running || ws) return
    attempt = 0
    connect()
  }

  async function checkSession() {
    try {
      await api('/api/me')
    }
    catch (error) {
      if (isApiError(error) && error.status === 401) signedOut()
    }
  }

  function signedOut() {
    stop()
    session.user = null
    void nuxtApp.runWithContext(() => navigateTo('/login'))
  }

  function onOnline() {
    attempt = 0
    connect()
  }

  function onOffline() {
    clearTimeout(retryTimer)
    drop(1000)
    chat.setConnection('offline')
  }

  function onVisibilityChange() {
    // Back on the tab: no reason to sit out the rest of a long backoff.
    if (document.visibilityState === 'visible' && chat.connection.state === 'reconnecting') reconnectNow()
  }

  function startPing() {
    stopPing()
    pingTimer = setInterval(() => {
      if (!send({ type: 'ping' })) return
      clearTimeout(pongTimer)
      // No pong: the connection is dead without having said so (a sleeping laptop, a lost route).
      pongTimer = setTimeout(() => {
        drop(4000)
        closed(1006, true)
      }, PONG_TIMEOUT_MS)
    }, PING_EVERY_MS)
  }

  function stopPing() {
    clearInterval(pingTimer)
    clearTimeout(pongTimer)
  }

  function send(frame: ClientFrame): boolean {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false
    ws.send(JSON.stringify(frame))
    return true
  }

  async function reportRead(messageIds: string[]) {
    for (let index = 0; index < messageIds.length; index += MAX_IDS_PER_REPORT) {
      const chunk = messageIds.slice(index, index + MAX_IDS_PER_REPORT)
      if (send({ type: 'read.update', messageIds: chunk })) continue
      try {
        await api('/api/read-receipt', { method: 'POST', body: { messageIds: chunk } })
      }
      catch {
        chat.unreportedReads.push(...chunk)
      }
    }
  }

  function handle(text: string) {
    let frame: ServerFrame
    try {
      frame = JSON.parse(text) as ServerFrame
    }
    catch {
      return
    }
    switch (frame.type) {
      case 'chat.ack': {
        const entry = outbox.acknowledge(frame.clientId)
        // Another tab's message, settled here: the server has it, so fetch it like a gap.
        if (entry) chat.confirm(entry, frame)
        else void chat.resync(frame.conversationId)
        return
      }
      case 'chat.receive': {
        const { type: _type, ...message } = frame
        chat.receive(message)
        return
      }
      case 'presence.update':
        return contacts.setPresence(frame.userId, frame.status, frame.lastSeen)
      case 'typing.update':
        return contacts.setTyping(frame.from, frame.typing)
      case 'read.update':
        return chat.applyRead(frame)
      case 'pong':
        return clearTimeout(pongTimer)
      case 'error':
        if (frame.ref) outbox.reject(frame.ref, frame.code, frame.message)
        return
    }
  }

  return { start, stop, send, reconnectNow, reportRead }
}
