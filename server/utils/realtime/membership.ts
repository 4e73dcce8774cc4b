import { sql, type Kysely } from 'kysely'
import type { Database } from '../../database/schema'

/**
 * Which conversations the people with a socket on this instance are in, kept in memory so that
 * a frame for a conversation finds its recipients here without asking the database, and a frame
 * from a socket is checked against membership at once. Loaded with a person's first socket,
 * dropped with their last, and kept current by the membership changes every instance hears
 * through the broadcast (in the conversation's order, before the frames that follow them).
 */
export interface Membership {
  kind: 'direct' | 'room'
  /** The other person of a direct conversation. */
  peer: string | null
  /** Both people of a direct conversation accepted each other; rooms are always open. */
  open: boolean
  /** Someone wrote to me first and I have not accepted yet. */
  incoming: boolean
}

/** What one change does to one person's entry; `membership: null` removes it. */
export interface MembershipChange {
  conversationId: string
  userId: string
  membership: Membership | null
}

interface Person {
  conversations: Map<string, Membership>
  /** peer id -> direct conversation id */
  direct: Map<string, string>
}

const people = new Map<string, Person>()
const membersHere = new Map<string, Set<string>>()
// Changes heard while a person's memberships are being read: applied on top of what was read.
// `forgotten`: their last socket closed meanwhile, so what was read is not kept.
const loading = new Map<string, { journal: MembershipChange[], done: Promise<void>, forgotten: boolean }>()
// One membership being read again (refreshMembership): a change heard meanwhile is newer than the read.
const rereading = new Map<string, Set<{ heard?: Membership | null }>>()

export function membershipOf(userId: string, conversationId: string): Membership | undefined {
  return people.get(userId)?.conversations.get(conversationId)
}

export function directConversationOf(userId: string, peerId: string): string | undefined {
  return people.get(userId)?.direct.get(peerId)
}

/** The people with a socket here who are in the conversation. */
export function localMembers(conversationId: string): Iterable<string> {
  return membersHere.get(conversationId) ?? []
}

/** The conversations of a person with a socket here. */
export function conversationsOf(userId: string): Iterable<[string, Membership]> {
  return people.get(userId)?.conversations ?? []
}

/** Reads a person's memberships, once for all their sockets here. */
export async function loadMemberships(db: Kysely<Database>, userId: string): Promise<void> {
  if (people.has(userId)) return
  const pending = loading.get(userId)
  if (pending) {
    // A socket opened again while the read was on its way: it needs what is read.
    pending.forgotten = false
    return pending.done
  }
  const state = { journal: [] as MembershipChange[], forgotten: false, done: Promise.resolve() }
  loading.set(userId, state)
  state.done = (async () => {
    try {
      const { rows } = await sql<{ conversation_id: string, kind: 'direct' | 'room', mine: string, peer: string | null, theirs: string | null }>`
        select m.conversation_id, c.kind, m.state as mine, o.user_id as peer, o.state as theirs
        from conversation_members m
        join conversations c on c.id = m.conversation_id
        left join conversation_members o on c.kind = 'direct' and o.conversation_id = m.conversation_id and o.user_id <> m.user_id
        where m.user_id = ${userId}`.execute(db)
      const person: Person = { conversations: new Map(), direct: new Map() }
      people.set(userId, person)
      for (const row of rows) {
        place(userId, person, row.conversation_id, {
          kind: row.kind,
          peer: row.peer,
          open: row.kind === 'room' || (row.mine === 'active' && row.theirs === 'active'),
          incoming: row.mine === 'invited'
        })
      }
      for (const change of state.journal) apply(change)
      if (state.forgotten) forgetMemberships(userId)
    }
    finally {
      loading.delete(userId)
    }
  })()
  return state.done
}

/** The person's last socket here closed. */
export function forgetMemberships(userId: string) {
  const pending = loading.get(userId)
  if (pending) pending.forgotten = true
  const person = people.get(userId)
  if (!person) return
  people.delete(userId)
  for (const conversationId of person.conversations.keys()) unplace(userId, conversationId)
}

/** A membership change heard from the broadcast: only people with a socket here are kept. */
export function applyMembership(change: MembershipChange) {
  loading.get(change.userId)?.journal.push(change)
  for (const read of rereading.get(`${change.userId}:${change.conversationId}`) ?? []) read.heard = change.membership
  if (people.has(change.userId)) apply(change)
}

function apply({ conversationId, userId, membership }: MembershipChange) {
  const person = people.get(userId)
  if (!person) return
  if (membership) place(userId, person, conversationId, membership)
  else {
    const gone = person.conversations.get(conversationId)
    person.conversations.delete(conversationId)
    if (gone?.peer) person.direct.delete(gone.peer)
    unplace(userId, conversationId)
  }
}

function place(userId: string, person: Person, conversationId: string, membership: Membership) {
  person.conversations.set(conversationId, membership)
  if (membership.peer) person.direct.set(membership.peer, conversationId)
  let set = membersHere.get(conversationId)
  if (!set) membersHere.set(conversationId, set = new Set())
  set.add(userId)
}

function unplace(userId: string, conversationId: string) {
  const set = membersHere.get(conversationId)
  set?.delete(userId)
  if (set?.size === 0) membersHere.delete(conversationId)
}

/**
 * Reads one membership from the database and keeps it: for a conversation this instance has not
 * heard of yet (its creation is still on its way through the broadcast). Undefined: not a member.
 * A change heard while the read is on its way is newer than what was read: it stands, so a removal
 * arriving meanwhile is not undone by a read made before it.
 */
export async function refreshMembership(db: Kysely<Database>, userId: string, conversationId: string): Promise<Membership | undefined> {
  const key = `${userId}:${conversationId}`
  const read: { heard?: Membership | null } = {}
  let reads = rereading.get(key)
  if (!reads) rereading.set(key, reads = new Set())
  reads.add(read)
  let row
  try {
    row = await db.selectFrom('conversation_members as m')
      .innerJoin('conversations as c', 'c.id', 'm.conversation_id')
      .leftJoin('conversation_members as o', join => join.onRef('o.conversation_id', '=', 'm.conversation_id').onRef('o.user_id', '<>', 'm.user_id').on('c.kind', '=', 'direct'))
      .select(['c.kind', 'm.state as mine', 'o.user_id as peer', 'o.state as theirs'])
      .where('m.conversation_id', '=', conversationId)
      .where('m.user_id', '=', userId)
      .executeTakeFirst()
  }
  finally {
    reads.delete(read)
    if (!reads.size) rereading.delete(key)
  }
  if (read.heard !== undefined) return read.heard ?? undefined
  if (!row) return undefined
  const membership: Membership = {
    kind: row.kind,
    peer: row.peer,
    open: row.kind === 'room' || (row.mine === 'active' && row.theirs === 'active'),
    incoming: row.mine === 'invited'
  }
  applyMembership({ conversationId, userId, membership })
  return membership
}
