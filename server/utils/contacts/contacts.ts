import type { H3Event } from 'h3'
import { sql } from 'kysely'
import type { Contact } from '#shared/types/contacts'
import type { PublicUser, User } from '#shared/types/user'
import type { Backends } from '../backends'
import { useConfig } from '../config'
import { directMembershipChanges, findDirectConversation, openDirectConversation, setDirectState } from '../conversations/direct'
import { fail } from '../http'
import { log } from '../log'
import { sendAfterResponse } from '../outgoing-mail'
import { presenceOf, sharePresence } from '../presence/presence'
import { broadcast } from '../realtime/broadcast'
import { retentionCutoff } from '../retention/cutoff'
import { throttled } from '../throttle'
import { findOrInviteUser } from '../users'

/** Adding contacts: 30 an hour, bursts of 10, per person and across instances. */
const ADD_LIMIT = { perSecond: 30 / 3600, burst: 10 }
/** Invitation mails to addresses without an account: 20 a day per person, all at once if need be; past it the adds go through without a mail. */
const INVITE_LIMIT = { perSecond: 20 / 86_400, burst: 20 }
// An address that never signed in gets one invitation a day, however many people add it.
const INVITATION_EVERY_MS = 24 * 3600_000

/**
 * Opens (or returns) the direct conversation with the person behind an address. The answer is
 * the same whether or not the address has an account (one is made that waits for its first
 * sign-in, and an invitation mail goes out); the other person sees a request they accept or
 * block, and neither sees the other's presence until both have accepted.
 */
export async function addContact(event: H3Event, backends: Backends, me: User, email: string): Promise<{ user: PublicUser, conversationId: string }> {
  const { store, database } = backends
  const taken = await store.takeTokens(`limit:contacts:${me.id}`, ADD_LIMIT.perSecond, ADD_LIMIT.burst)
  if (!taken.allowed) throw throttled(event, taken.retryAfterMs, 'You have added many people in a short time. Try again later.', 'contacts')
  if (email === me.email) throw fail(400, 'invalid_body', 'That is your own address.')
  await allowInvitations(event, backends, me, [email])
  const { user: other, invited } = await findOrInviteUser(database.db, email)
  const conversationId = await openDirectConversation(database.db, me.id, other.id)
  const membership = await directMembershipChanges(database.db, conversationId)
  // The added person hears of the request at once, on every device; the adder's own row is the answer.
  const waiting = membership.membership?.some(change => change.userId === other.id && change.membership?.incoming)
  await broadcast(waiting
    ? { ...membership, to: { users: [other.id] }, frame: { type: 'contact.request', conversationId, from: { id: me.id, email: me.email, displayName: me.displayName } } }
    : membership)
  if (invited) await sendInvitation(event, backends, me, email)
  return { user: { id: other.id, email: other.email, displayName: other.display_name }, conversationId }
}

/**
 * Spends my invitation allowance on the addresses among these that have no account yet, before
 * anything is made for them. Past the allowance the add still goes through and answers as any
 * other; only the mail is not sent. (A 429 here told the adder which addresses have no account.)
 */
export async function allowInvitations(event: H3Event, { store, database }: Backends, me: User, emails: string[]): Promise<void> {
  if (!emails.length) return
  const known = new Set((await database.db.selectFrom('users').select('email').where('email', 'in', emails).where('verified_at', 'is not', null).execute()).map(row => row.email))
  const unknown = emails.filter(email => !known.has(email))
  if (!unknown.length) return
  const key = `limit:invitations:${me.id}`
  const mailable = invitable(event)
  if ((await store.takeTokens(key, INVITE_LIMIT.perSecond, INVITE_LIMIT.burst, unknown.length)).allowed) {
    for (const email of unknown) mailable.add(email)
    return
  }
  // Not enough for all of them: as many as there are, in the order given.
  if (unknown.length > 1) {
    for (const email of unknown) {
      if (!(await store.takeTokens(key, INVITE_LIMIT.perSecond, INVITE_LIMIT.burst)).allowed) break
      mailable.add(email)
    }
  }
  log.info('contacts: invitation allowance spent, mails withheld', { userId: me.id, withheld: unknown.filter(email => !mailable.has(email)).length })
}

/** The invitation mail, if this request's allowance covers it, at most once a day per address however many people add it. */
export async function sendInvitation(event: H3Event, { store }: Backends, me: User, email: string): Promise<void> {
  if (!invitable(event).has(email)) return
  if (await store.setIfAbsent(`invitation:${email}`, '1', INVITATION_EVERY_MS)) sendAfterResponse(event, invitationMail(me, email), 'invitation')
}

/** The addresses this request may mail an invitation to (allowInvitations fills it). */
function invitable(event: H3Event): Set<string> {
  event.context.invitable ??= new Set<string>()
  return event.context.invitable as Set<string>
}

/** Accepting a request: presence, typing and receipts start flowing both ways. */
export async function acceptContact(backends: Backends, userId: string, peerId: string): Promise<void> {
  await setContactState(backends, userId, peerId, 'active')
}

/** Blocking: their messages are refused, and nothing of mine reaches them. */
export async function blockContact(backends: Backends, userId: string, peerId: string): Promise<void> {
  await setContactState(backends, userId, peerId, 'blocked')
}

async function setContactState(backends: Backends, userId: string, peerId: string, state: 'active' | 'blocked') {
  const { database } = backends
  const conversationId = await findDirectConversation(database.db, userId, peerId)
  if (!conversationId) throw fail(404, 'not_found', 'You have no conversation with this person.')
  if (!(await setDirectState(database.db, conversationId, userId, state))) return
  const changes = await directMembershipChanges(database.db, conversationId)
  await broadcast(changes)
  // Both accepted now: each hears the other's presence at once, which is also how the one who
  // asked learns that the request was accepted.
  if (changes.membership?.every(change => change.membership?.open)) await sharePresence(backends, userId, peerId)
}

interface ContactRow {
  conversation_id: string
  user_id: string
  email: string
  display_name: string
  last_seen_at: Date | null
  message_id: string | null
  seq: number | null
  sender_id: string | null
  body: string | null
  created_at: Date | null
  unread: number
  activity: Date
  their_read_seq: number
  their_read_at: Date | null
  shared: boolean
  mine: string
  theirs: string
}

/** Version 1's list: my direct conversations, the other person first, newest activity first. */
export async function listContacts(backends: Backends, userId: string): Promise<Contact[]> {
  const cutoff = retentionCutoff(useConfig().retentionDays)
  const { rows } = await sql<ContactRow>`
    select c.id as conversation_id, u.id as user_id, u.email, u.display_name, u.last_seen_at,
      last.id as message_id, last.seq, last.sender_id, last.body, last.created_at,
      (select count(*) from messages m
        where m.conversation_id = c.id and m.seq > me.read_seq and m.sender_id <> ${userId}
          and m.created_at > ${cutoff})::int8 as unread,
      coalesce(last.created_at, c.created_at) as activity,
      other.read_seq as their_read_seq, other.read_at as their_read_at,
      (u.read_receipts and mine.read_receipts) as shared,
      me.state as mine, other.state as theirs
    from conversation_members me
    join users mine on mine.id = me.user_id
    join conversations c on c.id = me.conversation_id and c.kind = 'direct'
    join conversation_members other on other.conversation_id = c.id and other.user_id <> me.user_id
    join users u on u.id = other.user_id
    left join lateral (
      select m.id, m.seq, m.sender_id, m.body, m.created_at from messages m
      where m.conversation_id = c.id and m.created_at > ${cutoff}
      order by m.seq desc limit 1
    ) last on true
    where me.user_id = ${userId}
    order by activity desc`.execute(backends.database.db)
  const presence = await Promise.all(rows.map(row => row.mine === 'active' && row.theirs === 'active'
    ? presenceOf(backends, row.user_id, row.last_seen_at)
    : { status: 'offline' as const, lastSeen: null }))
  return rows.map((row, index) => ({
    user: { id: row.user_id, email: row.email, displayName: row.display_name },
    conversationId: row.conversation_id,
    presence: presence[index]!,
    lastMessage: row.message_id
      ? {
          id: row.message_id,
          conversationId: row.conversation_id,
          seq: row.seq!,
          from: row.sender_id!,
          to: row.sender_id === userId ? row.user_id : userId,
          body: row.body!,
          timestamp: row.created_at!.toISOString(),
          replyTo: null,
          attachments: [],
          mentions: []
        }
      : null,
    unread: row.unread,
    // Receipts are mutual: with either side's switched off, none are shown.
    theirRead: row.shared && row.theirs === 'active' ? { seq: row.their_read_seq, at: row.their_read_at?.toISOString() ?? null } : { seq: 0, at: null },
    request: requestState(row.mine, row.theirs)
  }))
}

export function requestState(mine: string, theirs: string): Contact['request'] {
  if (mine === 'blocked') return 'blocked'
  if (mine === 'invited') return 'incoming'
  if (theirs !== 'active') return 'outgoing'
  return null
}

function invitationMail(from: User, email: string) {
  const url = useConfig().publicUrl
  const name = from.displayName
  return {
    to: email,
    subject: `${name} wants to chat with you on Natter`,
    text: `${name} (${from.email}) added you on Natter and wants to chat with you.\n\nSign in with this address at ${url}/login to read and answer. If you do not know them, you can ignore this mail.\n`,
    html: `<p>${escapeHtml(name)} (${escapeHtml(from.email)}) added you on Natter and wants to chat with you.</p>`
      + `<p><a href="${url}/login">Sign in with this address</a> to read and answer. If you do not know them, you can ignore this mail.</p>`
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, char => `&#${char.charCodeAt(0)};`)
}
