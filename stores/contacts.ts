import type { ChatMessage } from '#shared/types/messages'
import type { Contact } from '#shared/types/contacts'
import type { PresenceStatus } from '#shared/types/presence'

/** The other person's read watermark: every message of yours with seq ≤ `seq` is read (0: none, or receipts are off). */
export interface ReadMark {
  seq: number
  at: string | null
}

export interface Presence {
  status: PresenceStatus
  lastSeen: string | null
}

export type ContactEntry = Omit<Contact, 'theirRead' | 'presence'> & { theirRead: ReadMark }

type ContactAnswer = Omit<Contact, 'theirRead'> & { theirRead?: ReadMark | null }

// The server clears typing after 5 s without a refresh; this is the fallback when that frame is lost.
const TYPING_FALLBACK_MS = 6_000

/** The people this person chats with: presence, typing, last message and unread count per conversation. */
export const useContactsStore = defineStore('contacts', () => {
  const api = useApi()
  const list = ref<ContactEntry[]>([])
  const loaded = ref(false)
  const loadError = ref<string | null>(null)
  const presence = ref<Record<string, Presence>>({})
  const typing = ref<Record<string, boolean>>({})
  // When a presence frame last spoke for a person: a contacts answer asked earlier must not undo it.
  const presenceHeardAt = new Map<string, number>()
  const typingTimers = new Map<string, ReturnType<typeof setTimeout>>()
  let loading: Promise<void> | undefined
  let refreshTimer: ReturnType<typeof setTimeout> | undefined

  const unreadTotal = computed(() => list.value.reduce((sum, contact) => sum + contact.unread, 0))

  function byUser(userId: string): ContactEntry | undefined {
    return list.value.find(contact => contact.user.id === userId)
  }

  function byConversation(conversationId: string): ContactEntry | undefined {
    return list.value.find(contact => contact.conversationId === conversationId)
  }

  function presenceOf(userId: string): Presence {
    return presence.value[userId] ?? { status: 'offline', lastSeen: null }
  }

  async function fetchList() {
    const askedAt = Date.now()
    try {
      const answer = await api<ContactAnswer[]>('/api/contacts')
      for (const contact of answer) {
        const heard = presenceHeardAt.get(contact.user.id)
        if (heard === undefined || heard < askedAt) presence.value[contact.user.id] = contact.presence
      }
      list.value = answer.map(({ presence: _presence, theirRead, ...contact }) => ({ ...contact, theirRead: theirRead ?? { seq: 0, at: null } }))
      loaded.value = true
      loadError.value = null
    }
    catch (error) {
      loadError.value = isApiError(error) ? error.message : 'Your contacts could not be loaded.'
    }
  }

  /** Asks the server for the list; concurrent calls share one request. */
  function load(): Promise<void> {
    loading ??= fetchList().finally(() => {
      loading = undefined
    })
    return loading
  }

  /** For hints that the list is stale (a stranger's message, a gap): one refresh for a burst of them. */
  function refreshSoon() {
    clearTimeout(refreshTimer)
    refreshTimer = setTimeout(() => void load(), 300)
  }

  /** Opens (or finds) the conversation with the person behind an address; throws the server's ApiError. */
  async function add(email: string): Promise<ContactEntry> {
    const answer = await api<Pick<Contact, 'user' | 'conversationId'>>('/api/contacts', { method: 'POST', body: { email } })
    const known = byUser(answer.user.id)
    if (known) return known
    list.value.unshift({ user: answer.user, conversationId: answer.conversationId, lastMessage: null, unread: 0, theirRead: { seq: 0, at: null }, request: 'outgoing' })
    void load()
    return list.value[0]!
  }

  function setPresence(userId: string, status: PresenceStatus, lastSeen: string | null) {
    presenceHeardAt.set(userId, Date.now())
    presence.value[userId] = { status, lastSeen }
    if (status === 'offline') setTyping(userId, false)
  }

  function setTyping(userId: string, on: boolean) {
    clearTimeout(typingTimers.get(userId))
    typingTimers.delete(userId)
    if (!on) {
      if (typing.value[userId]) typing.value[userId] = false
      return
    }
    typing.value[userId] = true
    typingTimers.set(userId, setTimeout(() => setTyping(userId, false), TYPING_FALLBACK_MS))
  }

  /**
   * A message in one of the conversations, from either side. Returns false for a message this list
   * has already counted (the server may deliver one twice) or for a conversation it does not know.
   */
  function noteMessage(message: ChatMessage, myId: string): boolean {
    const contact = byConversation(message.conversationId)
    if (!contact) {
      refreshSoon()
      return false
    }
    if (contact.lastMessage && contact.lastMessage.seq >= message.seq) return false
    if (contact.lastMessage && message.seq > contact.lastMessage.seq + 1) refreshSoon()
    contact.lastMessage = message
    if (message.from !== myId) {
      contact.unread += 1
      setTyping(message.from, false)
    }
    // Newest activity first.
    const index = list.value.indexOf(contact)
    if (index > 0) {
      list.value.splice(index, 1)
      list.value.unshift(contact)
    }
    return true
  }

  function setUnread(conversationId: string, unread: number) {
    const contact = byConversation(conversationId)
    if (contact) contact.unread = Math.max(0, unread)
  }

  function noteTheirRead(conversationId: string, seq: number, at: string | null) {
    const contact = byConversation(conversationId)
    if (contact && seq > contact.theirRead.seq) contact.theirRead = { seq, at }
  }

  function reset() {
    list.value = []
    loaded.value = false
    loadError.value = null
    presence.value = {}
    presenceHeardAt.clear()
    for (const userId of Object.keys(typing.value)) setTyping(userId, false)
    typing.value = {}
    clearTimeout(refreshTimer)
  }

  return { list, loaded, loadError, presence, typing, unreadTotal, byUser, byConversation, presenceOf, load, refreshSoon, add, setPresence, setTyping, noteMessage, setUnread, noteTheirRead, reset }
})
