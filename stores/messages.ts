import type { RoomUpdate } from '#shared/types/conversations'
import type { ServerFrame } from '#shared/types/frames'
import type { ChatUpdate } from '#shared/types/changes'
import type { ChatMessage, ReplyPreview } from '#shared/types/messages'
import type { OutboxState } from '#shared/sdk/outbox'
import { withMyChanges, type PendingChange } from '#shared/sdk/pending-changes'
import type { Phrase } from '~/utils/phrases'

/** One position of a conversation's stream: a message, or a room change shown as a line. */
interface Entry {
  seq: number
  message?: StoredMessage
  change?: RoomUpdate
  /** A change to a message (`chat.update`): a position of the stream with nothing of its own to show. */
  update?: true
}

export interface Reaction {
  emoji: string
  count: number
  mine: boolean
  /** Who reacted, as far as the server told (it caps the list); for the tooltip. */
  users: string[]
}

/** A message in its current state: edits, deletion and reactions applied. */
export interface StoredMessage extends ChatMessage {
  editedAt: string | null
  deleted: boolean
  deletedBy: string | null
  reactions: Reaction[]
  replyPreview: ReplyPreview | null
  mentionsRoom: boolean
  /** The stream position this state is as of: a `chat.update` at or below it is in it already. */
  asOf: number
}

interface ConversationState {
  /** The stream as far as loaded, in seq order, each seq once. */
  entries: Entry[]
  loaded: boolean
  loading: boolean
  loadingOlder: boolean
  hasOlder: boolean
  /**
   * Opened around an older message (a search result): the entries end before the newest, so
   * what arrives live is not next to them. It waits in `ahead` until the pages below reach it.
   */
  hasNewer: boolean
  loadingNewer: boolean
  newerError: string | null
  ahead: ServerFrame[]
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
  editedAt: string | null
  deleted: boolean
  /** Who deleted it when it was not its author: "removed by …". */
  removedBy: string | null
  reactions: Reaction[]
  reply: ReplyPreview | null
  /** Mentions me, or the whole room: highlighted. */
  mentionsMe: boolean
  /** A change of mine the server has not confirmed yet: shown as made, and said to be on its way. */
  pending: PendingChange | null
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
// The server's largest page: a jump to a quoted message loads down to it at this pace.
const MAX_PAGE = 200
const EVENTS_PAGE = 500
// Live frames kept while the view is away from the newest; beyond this the newest are kept (the
// older ones were stored by the time the pages below reach them).
const AHEAD_MAX = 500
// A message this many positions above what is loaded is reached by paging up; farther, the
// conversation is loaded around it instead of loading everything in between.
const AROUND_BEYOND = 2 * MAX_PAGE

/** A message to show in its conversation: scrolled to and marked (opening a search result). */
export interface MessageTarget {
  conversationId: string
  messageId: string
  seq: number
}

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
  /** Per conversation: the message the composer answers, and the one it is editing. */
  const replying = ref<Record<string, string | undefined>>({})
  const editing = ref<Record<string, string | undefined>>({})
  /** The message the conversation view is asked to show next (a search result opened). */
  const target = ref<MessageTarget | null>(null)
  // Message ids this page saw acknowledged: no outbox entry may pass for one of them.
  const acknowledged = reactive(new Set<string>())
  const me = computed(() => session.user?.id ?? '')

  function state(id: string): ConversationState | undefined {
    return states.value[id]
  }

  /** A message as history or a frame gives it, in the shape the timeline keeps. */
  function stored(message: ChatMessage, asOf: number): StoredMessage {
    return {
      ...message,
      editedAt: message.editedAt ?? null,
      deleted: message.deleted ?? false,
      deletedBy: message.deletedBy ?? null,
      reactions: (message.reactions ?? []).map(reaction => ({ ...reaction, users: reaction.users ?? [] })),
      // A live frame carries only the id: the quote is made from the original as loaded here.
      replyPreview: message.replyPreview ?? replyOf(message.conversationId, message.replyTo),
      mentionsRoom: message.mentionsRoom ?? false,
      asOf: Math.max(asOf, message.seq)
    }
  }

  /** A change applies to the message it names, once, in stream order; one the loaded state has already is skipped. */
  function applyUpdate(into: ConversationState, frame: ChatUpdate) {
    const message = into.entries.find(entry => entry.message?.id === frame.messageId)?.message
    if (message && frame.seq > message.asOf) {
      message.asOf = frame.seq
      if (frame.deleted) {
        message.deleted = true
        message.deletedBy = frame.deletedBy ?? frame.by
        message.body = ''
        message.reactions = []
      }
      else if (frame.body !== undefined && !message.deleted) {
        message.body = frame.body
        message.editedAt = frame.editedAt ?? frame.timestamp
        if (frame.mentions) message.mentions = frame.mentions
        if (frame.mentionsRoom !== undefined) message.mentionsRoom = frame.mentionsRoom
      }
      if (frame.reactions && !message.deleted) {
        const before = new Map(message.reactions.map(reaction => [reaction.emoji, reaction.mine]))
        message.reactions = frame.reactions.map((tally) => {
          // The list names the first people only: my own change says for sure, else what I had.
          let mine = tally.users.includes(me.value) || (before.get(tally.emoji) ?? false)
          if (frame.reaction?.userId === me.value && frame.reaction.emoji === tally.emoji) mine = frame.reaction.on
          return { emoji: tally.emoji, count: tally.count, mine, users: tally.users }
        })
      }
    }
    // Replies quoting it show the change too.
    for (const entry of into.entries) {
      const preview = entry.message?.replyPreview
      if (preview?.id !== frame.messageId) continue
      if (frame.deleted) Object.assign(preview, { deleted: true, body: null })
      else if (frame.body !== undefined && !preview.deleted) preview.body = frame.body
    }
  }

  function place(into: ConversationState, frames: readonly ServerFrame[], asOf = 0): number {
    const entries: Entry[] = []
    const updates: ChatUpdate[] = []
    const held = new Set(into.entries.map(entry => entry.seq))
    for (const frame of frames) {
      if (frame.type === 'chat.receive') {
        // What is held is at least as current: it has every change applied since.
        if (held.has(frame.seq)) continue
        const { type: _type, ...message } = frame
        entries.push({ seq: message.seq, message: stored(message, asOf) })
      }
      else if (frame.type === 'chat.update') {
        entries.push({ seq: frame.seq, update: true })
        updates.push(frame)
      }
      else if (frame.type === 'room.update') {
        rooms.learn(frame.names)
        entries.push({ seq: frame.seq, change: frame })
      }
    }
    const added = mergeBySeq(into.entries, entries)
    for (const update of updates) applyUpdate(into, update)
    return added
  }

  function asFrames(messages: ChatMessage[]): ServerFrame[] {
    return messages.map(message => ({ type: 'chat.receive', ...message }))
  }

  function stateFor(id: string): ConversationState {
    states.value[id] ??= { entries: [], loaded: false, loading: false, loadingOlder: false, hasOlder: false, hasNewer: false, loadingNewer: false, newerError: null, ahead: [], error: null, olderError: null, readSteps: [] }
    // The reactive one, not the object just assigned: changes to that would show nowhere.
    return states.value[id]!
  }

  /** Forgets what was loaded, so the next `open` starts from the newest page. */
  function reset(current: ConversationState) {
    Object.assign(current, { entries: [], loaded: false, hasOlder: false, hasNewer: false, newerError: null, ahead: [], error: null, olderError: null })
  }

  /** Opens a conversation: its newest page the first time; the stream keeps it current after that. */
  async function open(id: string) {
    const current = stateFor(id)
    if (current.loaded || current.loading) return
    current.loading = true
    current.error = null
    const upTo = Math.max(conversations.byId(id)?.lastSeq ?? 0, natter.appliedSeq(id))
    // From here the client applies the stream in order; what comes while the page loads joins it.
    natter.track(id, upTo)
    try {
      const page = upTo ? (await api<{ messages: ChatMessage[] }>('GET', `/api/conversations/${id}/messages?before=${upTo + 1}&limit=${PAGE_SIZE}`)).messages : []
      place(current, asFrames(page), upTo)
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

  /** The page before the oldest position held (reaching `down` when given); resolves to how many positions it added. */
  async function loadOlder(id: string, down?: number): Promise<number> {
    const current = states.value[id]
    const oldest = current?.entries[0]?.seq
    if (!current?.loaded || current.loadingOlder || !current.hasOlder || !oldest) return 0
    current.loadingOlder = true
    current.olderError = null
    try {
      const limit = Math.min(MAX_PAGE, Math.max(PAGE_SIZE, oldest - (down ?? oldest)))
      const { messages } = await api<{ messages: ChatMessage[] }>('GET', `/api/conversations/${id}/messages?before=${oldest}&limit=${limit}`)
      const added = place(current, asFrames(messages), natter.appliedSeq(id))
      current.hasOlder = messages.length === limit
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

  /**
   * Loads a conversation so that the message at `seq` is in it: already there; a few pages up
   * (paged to, so the timeline stays one piece down to the newest); or else a page around it
   * (`?around=`), which ends before the newest: `hasNewer` until the pages below reach the end.
   * Resolves to whether the message is held.
   */
  async function openAround(id: string, messageId: string, seq: number): Promise<boolean> {
    const current = stateFor(id)
    if (current.loading) await until(() => !current.loading)
    if (find(id, messageId)) return true
    const oldest = current.entries[0]?.seq
    if (current.loaded && oldest !== undefined && seq < oldest && oldest - seq <= AROUND_BEYOND) {
      await reachSeq(id, seq)
      if (find(id, messageId)) return true
    }
    reset(current)
    current.loading = true
    // Away from the newest until the page says otherwise: what arrives meanwhile waits in `ahead`.
    current.hasNewer = true
    const upTo = Math.max(conversations.byId(id)?.lastSeq ?? 0, natter.appliedSeq(id))
    natter.track(id, upTo)
    try {
      const half = Math.floor(PAGE_SIZE / 2)
      const { messages: page } = await api<{ messages: ChatMessage[] }>('GET', `/api/conversations/${id}/messages?around=${seq}&limit=${PAGE_SIZE}`)
      // The server answers up to half before the position and the rest from it on.
      const before = page.filter(message => message.seq < seq).length
      current.hasOlder = before === half
      current.hasNewer = page.length - before === PAGE_SIZE - half
      place(current, asFrames(page), natter.appliedSeq(id))
      const first = page[0]?.seq ?? seq
      const last = page.at(-1)?.seq ?? seq
      await fillChanges(id, current, current.hasOlder ? first : 0, current.hasNewer ? last : upTo)
      if (!current.hasNewer) catchUp(current)
      current.loaded = true
    }
    catch (error) {
      // Try again opens the newest page, which holds what waited.
      current.hasNewer = false
      current.ahead = []
      current.error = failureText(error, 'The messages could not be loaded.')
    }
    finally {
      current.loading = false
    }
    return !!find(id, messageId)
  }

  /** Older pages until the position `seq` is held (or the history ends). */
  async function reachSeq(id: string, seq: number) {
    for (;;) {
      const current = states.value[id]
      const oldest = current?.entries[0]?.seq
      if (!current?.hasOlder || oldest === undefined || oldest <= seq) return
      if (!await loadOlder(id, seq)) return
    }
  }

  /** The page after the newest position held, while the view is away from the newest; resolves to how many it added. */
  async function loadNewer(id: string): Promise<number> {
    const current = states.value[id]
    const newest = current?.entries.at(-1)?.seq
    if (!current?.loaded || current.loadingNewer || !current.hasNewer || newest === undefined) return 0
    current.loadingNewer = true
    current.newerError = null
    try {
      const { messages } = await api<{ messages: ChatMessage[] }>('GET', `/api/conversations/${id}/messages?after=${newest}&limit=${PAGE_SIZE}`)
      const upTo = natter.appliedSeq(id)
      let added = place(current, asFrames(messages), upTo)
      const reachedEnd = messages.length < PAGE_SIZE
      added += await fillChanges(id, current, newest, reachedEnd ? upTo : messages.at(-1)!.seq)
      if (reachedEnd) added += catchUp(current)
      return added
    }
    catch (error) {
      current.newerError = failureText(error, 'Newer messages could not be loaded.')
      return 0
    }
    finally {
      current.loadingNewer = false
    }
  }

  /** The pages reached the newest: what arrived live meanwhile joins, and from now on it joins as it comes. */
  function catchUp(current: ConversationState): number {
    current.hasNewer = false
    const waiting = current.ahead
    current.ahead = []
    return place(current, waiting)
  }

  /** Back to the newest page (Jump to latest, or writing, while the view is away from it). */
  async function toLatest(id: string) {
    const current = states.value[id]
    if (!current?.hasNewer) return
    if (current.loading) await until(() => !current.loading)
    reset(current)
    await open(id)
  }

  /** Asks the conversation view to show a message: it switches there, loads around it and marks it. */
  function show(next: MessageTarget) {
    target.value = { ...next }
  }

  function until(ready: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const stop = watch(ready, (done) => {
        if (!done) return
        stop()
        resolve()
      }, { immediate: true, flush: 'sync' })
    })
  }

  /** A live frame: into the stream, or, while the view is away from the newest, held for when it gets there. */
  function receive(conversationId: string, frame: ServerFrame) {
    const into = states.value[conversationId]
    if (!into) return
    if (!into.hasNewer) {
      place(into, [frame])
      return
    }
    // An edit, deletion or reaction of a message shown now shows now; it is applied once (asOf).
    if (frame.type === 'chat.update') applyUpdate(into, frame)
    if (frame.type === 'room.update') rooms.learn(frame.names)
    into.ahead.push(frame)
    if (into.ahead.length > AHEAD_MAX) into.ahead.splice(0, into.ahead.length - AHEAD_MAX)
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
    for (const { seq, message, change, update } of entries) {
      if (update) continue
      if (change) {
        items.push({ kind: 'line', key: `line:${seq}`, seq, timestamp: change.timestamp, phrase: roomLine(change, roomName) })
        if (change.change === 'created' || change.change === 'renamed') roomName = change.name
        continue
      }
      const mine = message!.from === me.value
      const read = mine && !room && seq <= theirRead.seq
      const step = read ? current!.readSteps.find(candidate => candidate.seq >= seq) : undefined
      items.push(withMyChanges<Omit<MessageItem, 'pending'>>({
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
        seenBy: null,
        editedAt: message!.editedAt,
        deleted: message!.deleted,
        removedBy: message!.deleted && message!.deletedBy && message!.deletedBy !== message!.from ? (message!.deletedBy === me.value ? 'you' : nameFor(id, message!.deletedBy)) : null,
        reactions: message!.reactions,
        reply: message!.replyPreview,
        mentionsMe: !mine && !message!.deleted && (message!.mentions.includes(me.value) || message!.mentionsRoom)
      }, outbox.changes, me.value))
    }
    // Away from the newest (opened around a search result) the unsent messages would look as if
    // written back then: they show at the newest, where writing takes the view.
    const unsent = current?.hasNewer ? [] : outbox.of(id)
    for (const entry of unsentShown(unsent, stored, acknowledged, me.value)) {
      items.push(withMyChanges<Omit<MessageItem, 'pending'>>({ kind: 'message', key: entry.clientId, id: null, clientId: entry.clientId, seq: null, from: me.value, author: null, body: entry.body, timestamp: entry.createdAt, mine: true, status: entry.state, readAt: null, readAtExact: false, error: entry.error ?? null, seenBy: null, editedAt: null, deleted: false, removedBy: null, reactions: [], reply: replyOf(id, entry.replyTo), mentionsMe: false }, outbox.changes, me.value))
    }
    if (room && receipts && !current?.hasNewer) {
      const last = items.findLast((item): item is MessageItem => item.kind === 'message' && item.mine && item.seq !== null)
      if (last) last.seenBy = seenBy(rooms.readers(id), me.value, last.seq!)
    }
    return items
  }

  /** Someone's name as this conversation shows it: "You", the other person, a member. */
  function nameFor(id: string, userId: string): string {
    if (userId === me.value) return 'You'
    const peer = conversations.byId(id)?.peer
    if (peer?.user.id === userId) return peer.user.displayName
    return rooms.nameOf(userId) ?? 'Someone'
  }

  /** How a mention names someone: as the room knows them, me included (never "You"). */
  function mentionName(id: string, userId: string): string {
    if (userId === me.value) return session.user?.displayName ?? 'you'
    return nameFor(id, userId)
  }

  /** The quote an unsent reply shows, from the message it answers as loaded here. */
  function replyOf(id: string, replyTo: string | null | undefined): ReplyPreview | null {
    if (!replyTo) return null
    const message = find(id, replyTo)
    return { id: replyTo, ...(message && { seq: message.seq }), from: message?.from ?? null, body: message && !message.deleted ? message.body : null, deleted: message?.deleted ?? false, gone: false }
  }

  function find(id: string, messageId: string): StoredMessage | undefined {
    return states.value[id]?.entries.find(entry => entry.message?.id === messageId)?.message
  }

  /**
   * A quoted message, loaded if need be: around its seq when the preview names it, else older
   * pages down to it (a reply always comes after what it quotes). Resolves to its seq, or null
   * when the history no longer has it.
   */
  async function reach(id: string, messageId: string, seq?: number): Promise<number | null> {
    // Where it is known (a reply preview names it): one page around it, not every page down to it.
    if (seq !== undefined && !find(id, messageId)) await openAround(id, messageId, seq)
    for (;;) {
      const found = find(id, messageId)
      if (found) return found.seq
      const current = states.value[id]
      if (!current?.hasOlder) return null
      if (!await loadOlder(id, 1)) return find(id, messageId)?.seq ?? null
    }
  }

  /** My last message still there to edit (for Up in an empty composer). */
  function lastEditable(id: string): StoredMessage | undefined {
    return states.value[id]?.entries.findLast(entry => entry.message?.from === me.value && !entry.message.deleted)?.message
  }

  // Changes go through the protocol client's outbox: queued while offline, sent once, in order
  // behind the message they change; what the server applied comes back as chat.update.
  function edit(messageId: string, body: string) {
    natter.edit(messageId, body)
  }

  function remove(messageId: string) {
    natter.remove(messageId)
  }

  function react(messageId: string, emoji: string, on: boolean) {
    natter.react(messageId, emoji, on)
  }

  natter.on('chat.update', frame => receive(frame.conversationId, frame))
  natter.on('chat.receive', frame => receive(frame.conversationId, frame))
  natter.on('room.update', frame => receive(frame.conversationId, frame))
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
    reset(current)
    void open(id)
  })

  return { states, drafts, replying, editing, target, state, open, openAround, loadOlder, loadNewer, toLatest, show, markRead, timeline, find, reach, lastEditable, nameFor, mentionName, edit, remove, react }
})
