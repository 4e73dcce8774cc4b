import type { Conversation, CreateRoom, Member, Role, UpdateConversation } from '#shared/types/conversations'
import type { Reader } from '~/utils/timeline'

interface RoomDetail {
  members: Member[]
  loaded: boolean
  loading: boolean
  error: string | null
}

export interface BrowsedRoom {
  conversation: Conversation
  joined: boolean
}

/**
 * Rooms: making, finding, joining and leaving them, and each open room's members (roles,
 * presence, read watermarks for "Seen by"), kept current by room.update and read.update frames.
 * Every action throws the server's ApiError, whose message the UI shows.
 */
export const useRoomsStore = defineStore('rooms', () => {
  const natter = useNatter()
  const api = useApi()
  const session = useSessionStore()
  const conversations = useConversationsStore()
  const presence = usePresenceStore()
  const details = ref<Record<string, RoomDetail>>({})
  // How people are called, from member lists and room changes: the timeline and typing need names.
  const names = ref<Record<string, string>>({})

  function detail(id: string): RoomDetail | undefined {
    return details.value[id]
  }

  function nameOf(userId: string): string | null {
    return names.value[userId] ?? null
  }

  /** Names a room change carries (live, or fetched with a page of the timeline). */
  function learn(known: Record<string, string> | undefined) {
    for (const [userId, name] of Object.entries(known ?? {})) names.value[userId] = name
  }

  /** The room's members and the room itself afresh (opening it, or after the reader's receipts changed). */
  async function loadMembers(id: string) {
    details.value[id] ??= { members: [], loaded: false, loading: false, error: null }
    // The reactive one, not the object just assigned: changes to that would show nowhere.
    const state = details.value[id]!
    state.loading = true
    const askedAt = Date.now()
    try {
      const answer = await api<{ conversation: Conversation, members: Member[] }>('GET', `/api/conversations/${id}`)
      for (const member of answer.members) {
        names.value[member.user.id] = member.user.displayName
        presence.fromAnswer(member.user.id, member.presence, askedAt)
      }
      conversations.put(answer.conversation, askedAt)
      state.members = answer.members
      state.loaded = true
      state.error = null
    }
    catch (error) {
      state.error = failureText(error, 'The members could not be loaded.')
    }
    finally {
      state.loading = false
    }
  }

  /** For "Seen by": the members known here with their read watermarks. */
  function readers(id: string): Reader[] {
    return (details.value[id]?.members ?? []).map(member => ({ userId: member.user.id, name: member.user.displayName, readSeq: member.readSeq }))
  }

  async function create(body: CreateRoom): Promise<Conversation> {
    const { conversation } = await api<{ conversation: Conversation }>('POST', '/api/rooms', body)
    conversations.put(conversation)
    return conversation
  }

  /** Public rooms matching `q` and the rooms I am in. */
  async function browse(q: string): Promise<BrowsedRoom[]> {
    return api<BrowsedRoom[]>('GET', `/api/rooms${q.trim() ? `?q=${encodeURIComponent(q.trim())}` : ''}`)
  }

  async function join(id: string): Promise<Conversation> {
    const { conversation } = await api<{ conversation: Conversation }>('POST', `/api/rooms/${id}/join`)
    conversations.put(conversation)
    return conversation
  }

  async function leave(id: string) {
    await api('POST', `/api/rooms/${id}/leave`)
    conversations.depart(id, { reason: 'left', by: null })
    details.value = withoutKey(details.value, id)
  }

  async function invite(id: string, email: string): Promise<Member> {
    const { member } = await api<{ member: Member }>('POST', `/api/rooms/${id}/members`, { email })
    names.value[member.user.id] = member.user.displayName
    upsert(id, member)
    return member
  }

  async function remove(id: string, userId: string) {
    await api('DELETE', `/api/rooms/${id}/members/${userId}`)
    drop(id, userId)
  }

  async function setRole(id: string, userId: string, role: Exclude<Role, 'owner'>) {
    const { member } = await api<{ member: Member }>('PATCH', `/api/rooms/${id}/members/${userId}`, { role })
    upsert(id, member)
  }

  /** Name, topic, who may invite: the owner's and admins'. */
  async function update(id: string, change: UpdateConversation) {
    const { conversation } = await api<{ conversation: Conversation }>('PATCH', `/api/conversations/${id}`, change)
    conversations.put(conversation)
  }

  function upsert(id: string, member: Member) {
    const state = details.value[id]
    if (!state) return
    const index = state.members.findIndex(known => known.user.id === member.user.id)
    if (index >= 0) state.members.splice(index, 1, member)
    else state.members.push(member)
  }

  function drop(id: string, userId: string) {
    const state = details.value[id]
    if (state) state.members = state.members.filter(member => member.user.id !== userId)
  }

  natter.on('room.update', (update) => {
    learn(update.names)
    const state = details.value[update.conversationId]
    if (!state?.loaded || !update.userId) return
    const known = state.members.find(member => member.user.id === update.userId)
    switch (update.change) {
      case 'added':
      case 'joined':
        // Their watermark starts at the start; it moves with their read.update frames.
        if (!known) state.members.push({ user: { id: update.userId, displayName: names.value[update.userId] ?? 'Someone' }, role: 'member', presence: presence.people[update.userId] ?? { status: 'offline', lastSeen: null }, readSeq: session.user?.readReceipts === false ? null : 0 })
        break
      case 'left':
      case 'removed':
        drop(update.conversationId, update.userId)
        break
      case 'role':
        if (known && update.role) known.role = update.role
        break
    }
  })

  // Someone read up to `seq`, past a message of mine: "Seen by" counts them.
  natter.on('read.update', (frame) => {
    const member = details.value[frame.conversationId]?.members.find(candidate => candidate.user.id === frame.by)
    if (member && (member.readSeq === null || frame.seq > member.readSeq)) member.readSeq = frame.seq
  })

  natter.onGap((id, reason) => {
    if (reason === 'gone') details.value = withoutKey(details.value, id)
  })

  return { details, names, detail, nameOf, learn, loadMembers, readers, create, browse, join, leave, invite, remove, setRole, update }
})
