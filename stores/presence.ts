import type { Presence } from '#shared/types/presence'

// The server clears typing 5 s after the last start; this is the fallback when that frame is lost.
const TYPING_FALLBACK_MS = 6_000
const UNKNOWN: Presence = { status: 'offline', lastSeen: null }

/** Presence as the page shows it: 'unknown' while this page's own connection is down. */
export type ShownPresence = Presence | { status: 'unknown', lastSeen: string | null }

/** Who is online, and who is typing where: several typists per conversation, none of them for ever. */
export const usePresenceStore = defineStore('presence', () => {
  const natter = useNatter()
  const people = ref<Record<string, Presence>>({})
  // conversationId -> the people typing there, in the order they started.
  const typing = ref<Record<string, string[]>>({})
  // When a frame last spoke for a person: an answer asked for earlier must not undo it.
  const heardAt = new Map<string, number>()
  const expiries = new Map<string, ReturnType<typeof setTimeout>>()

  const connection = useConnection()

  function of(userId: string): ShownPresence {
    const known = people.value[userId] ?? UNKNOWN
    // Cut off, the page hears no changes: a green dot from before would vouch for what it cannot know.
    return connection.state === 'connected' ? known : { status: 'unknown', lastSeen: known.lastSeen }
  }

  /** What a REST answer asked for at `askedAt` says about someone; a frame heard since then wins. */
  function fromAnswer(userId: string, presence: Presence, askedAt: number) {
    const heard = heardAt.get(userId)
    if (heard === undefined || heard < askedAt) people.value[userId] = presence
  }

  function typists(conversationId: string): string[] {
    return typing.value[conversationId] ?? []
  }

  function setTyping(conversationId: string, userId: string, on: boolean) {
    const key = `${conversationId}:${userId}`
    clearTimeout(expiries.get(key))
    expiries.delete(key)
    const now = typing.value[conversationId] ?? []
    if (!on) {
      if (now.includes(userId)) typing.value[conversationId] = now.filter(id => id !== userId)
      return
    }
    if (!now.includes(userId)) typing.value[conversationId] = [...now, userId]
    expiries.set(key, setTimeout(() => setTyping(conversationId, userId, false), TYPING_FALLBACK_MS))
  }

  function clearTyping() {
    for (const timer of expiries.values()) clearTimeout(timer)
    expiries.clear()
    typing.value = {}
  }

  /** The room whose members' presence the page shows (its member list), or none. */
  function watch(conversationId: string | null) {
    natter.watch(conversationId)
  }

  natter.on('presence.update', (frame) => {
    heardAt.set(frame.userId, Date.now())
    people.value[frame.userId] = { status: frame.status, lastSeen: frame.lastSeen ?? people.value[frame.userId]?.lastSeen ?? null }
    if (frame.status === 'offline') for (const conversationId of Object.keys(typing.value)) setTyping(conversationId, frame.userId, false)
  })
  natter.on('typing.update', frame => setTyping(frame.conversationId, frame.from, frame.typing))
  // Their message ends their typing, whatever became of the stop.
  natter.on('chat.receive', frame => setTyping(frame.conversationId, frame.from, false))
  // Nobody tells a page about typing while it is away.
  natter.onState((state) => {
    if (state !== 'connected') clearTyping()
  })

  return { people, typing, of, fromAnswer, typists, watch }
})
