import { MAX_SEARCH_CHARS, type SearchAnswerBody, type SearchResult } from '#shared/types/search'
import type { KnownConversation, KnownPerson, SearchDirectory, SearchParams } from '~/utils/search'

// Typing pauses shorter than this are one search.
const DEBOUNCE_MS = 200
const PAGE = 20

export type SearchFailure
  /** The server refused the question (400): its words are shown. */
  = | { kind: 'refused', message: string }
    | { kind: 'network', message: string }
    /** 429: asked again by itself at `retryAt`. */
    | { kind: 'throttled', message: string, retryAt: number }
    | { kind: 'failed', message: string }

/** One conversation's results, in the order the server ranked its best one. */
export interface SearchGroup {
  conversationId: string
  kind: 'room' | 'direct'
  name: string
  results: SearchResult[]
}

/**
 * The search box: its text read into filters against the people and rooms this page knows
 * (`utils/search.ts`), searched as the person types (one request at a time, the one before
 * cancelled), the results grouped by conversation, and `next` for more.
 */
export const useSearchStore = defineStore('search', () => {
  const api = useApi()
  const session = useSessionStore()
  const conversations = useConversationsStore()
  const rooms = useRoomsStore()

  const text = ref('')
  const results = ref<SearchResult[]>([])
  const next = ref<string | null>(null)
  /** `idle`: nothing asked; `searching`: the first page is on its way (or waiting for typing to pause). */
  const status = ref<'idle' | 'searching' | 'done' | 'failed'>('idle')
  const loadingMore = ref(false)
  const failure = ref<SearchFailure | null>(null)
  /** The question the shown results answer. */
  const answered = ref<SearchParams | null>(null)

  const directory = computed<SearchDirectory>(() => {
    const people = new Map<string, KnownPerson>()
    const known: KnownConversation[] = []
    for (const conversation of conversations.list) {
      const peer = conversation.peer?.user
      if (peer) {
        people.set(peer.id, { id: peer.id, name: peer.displayName, email: peer.email })
        known.push({ id: conversation.id, kind: 'direct', name: peer.displayName, peer: { id: peer.id, name: peer.displayName, email: peer.email } })
      }
      else if (conversation.kind === 'room') {
        known.push({ id: conversation.id, kind: 'room', name: conversation.name ?? '' })
      }
    }
    for (const detail of Object.values(rooms.details)) {
      for (const { user } of detail.members) {
        if (!people.has(user.id)) people.set(user.id, { id: user.id, name: user.displayName, email: user.email })
      }
    }
    const user = session.user
    if (user) people.delete(user.id)
    return { me: user ? { id: user.id, name: user.displayName, email: user.email } : undefined, people: [...people.values()], conversations: known }
  })

  const resolved = computed(() => resolveSearch(parseSearchText(text.value), directory.value, MAX_SEARCH_CHARS))
  const question = computed(() => resolved.value.params ? JSON.stringify(resolved.value.params) : '')

  /** Results by conversation, each group where its best result was; the order inside as ranked. */
  const groups = computed<SearchGroup[]>(() => {
    const byId = new Map<string, SearchGroup>()
    for (const result of results.value) {
      const { id, kind } = result.conversation
      let group = byId.get(id)
      if (!group) {
        group = { conversationId: id, kind, name: conversationName(result), results: [] }
        byId.set(id, group)
      }
      group.results.push(result)
    }
    return [...byId.values()]
  })

  /** In the order the keyboard goes through them: group by group. */
  const ordered = computed(() => groups.value.flatMap(group => group.results))

  /** A room by its name; a direct conversation by the other person, as the sidebar calls them. */
  function conversationName(result: SearchResult): string {
    const known = conversations.byId(result.conversation.id)
    if (result.conversation.kind === 'direct') {
      const other = known?.peer?.user.displayName ?? nameOf(result.message.from === session.user?.id ? result.message.to : result.message.from)
      return other ?? result.conversation.name ?? 'Direct chat'
    }
    return known?.name ?? result.conversation.name ?? 'Room'
  }

  function nameOf(userId: string | null): string | null {
    if (!userId) return null
    if (userId === session.user?.id) return 'You'
    return directory.value.people.find(person => person.id === userId)?.name ?? rooms.nameOf(userId)
  }

  /** Who said it: "You", or the name the page knows them by. */
  function senderOf(result: SearchResult): string {
    return nameOf(result.message.from) ?? 'Someone'
  }

  let controller: AbortController | null = null
  let timer: ReturnType<typeof setTimeout> | undefined
  let retryTimer: ReturnType<typeof setTimeout> | undefined

  function cancel() {
    clearTimeout(timer)
    clearTimeout(retryTimer)
    controller?.abort()
    controller = null
  }

  function path(params: SearchParams, cursor?: string): string {
    const query = new URLSearchParams({ q: params.q, limit: String(PAGE) })
    for (const key of ['from', 'conversationId', 'before', 'after', 'has'] as const) {
      const value = params[key]
      if (value) query.set(key, value)
    }
    if (cursor) query.set('cursor', cursor)
    return `/api/search?${query}`
  }

  function failed(error: unknown): SearchFailure {
    if (!isApiError(error)) return { kind: 'failed', message: 'The search failed. Try again.' }
    if (error.status === 400) return { kind: 'refused', message: error.message }
    if (error.status === 429) {
      const seconds = error.retryAfter ?? 5
      return { kind: 'throttled', message: `Too many searches at once. Natter asks again in ${seconds} s.`, retryAt: Date.now() + seconds * 1000 }
    }
    if (error.code === 'network') return { kind: 'network', message: error.message }
    return { kind: 'failed', message: error.message }
  }

  /** Asks the server; only the latest question's answer is kept, the one before is cancelled. */
  async function ask(params: SearchParams, cursor?: string) {
    controller?.abort()
    const mine = new AbortController()
    controller = mine
    if (cursor) loadingMore.value = true
    else status.value = 'searching'
    failure.value = null
    try {
      const answer = await api<SearchAnswerBody>('GET', path(params, cursor), undefined, { signal: mine.signal })
      if (mine.signal.aborted) return
      results.value = cursor ? [...results.value, ...answer.results] : answer.results
      next.value = answer.next
      answered.value = params
      status.value = 'done'
      learnRooms(answer.results)
    }
    catch (error) {
      if (mine.signal.aborted) return
      failure.value = failed(error)
      if (!cursor) {
        status.value = 'failed'
        results.value = []
        next.value = null
      }
      const wait = failure.value.kind === 'throttled' ? failure.value.retryAt - Date.now() : -1
      if (wait >= 0) retryTimer = setTimeout(() => void ask(params, cursor), wait)
    }
    finally {
      if (controller === mine) {
        controller = null
        loadingMore.value = false
      }
    }
  }

  // The names of people in rooms whose members this page has not loaded: the senders of the
  // results there would otherwise be "Someone". One request per room, the first time only.
  function learnRooms(found: SearchResult[]) {
    for (const id of new Set(found.filter(result => result.conversation.kind === 'room').map(result => result.conversation.id))) {
      if (!rooms.detail(id) && found.some(result => result.conversation.id === id && !nameOf(result.message.from))) void rooms.loadMembers(id)
    }
  }

  // As the person types: a pause of DEBOUNCE_MS, then one request.
  watch(question, () => {
    cancel()
    const params = resolved.value.params
    if (!params) {
      status.value = 'idle'
      results.value = []
      next.value = null
      failure.value = null
      answered.value = null
      loadingMore.value = false
      return
    }
    status.value = 'searching'
    timer = setTimeout(() => void ask(params), DEBOUNCE_MS)
  })

  /** The next page of results, after the ones shown. */
  function more() {
    if (!next.value || !answered.value || loadingMore.value) return
    void ask(answered.value, next.value)
  }

  /** The same question again (after a network failure). */
  function retry() {
    const params = resolved.value.params
    if (!params) return
    cancel()
    if (status.value === 'done' && next.value && answered.value) void ask(answered.value, next.value)
    else void ask(params)
  }

  function setFilter(key: SearchFilterKey, value: string) {
    text.value = withSearchFilter(text.value, key, value)
  }

  function removeFilter(start: number, end: number) {
    text.value = withoutSearchFilter(text.value, start, end)
  }

  /** Empties the box; nothing is asked until it is written in again. */
  function clear() {
    text.value = ''
  }

  return { text, results, next, status, loadingMore, failure, directory, resolved, groups, ordered, senderOf, more, retry, setFilter, removeFilter, clear }
})
