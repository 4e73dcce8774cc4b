import type { RoomUpdate } from '#shared/types/conversations'
import type { ServerFrame } from '#shared/types/frames'
import type { ChatMessage } from '#shared/types/messages'
import type { OutboxState } from '#shared/sdk/outbox'
import type { Phrase } from '~/utils/phrases'

/** One position of a conversation's stream: a message, or a room change shown as a line. */
interface Entry {
  seq: number
  message?: ChatMessage
  change?: RoomUpdate
}

interface ConversationState {
  /** The stream as far as loaded, in seq order, each seq once. */
  entries: Entry[]
  loaded: boolean
  loading: boolean
  loadingOlder: boolean
  hasOlder: boolean
  error: string | null
  olderError: string | null
  /** When the other person's watermark moved while this page watched: read up to `seq` at `at`. */
  readSteps: Array<{ seq: number, at: string }>
}

export type MessageStatus = OutboxState | 'sent' | 'read'

export interface MessageItem {
  kind: 'message'
  key: string
  id: string | null
  clientId: string | null
  seq: number | null
  from: string
  /** The author's name, for others' messages in a room. */
  author: string | null
  body: string
  timestamp: string
  mine: boolean
  /** Only for my own messages. */
  status: MessageStatus | null
  readAt: string | null
  /** False when the time is only known as "by then" (a watermark older than this page). */
  readAtExact: boolean
  error: string | null
  /** Under my last message in a room: who has read it. */
  seenBy: string[] | null
}

export interface LineItem {
  kind: 'line'
  key: string
  seq: number
  timestamp: string
  phrase: Phrase
}

export type TimelineItem = MessageItem | LineItem

const PAGE_SIZE = 50
const EVENTS_PAGE = 500

/**
 * Each opened conversation's stream, in server order: pages of messages by seq, the room
 * changes between them, and everything the protocol client applies after that. The timeline is
 * those, then what is still in the outbox, each with its status.
 */
export const useMessagesStore = defineStore('messages', () => {
  const natter = useNatter()
  const api = useApi()
  const session = useSessionStore()
  const conversations = useConversationsStore()
  const rooms = useRoomsStore()
  const outbox = useOutboxStore()
  const states = ref<Record<string, ConversationState>>({})
  const drafts = ref<Record<string, string>>({})
  // Message ids this page saw acknowledged: no outbox entry may pass for one of them.
  const acknowledged = reactive(new Set<string>())
  const me = computed(() => session.user?.id ?? '')

  function state(id: string): ConversationState | undefined {
    return states.value[id]
  }

  function place(into: ConversationState, frames: readonly ServerFrame[]): number {
    const entries: Entry[] = []
    for (const frame of frames) {
      if (frame.type === 'chat.receive') {
        const { type: _type, ...message } = frame
        entries.push({ seq: message.seq, message })
      }
      else if (frame.type === 'room.update') {
        rooms.learn(frame.names)
        entries.push({ seq: frame.seq, change: frame })
      }
    }
    return mergeBySeq(into.entries, entries)
  }

  function asFrames(messages: ChatMessage[]): ServerFrame[] {
    return messages.map(message => ({ type: 'chat.receive', ...message }))
  }

  /** Opens a conversation: its newest page the first time; the stream keeps it current after that. */
  async function open(id: string) {
    states.value[id] ??= { entries: [], loaded: false, loading: false, loadingOlder: false, hasOlder: false, error: null, olderError: null, readSteps: [] }
    // The reactive one, not the object just assigned: changes to that would show nowhere.
    const current = states.value[id]!
    if (current.loaded || current.loading) return
    current.loading = true
    current.error = null
    const upTo = Math.max(conversations.byId(id)?.lastSeq ?? 0, natter.appliedSeq(id))
    // From here the client applies the stream in order; what comes while the page loads joins it.
    natter.track(id, upTo)
    try {
      const page = upTo ? (await api<{ messages: ChatMessage[] }>('GET', `/api/conversations/${id}/messages?before=${upTo + 1}&limit=${PAGE_SIZE}`)).messages : []
      place(current, asFrames(page))
      current.hasOlder = page.length === PAGE_SIZE
      await fillChanges(id, current, current.hasOlder ? page[0]!.seq : 0, upTo)
      current.loaded = true
    }
    catch (error) {
      current.error = failureText(error, 'The messages could not be loaded.')
    }
    finally {
      current.loading = false
    }
  }

  /** The page before the oldest position held; resolves to how many positions it added. */
  async function loadOlder(id: string): Promise<number> {
    const current = states.value[id]
    const oldest = current?.entries[0]?.seq
    if (!current?.loaded || current.loadingOlder || !current.hasOlder || !oldest) return 0
    current.loadingOlder = true
    current.olderError = null
    try {
      const { messages } = await api<{ messages: ChatMessage[] }>('GET', `/api/conversations/${id}/messages?before=${oldest}&limit=${PAGE_SIZE}`)
      const added = place(current, asFrames(messages))
      current.hasOlder = messages.length === PAGE_SIZE
      return added + await fillChanges(id, current, current.hasOlder ? messages[0]!.seq : 0, oldest - 1)
    }
    catch (error) {
      current.olderError = failureText(error, 'Older messages could not be loaded.')
      return 0
    }
    finally {
      current.loadingOlder = false
    }
  }

  /** A room's positions in (after, upTo] that are no message are its changes: fetched from the events. */
  async function fillChanges(id: string, into: ConversationState, after: number, upTo: number): Promise<number> {
    if (conversations.byId(id)?.kind !== 'room') return 0
    const held = new Set(into.entries.map(entry => entry.seq))
    let from = after
    while (from < upTo && held.has(from + 1)) from += 1
    let added = 0
    while (from < upTo) {
      const { events } = await api<{ events: ServerFrame[] }>('GET', `/api/conversations/${id}/events?after=${from}&limit=${Math.min(EVENTS_PAGE, upTo - from)}`)
      added += place(into, events)
      const last = events.at(-1)
      if (!last || !('seq' in last) || last.seq === null) break
      from = last.seq
    }
    return added
  }

  /** Their messages up to `seq` are on screen while someone looks. */
  function markRead(id: string, seq: number) {
    const conversation = conversations.byId(id)
    if (!conversation || seq <= conversation.readSeq) return
    const seen = (states.value[id]?.entries ?? []).filter(({ message }) => message && message.from !== me.value && message.seq > conversation.readSeq && message.seq <= seq).length
    conversations.noteRead(id, seq, seen)
  }

  /** What the conversation view shows: the stream's messages and changes, then the outbox's messages. */
  function timeline(id: string): TimelineItem[] {
    const current = states.value[id]
    const entries = current?.entries ?? []
    const conversation = conversations.byId(id)
    const room = conversation?.kind === 'room'
    // With receipts off, nobody's are shown (and the server sends none).
    const receipts = session.user?.readReceipts !== false
    const theirRead = receipts && conversation?.peer ? conversation.peer.theirRead : { seq: 0, at: null }
    const stored = entries.flatMap(entry => entry.message ? [entry.message] : [])
    const items: TimelineItem[] = []
    let roomName: string | null | undefined
    for (const { seq, message, change } of entries) {
      if (change) {
        items.push({ kind: 'line', key: `line:${seq}`, seq, timestamp: change.timestamp, phrase: roomLine(change, roomName) })
        if (change.change === 'created' || change.change === 'renamed') roomName = change.name
        continue
      }
      const mine = message!.from === me.value
      const read = mine && !room && seq <= theirRead.seq
      const step = read ? current!.readSteps.find(candidate => candidate.seq >= seq) : undefined
      items.push({
        kind: 'message',
        key: message!.id,
        id: message!.id,
        clientId: null,
        seq,
        from: message!.from,
        author: room && !mine ? rooms.nameOf(message!.from) ?? 'Someone' : null,
        body: message!.body,
        timestamp: message!.timestamp,
        mine,
        status: mine ? (read ? 'read' : 'sent') : null,
        readAt: read ? (step?.at ?? theirRead.at) : null,
        readAtExact: !!step,
        error: null,
        seenBy: null
      })
    }
    for (const entry of unsentShown(outbox.of(id), stored, acknowledged, me.value)) {
      items.push({ kind: 'message', key: entry.clientId, id: null, clientId: entry.clientId, seq: null, from: me.value, author: null, body: entry.body, timestamp: entry.createdAt, mine: true, status: entry.state, readAt: null, readAtExact: false, error: entry.error ?? null, seenBy: null })
    }
    if (room && receipts) {
      const last = items.findLast((item): item is MessageItem => item.kind === 'message' && item.mine && item.seq !== null)
      if (last) last.seenBy = seenBy(rooms.readers(id), me.value, last.seq!)
    }
    return items
  }

  natter.on('chat.receive', (frame) => {
    const into = states.value[frame.conversationId]
    if (into) place(into, [frame])
  })
  natter.on('room.update', (frame) => {
    const into = states.value[frame.conversationId]
    if (into) place(into, [frame])
  })
  natter.on('chat.ack', frame => acknowledged.add(frame.id))
  // Exact read times, for "Read today at 14:05" in a direct conversation.
  natter.on('read.update', (frame) => {
    const peer = conversations.byId(frame.conversationId)?.peer
    if (peer?.user.id === frame.by) states.value[frame.conversationId]?.readSteps.push({ seq: frame.seq, at: frame.readAt })
  })
  // Left or removed (here, elsewhere, or found gone): what was loaded of it may have a hole by the
  // time it is joined again, so it is loaded afresh then.
  watch(() => Object.keys(conversations.departed), (ids) => {
    for (const id of ids) if (states.value[id]) states.value = withoutKey(states.value, id)
  })

  natter.onGap((id, reason) => {
    const current = states.value[id]
    if (!current) return
    // Gone: the conversations store departs it, which drops it here.
    if (reason === 'gone') return
    // Retention removed what was missed: the conversation starts again from its newest page.
    current.entries = []
    current.loaded = false
    void open(id)
  })

  return { states, drafts, state, open, loadOlder, markRead, timeline }
})
