import type { ChatMessage } from '#shared/types/messages'

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'offline'

export type OutboxState = 'queued' | 'sending' | 'failed'

/** A message written here that the server has not acknowledged yet; kept in the browser until it has. */
export interface OutboxEntry {
  clientId: string
  conversationId: string
  to: string
  body: string
  createdAt: string
  /** The conversation's last seq when it was written: the server's copy of it can only come later. */
  afterSeq: number
  state: OutboxState
  /** How often it went out on a socket: from the first time on, the server may hold it. */
  attempts: number
  errorCode?: string
  error?: string
}

export type MessageStatus = OutboxState | 'sent' | 'read'

/** One line of a conversation as the panel shows it: a stored message or one still in the outbox. */
export interface TimelineItem {
  key: string
  id: string | null
  clientId: string | null
  seq: number | null
  from: string
  body: string
  timestamp: string
  mine: boolean
  /** Only for one's own messages. */
  status: MessageStatus | null
  readAt: string | null
  /** False when the time is only known as "by then" (a watermark older than this page). */
  readAtExact: boolean
  error: string | null
}

interface Conversation {
  id: string
  otherId: string
  /** The server's messages, in seq order, each once. */
  messages: ChatMessage[]
  loaded: boolean
  loading: boolean
  loadingOlder: boolean
  nextBefore: string | null
  error: string | null
  olderError: string | null
  /** My read watermark here: their messages up to this seq are read. */
  myReadSeq: number
  /** When their watermark moved while this page watched: messages up to `seq` were read at `at`. */
  readSteps: Array<{ seq: number, at: string }>
  resyncing: boolean
  resyncAgain: boolean
}

export const PAGE_SIZE = 50
const RESYNC_PAGE = 200
// Past this many missed messages a conversation starts again from its newest page.
const RESYNC_MAX_PAGES = 5

/** Inserts messages by seq, each id once; returns the ones that were new. */
function mergeMessages(into: ChatMessage[], incoming: ChatMessage[]): ChatMessage[] {
  const added: ChatMessage[] = []
  for (const message of incoming) {
    if (into.some(known => known.id === message.id)) continue
    let index = into.length
    while (index > 0 && into[index - 1]!.seq > message.seq) index -= 1
    if (index > 0 && into[index - 1]!.seq === message.seq) {
      into.splice(index - 1, 1, message)
    }
    else {
      into.splice(index, 0, message)
    }
    added.push(message)
  }
  return added
}

/** The highest seq below which nothing is missing, counted from the oldest message held. */
function contiguousSeq(messages: ChatMessage[]): number {
  if (!messages.length) return 0
  let seq = messages[0]!.seq
  for (const message of messages) {
    if (message.seq > seq + 1) break
    seq = message.seq
  }
  return seq
}

/** Conversations, the outbox and the connection: everything the chat panel shows, in server order. */
export const useChatStore = defineStore('chat', () => {
  const api = useApi()
  const session = useSessionStore()
  const contacts = useContactsStore()
  const conversations = ref<Record<string, Conversation>>({})
  const outbox = ref<OutboxEntry[]>([])
  // Message ids this page saw acknowledged: no outbox entry may pass for one of them.
  const acknowledged = ref(new Set<string>())
  const connection = ref<{ state: ConnectionState, retryAt: number | null }>({ state: 'idle', retryAt: null })
  const drafts = ref<Record<string, string>>({})
  // Read reports the server has not taken yet (no socket, and the REST call failed).
  const unreportedReads = ref<string[]>([])
  const now = ref(Date.now())
  const me = computed(() => session.user?.id ?? '')
  const online = computed(() => connection.value.state === 'connected')

  function conversation(conversationId: string): Conversation | undefined {
    return conversations.value[conversationId]
  }

  function ensure(conversationId: string, otherId: string): Conversation {
    conversations.value[conversationId] ??= {
      id: conversationId,
      otherId,
      messages: [],
      loaded: false,
      loading: false,
      loadingOlder: false,
      nextBefore: null,
      error: null,
      olderError: null,
      myReadSeq: 0,
      readSteps: [],
      resyncing: false,
      resyncAgain: false
    }
    return conversations.value[conversationId]!
  }

  /** The newest seq this page knows of in a conversation, from its messages or the contact list. */
  function lastSeq(conversationId: string): number {
    const held = conversations.value[conversationId]?.messages.at(-1)?.seq ?? 0
    return Math.max(held, contacts.byConversation(conversationId)?.lastMessage?.seq ?? 0)
  }

  /** Opens a conversation: its newest page the first time, nothing more after that (the socket keeps it current). */
  async function open(conversationId: string, otherId: string) {
    const state = ensure(conversationId, otherId)
    if (state.loaded || state.loading) return
    await loadNewest(state)
  }

  async function loadNewest(state: Conversation) {
    state.loading = true
    state.error = null
    try {
      const page = await api<{ messages: ChatMessage[], nextBefore: string | null }>(`/api/messages/${state.otherId}`, { query: { limit: PAGE_SIZE } })
      mergeMessages(state.messages, page.messages)
      state.nextBefore = page.nextBefore
      state.myReadSeq = initialReadSeq(state)
      state.loaded = true
    }
    catch (error) {
      state.error = isApiError(error) ? error.message : 'The messages could not be loaded.'
    }
    finally {
      state.loading = false
    }
    // Messages that came in while the page was on its way may have left a hole.
    if (state.loaded && contiguousSeq(state.messages) < (state.messages.at(-1)?.seq ?? 0)) void resync(state.id)
  }

  // The contact list says how many of their messages are unread: the newest that many are, the rest are not.
  function initialReadSeq(state: Conversation): number {
    const unread = contacts.byConversation(state.id)?.unread ?? 0
    const theirs = state.messages.filter(message => message.from !== me.value)
    if (unread <= 0 || !theirs.length) return state.messages.at(-1)?.seq ?? 0
    return theirs[Math.max(0, theirs.length - unread)]!.seq - 1
  }

  /** The page before the oldest one held; resolves to the number of messages added. */
  async function loadOlder(conversationId: string): Promise<number> {
    const state = conversations.value[conversationId]
    if (!state?.loaded || state.loadingOlder || !state.nextBefore) return 0
    state.loadingOlder = true
    state.olderError = null
    try {
      const page = await api<{ messages: ChatMessage[], nextBefore: string | null }>(`/api/messages/${state.otherId}`, { query: { before: state.nextBefore, limit: PAGE_SIZE } })
      state.nextBefore = page.nextBefore
      return mergeMessages(state.messages, page.messages).length
    }
    catch (error) {
      state.olderError = isApiError(error) ? error.message : 'Older messages could not be loaded.'
      return 0
    }
    finally {
      state.loadingOlder = false
    }
  }

  /** Fetches what came after the last unbroken seq and merges it: the cure for gaps and reconnects. */
  async function resync(conversationId: string) {
    const state = conversations.value[conversationId]
    if (!state?.loaded) return
    if (state.resyncing) {
      state.resyncAgain = true
      return
    }
    state.resyncing = true
    let heardFromThem = false
    try {
      for (let page = 0; ; page += 1) {
        if (page === RESYNC_MAX_PAGES) {
          state.messages = []
          state.loaded = false
          await loadNewest(state)
          break
        }
        const after = contiguousSeq(state.messages)
        const answer = await api<{ messages: ChatMessage[] }>(`/api/conversations/${conversationId}/messages`, { query: { after, limit: RESYNC_PAGE } })
        const added = mergeMessages(state.messages, answer.messages)
        if (added.some(message => message.from !== me.value)) heardFromThem = true
        if (answer.messages.length < RESYNC_PAGE) break
      }
    }
    catch {
      // The next reconnect or gap tries again.
    }
    finally {
      state.resyncing = false
    }
    // Missed messages change the last message and the unread count: the server has both right.
    if (heardFromThem) contacts.refreshSoon()
    if (state.resyncAgain) {
      state.resyncAgain = false
      await resync(conversationId)
    }
  }

  async function resyncAll() {
    await Promise.all(Object.values(conversations.value).filter(state => state.loaded).map(state => resync(state.id)))
  }

  function place(message: ChatMessage) {
    const state = conversations.value[message.conversationId]
    if (!state) return
    const before = contiguousSeq(state.messages)
    mergeMessages(state.messages, [message])
    // Until the first page is in, there is nothing to measure a gap against.
    if (state.loaded && message.seq > before + 1) void resync(state.id)
  }

  /** A chat.receive: from the other person, or from my own other device. */
  function receive(message: ChatMessage) {
    contacts.noteMessage(message, me.value)
    place(message)
  }

  /** A chat.ack for an outbox entry: the message is stored, with its id and seq. */
  function confirm(entry: OutboxEntry, ack: { id: string, conversationId: string, seq: number, timestamp: string }) {
    acknowledged.value.add(ack.id)
    const message: ChatMessage = { id: ack.id, conversationId: ack.conversationId, seq: ack.seq, from: me.value, to: entry.to, body: entry.body, timestamp: ack.timestamp, replyTo: null, attachments: [], mentions: [] }
    contacts.noteMessage(message, me.value)
    place(message)
  }

  function moveMyReadSeq(state: Conversation, seq: number) {
    if (seq <= state.myReadSeq) return
    const contact = contacts.byConversation(state.id)
    if (contact) {
      const nowRead = state.messages.filter(message => message.from !== me.value && message.seq > state.myReadSeq && message.seq <= seq).length
      contacts.setUnread(state.id, contact.lastMessage && seq >= contact.lastMessage.seq ? 0 : contact.unread - nowRead)
    }
    state.myReadSeq = seq
  }

  /**
   * Marks their messages as read here (the badge drops at once) and returns the ids to report,
   * or none when they were read already.
   */
  function markRead(conversationId: string, messageIds: string[]): string[] {
    const state = conversations.value[conversationId]
    if (!state) return []
    const fresh = state.messages.filter(message => messageIds.includes(message.id) && message.from !== me.value && message.seq > state.myReadSeq)
    if (!fresh.length) return []
    moveMyReadSeq(state, Math.max(...fresh.map(message => message.seq)))
    return fresh.map(message => message.id)
  }

  /** A read.update frame: a watermark, up to the highest seq among the ids. */
  function applyRead(frame: { messageIds: string[], by: string, readAt: string }) {
    const ids = new Set(frame.messageIds)
    if (frame.by === me.value) {
      // Read on another device of mine.
      let found = false
      for (const state of Object.values(conversations.value)) {
        const seqs = state.messages.filter(message => ids.has(message.id)).map(message => message.seq)
        if (!seqs.length) continue
        found = true
        moveMyReadSeq(state, Math.max(...seqs))
      }
      if (!found) contacts.refreshSoon()
      return
    }
    const contact = contacts.byUser(frame.by)
    if (!contact) return
    const state = conversations.value[contact.conversationId]
    const seqs = (state?.messages ?? []).filter(message => ids.has(message.id)).map(message => message.seq)
    if (contact.lastMessage && ids.has(contact.lastMessage.id)) seqs.push(contact.lastMessage.seq)
    if (!seqs.length) return
    const seq = Math.max(...seqs)
    if (seq <= contact.theirRead.seq) return
    contacts.noteTheirRead(contact.conversationId, seq, frame.readAt)
    state?.readSteps.push({ seq, at: frame.readAt })
  }

  /** What the panel shows for a conversation: the server's messages, then what is still in the outbox. */
  function timeline(conversationId: string): TimelineItem[] {
    const state = conversations.value[conversationId]
    const messages = state?.messages ?? []
    const myId = me.value
    const contact = contacts.byConversation(conversationId)
    // With receipts off, nobody's receipts are shown (and the server sends none).
    const theirRead = session.user?.readReceipts === false ? { seq: 0, at: null } : (contact?.theirRead ?? { seq: 0, at: null })
    const pending = outbox.value.filter(entry => entry.conversationId === conversationId)

    // A message already sent once may be stored while its ack was lost with the connection: when
    // the server's copy shows up (a resync), it stands in for the entry until the ack comes.
    const stoodIn = new Set<string>()
    const replaced = new Set<string>()
    for (const entry of pending) {
      if (entry.attempts === 0 || (entry.errorCode && entry.errorCode !== 'timeout')) continue
      const copy = messages.find(message => message.from === myId && message.seq > entry.afterSeq && message.body === entry.body
        && !acknowledged.value.has(message.id) && !stoodIn.has(message.id))
      if (!copy) continue
      stoodIn.add(copy.id)
      replaced.add(entry.clientId)
    }

    const items: TimelineItem[] = messages.map((message) => {
      const mine = message.from === myId
      const read = mine && message.seq <= theirRead.seq
      const step = read ? state?.readSteps.find(candidate => candidate.seq >= message.seq) : undefined
      return {
        key: message.id,
        id: message.id,
        clientId: null,
        seq: message.seq,
        from: message.from,
        body: message.body,
        timestamp: message.timestamp,
        mine,
        status: mine ? (read ? 'read' : 'sent') : null,
        readAt: read ? (step?.at ?? theirRead.at) : null,
        readAtExact: !!step,
        error: null
      }
    })
    for (const entry of pending) {
      if (replaced.has(entry.clientId)) continue
      items.push({
        key: entry.clientId,
        id: null,
        clientId: entry.clientId,
        seq: null,
        from: myId,
        body: entry.body,
        timestamp: entry.createdAt,
        mine: true,
        status: entry.state,
        readAt: null,
        readAtExact: false,
        error: entry.error ?? null
      })
    }
    return items
  }

  function hasOlder(conversationId: string): boolean {
    return !!conversations.value[conversationId]?.nextBefore
  }

  function setConnection(state: ConnectionState, retryAt: number | null = null) {
    connection.value = { state, retryAt }
  }

  function tick() {
    now.value = Date.now()
  }

  function reset() {
    conversations.value = {}
    outbox.value = []
    acknowledged.value = new Set()
    drafts.value = {}
    unreportedReads.value = []
    connection.value = { state: 'idle', retryAt: null }
  }

  return {
    conversations, outbox, connection, drafts, unreportedReads, now, me, online,
    conversation, ensure, lastSeq, open, loadOlder, resync, resyncAll, receive, confirm, markRead, applyRead,
    timeline, hasOlder, setConnection, tick, reset
  }
})
