import type { Conversation } from '#shared/types/conversations'
import type { ChatMessage } from '#shared/types/messages'

/** Why a conversation left the list while this page was open, for a view that still shows it. */
export interface Departure {
  name: string | null
  reason: 'left' | 'removed' | 'gone'
  /** Who removed me, by name. */
  by: string | null
}

/**
 * The sidebar: every conversation I am in, direct and rooms, newest activity first, each with
 * its unread count and request state, kept current by the stream (messages, room changes,
 * reads on my other devices) and reloaded after every reconnect.
 */
export const useConversationsStore = defineStore('conversations', () => {
  const natter = useNatter()
  const api = useApi()
  const session = useSessionStore()
  const presence = usePresenceStore()
  const list = ref<Conversation[]>([])
  const loaded = ref(false)
  const loadError = ref<string | null>(null)
  const departed = ref<Record<string, Departure>>({})
  const fetching = new Map<string, Promise<Conversation | undefined>>()
  let loading: Promise<void> | undefined
  let refreshTimer: ReturnType<typeof setTimeout> | undefined
  let connectedBefore = false

  const me = computed(() => session.user?.id ?? '')
  // Seqs of messages mentioning me that arrived while this page was open: reading them drops the mention badge.
  const mentionSeqs = new Map<string, number[]>()
  const unreadTotal = computed(() => list.value.reduce((sum, conversation) => sum + conversation.unread, 0))

  function byId(id: string): Conversation | undefined {
    return list.value.find(conversation => conversation.id === id)
  }

  /** The direct conversation with someone (`/?with=<userId>`). */
  function byPeer(userId: string): Conversation | undefined {
    return list.value.find(conversation => conversation.peer?.user.id === userId)
  }

  /**
   * Watermarks only move forward, and an answer can be older than a frame heard while it was on
   * its way: a read this page took that the answer does not know yet (a request's, held until
   * accepted), and the other person's read a read.update brought. Without the second, the
   * request-accepted refresh that presence.update starts could put back "sent" over a "read".
   */
  function withLocalRead(answer: Conversation): Conversation {
    const known = byId(answer.id)
    if (!known) return answer
    let merged = answer
    if (known.readSeq > answer.readSeq) {
      const unread = answer.lastMessage && known.readSeq < answer.lastMessage.seq ? answer.unread : 0
      merged = { ...merged, readSeq: known.readSeq, unread }
    }
    if (known.peer && merged.peer && known.peer.user.id === merged.peer.user.id && known.peer.theirRead.seq > merged.peer.theirRead.seq) {
      merged = { ...merged, peer: { ...merged.peer, theirRead: known.peer.theirRead } }
    }
    return merged
  }

  async function fetchList() {
    const askedAt = Date.now()
    try {
      const answer = await api<Conversation[]>('GET', '/api/conversations')
      for (const conversation of answer) if (conversation.peer) presence.fromAnswer(conversation.peer.user.id, conversation.peer.presence, askedAt)
      list.value = answer.map(withLocalRead)
      loaded.value = true
      loadError.value = null
    }
    catch (error) {
      loadError.value = failureText(error, 'Your conversations could not be loaded.')
    }
  }

  /** Asks the server for the list; concurrent calls share one request. */
  function load(): Promise<void> {
    loading ??= fetchList().finally(() => {
      loading = undefined
    })
    return loading
  }

  /** For hints that the list is stale (a read elsewhere it cannot count): one refresh for a burst. */
  function refreshSoon() {
    clearTimeout(refreshTimer)
    refreshTimer = setTimeout(() => void load(), 300)
  }

  /** Puts a conversation as the server describes it in the list: new ones on top, known ones in place. */
  function put(conversation: Conversation, askedAt = Date.now()) {
    if (conversation.peer) presence.fromAnswer(conversation.peer.user.id, conversation.peer.presence, askedAt)
    departed.value = withoutKey(departed.value, conversation.id)
    const index = list.value.findIndex(known => known.id === conversation.id)
    if (index < 0) list.value.unshift(conversation)
    // A frame that overtook this answer made the row newer than it: the row stands.
    else if (list.value[index]!.lastSeq <= conversation.lastSeq) list.value.splice(index, 1, withLocalRead(conversation))
  }

  /** One conversation afresh (new to this page, or changed in a way no frame says); concurrent calls share one request. */
  function fetchOne(id: string): Promise<Conversation | undefined> {
    let pending = fetching.get(id)
    if (pending) return pending
    const askedAt = Date.now()
    pending = api<{ conversation: Conversation }>('GET', `/api/conversations/${id}`).then(({ conversation }) => {
      put(conversation, askedAt)
      return byId(id)
    }, (error) => {
      if (isApiError(error) && error.status === 404 && byId(id)) depart(id, { reason: 'gone', by: null })
      return undefined
    }).finally(() => fetching.delete(id))
    fetching.set(id, pending)
    return pending
  }

  /** I am no longer in it: it leaves the list, the stream forgets it, and an open view can say why. */
  function depart(id: string, why: Omit<Departure, 'name'>) {
    departed.value[id] = { name: byId(id)?.name ?? departed.value[id]?.name ?? null, ...why }
    list.value = list.value.filter(conversation => conversation.id !== id)
    natter.forget(id)
  }

  function toTop(conversation: Conversation) {
    const index = list.value.indexOf(conversation)
    if (index > 0) list.value.unshift(...list.value.splice(index, 1))
  }

  function noteMessage(message: ChatMessage) {
    const conversation = byId(message.conversationId)
    if (!conversation) {
      // Someone opened a conversation with me, or added me to a room: the server has the row.
      void fetchOne(message.conversationId)
      return
    }
    // Counted already: the answer this row came from was newer.
    if (message.seq <= conversation.lastSeq) return
    conversation.lastSeq = message.seq
    conversation.lastMessage = message
    if (message.from === me.value) {
      // Writing back to someone who wrote first accepts them.
      if (conversation.request === 'incoming') accepted(conversation)
    }
    else {
      if (message.seq > conversation.readSeq) conversation.unread += 1
      if (message.seq > conversation.readSeq && (message.mentions.includes(me.value) || message.mentionsRoom)) {
        conversation.mentions += 1
        mentionSeqs.set(conversation.id, [...(mentionSeqs.get(conversation.id) ?? []), message.seq])
      }
      // They answered my request: presence and receipts flow now.
      if (conversation.request === 'outgoing') void fetchOne(conversation.id)
    }
    toTop(conversation)
  }

  /**
   * Their messages up to `seq` are seen here; `seen` of them were unread. The badge drops at
   * once; the server hears of it now, or, for a request, once I accept it.
   */
  function noteRead(id: string, seq: number, seen: number) {
    const conversation = byId(id)
    if (!conversation || seq <= conversation.readSeq) return
    const mentionsSeen = (mentionSeqs.get(id) ?? []).filter(at => at > conversation.readSeq && at <= seq).length
    conversation.readSeq = seq
    const all = !conversation.lastMessage || seq >= conversation.lastMessage.seq
    conversation.unread = all ? 0 : Math.max(0, conversation.unread - seen)
    conversation.mentions = all ? 0 : Math.max(0, conversation.mentions - mentionsSeen)
    if (conversation.request !== 'incoming') natter.markRead(id, seq)
  }

  function accepted(conversation: Conversation) {
    conversation.request = null
    if (conversation.readSeq > 0) natter.markRead(conversation.id, conversation.readSeq)
  }

  /** Opens (or finds) the direct conversation with the person behind an address; throws the server's ApiError. */
  async function addContact(email: string): Promise<Conversation> {
    const { conversationId } = await api<{ conversationId: string }>('POST', '/api/contacts', { email })
    // Afresh even when listed: adding someone who asked me first accepts them.
    const conversation = await fetchOne(conversationId)
    if (!conversation) throw { status: 0, code: 'unknown', message: 'The conversation could not be opened. Try again.' } satisfies ApiError
    return conversation
  }

  /** Answers a request: accept (presence, typing and receipts start), block, or lift a block. */
  async function answer(conversation: Conversation, how: 'accept' | 'block' | 'unblock') {
    const contact = `/api/contacts/${conversation.peer!.user.id}`
    if (how === 'block') {
      await api('POST', `${contact}/block`)
      conversation.request = 'blocked'
      return
    }
    if (how === 'accept') await api('POST', `${contact}/accept`)
    else await api('DELETE', `${contact}/block`)
    accepted(conversation)
    await fetchOne(conversation.id)
  }

  natter.on('chat.receive', ({ type: _type, ...message }) => noteMessage(message))
  // An edit or deletion of the row's last message shows in its preview.
  natter.on('chat.update', (update) => {
    const conversation = byId(update.conversationId)
    if (!conversation) return
    conversation.lastSeq = Math.max(conversation.lastSeq, update.seq)
    const last = conversation.lastMessage
    if (last?.id !== update.messageId) return
    if (update.deleted) conversation.lastMessage = { ...last, body: '', deleted: true }
    else if (update.body !== undefined) conversation.lastMessage = { ...last, body: update.body, editedAt: update.editedAt ?? update.timestamp }
  })

  natter.on('room.update', (update) => {
    const aboutMe = update.userId === me.value
    if (aboutMe && (update.change === 'left' || update.change === 'removed')) {
      return depart(update.conversationId, { reason: update.change, by: update.change === 'removed' && update.by ? update.names?.[update.by] ?? null : null })
    }
    const conversation = byId(update.conversationId)
    if (!conversation) {
      if (aboutMe) void fetchOne(update.conversationId)
      return
    }
    if (update.seq <= conversation.lastSeq) return
    conversation.lastSeq = update.seq
    switch (update.change) {
      case 'added':
      case 'joined':
        conversation.memberCount += 1
        break
      case 'left':
      case 'removed':
        conversation.memberCount = Math.max(0, conversation.memberCount - 1)
        break
      case 'renamed':
        conversation.name = update.name ?? conversation.name
        conversation.topic = update.topic ?? conversation.topic
        break
      case 'role':
        if (aboutMe && update.role) conversation.role = update.role
        break
    }
  })

  // Someone added me: their request shows at once, not with their first message.
  natter.on('contact.request', (frame) => {
    if (!byId(frame.conversationId)) void fetchOne(frame.conversationId)
  })

  natter.on('read.update', (frame) => {
    const conversation = byId(frame.conversationId)
    if (!conversation) return
    if (frame.by === me.value) {
      // Read on another device of mine: the count below that is not known here, the server's is.
      if (frame.seq <= conversation.readSeq) return
      conversation.readSeq = frame.seq
      if (!conversation.lastMessage || frame.seq >= conversation.lastMessage.seq) conversation.unread = 0
      else refreshSoon()
      return
    }
    const peer = conversation.peer
    if (!peer || peer.user.id !== frame.by) return
    if (frame.seq > peer.theirRead.seq) peer.theirRead = { seq: frame.seq, at: frame.readAt }
    // Receipts come only from someone who accepted me.
    if (conversation.request === 'outgoing') void fetchOne(conversation.id)
  })

  // Presence comes only from someone who accepted me: it is how an answered request shows at once.
  natter.on('presence.update', (frame) => {
    const conversation = byPeer(frame.userId)
    if (conversation?.request === 'outgoing') void fetchOne(conversation.id)
  })

  natter.onGap((id, reason) => {
    if (reason === 'gone') depart(id, { reason: 'gone', by: null })
  })

  // What changed while away (new conversations, answered requests, counts) is in the list.
  natter.onState((state) => {
    if (state !== 'connected') return
    if (connectedBefore) void load()
    connectedBefore = true
  })

  return { list, loaded, loadError, departed, unreadTotal, byId, byPeer, load, put, fetchOne, depart, noteRead, addContact, answer }
})
