import { sql, type Kysely } from 'kysely'
import type { Database, MemberRole, MemberState } from '../../database/schema'
import type { Conversation, Member } from '#shared/types/conversations'
import type { ChatMessage } from '#shared/types/messages'
import type { Backends } from '../backends'
import { useConfig } from '../config'
import { requestState } from '../contacts/contacts'
import { fail } from '../http'
import type { Recipients } from '../messages/history'
import { presenceOf } from '../presence/presence'
import { retentionCutoff } from '../retention/cutoff'

/** My place in a conversation: a conversation I am not in is a 404, never a 403. */
export interface MyMembership {
  kind: 'direct' | 'room'
  role: MemberRole
  state: MemberState
  recipients: Recipients
}

export async function requireMember(db: Kysely<Database>, userId: string, conversationId: string): Promise<MyMembership> {
  const rows = await db.selectFrom('conversation_members as m')
    .innerJoin('conversations as c', 'c.id', 'm.conversation_id')
    .select(['c.kind', 'm.user_id', 'm.role', 'm.state'])
    .where('m.conversation_id', '=', conversationId)
    // A room's other members are not needed here; a direct conversation's one is (`to`).
    .where(eb => eb.or([eb('m.user_id', '=', userId), eb('c.kind', '=', 'direct')]))
    .execute()
  const mine = rows.find(row => row.user_id === userId)
  if (!mine) throw fail(404, 'not_found', 'There is no such conversation.')
  return {
    kind: mine.kind,
    role: mine.role,
    state: mine.state,
    recipients: mine.kind === 'room' ? { kind: 'room' } : { kind: 'direct', members: rows.map(row => row.user_id) }
  }
}

interface ConversationRow {
  id: string
  kind: 'direct' | 'room'
  name: string | null
  topic: string | null
  visibility: 'public' | 'private' | null
  member_count: number
  last_seq: number
  members_can_invite: boolean
  room_mentions: boolean
  role: MemberRole
  muted: boolean
  read_seq: number
  mine: MemberState
  unread: number
  mentions: number
  message_id: string | null
  message_seq: number | null
  sender_id: string | null
  body: string | null
  deleted_at: Date | null
  sent_at: Date | null
  peer_id: string | null
  peer_name: string | null
  peer_email: string | null
  peer_last_seen: Date | null
  theirs: MemberState | null
  their_read_seq: number | null
  their_read_at: Date | null
  shared: boolean | null
}

/** My conversations (or the one asked for), newest activity first, each as the contract's `conversation`. */
export async function listConversations(backends: Backends, userId: string, only?: string): Promise<Conversation[]> {
  const cutoff = retentionCutoff(useConfig().retentionDays)
  const { rows } = await sql<ConversationRow>`
    select c.id, c.kind, c.name, c.topic, c.visibility, c.member_count, c.last_seq, c.members_can_invite, c.room_mentions,
      me.role, me.muted, me.read_seq, me.state as mine,
      (select count(*) from messages m
        where m.conversation_id = c.id and m.seq > me.read_seq and m.sender_id <> ${userId}
          and m.created_at > ${cutoff})::int8 as unread,
      (select count(*) from messages m
        where m.conversation_id = c.id and m.seq > me.read_seq and m.sender_id <> ${userId}
          and m.created_at > ${cutoff} and m.deleted_at is null
          and (m.mentions_room or ${userId}::uuid = any(m.mentions)))::int8 as mentions,
      last.id as message_id, last.seq as message_seq, last.sender_id, last.body, last.deleted_at, last.created_at as sent_at,
      o.user_id as peer_id, u.display_name as peer_name, u.email as peer_email, u.last_seen_at as peer_last_seen,
      o.state as theirs, o.read_seq as their_read_seq, o.read_at as their_read_at,
      (u.read_receipts and mine.read_receipts) as shared
    from conversation_members me
    join users mine on mine.id = me.user_id
    join conversations c on c.id = me.conversation_id
    left join conversation_members o on c.kind = 'direct' and o.conversation_id = c.id and o.user_id <> me.user_id
    left join users u on u.id = o.user_id
    left join lateral (
      select m.id, m.seq, m.sender_id, m.body, m.deleted_at, m.created_at from messages m
      where m.conversation_id = c.id and m.created_at > ${cutoff}
      order by m.seq desc limit 1
    ) last on true
    where me.user_id = ${userId} ${only ? sql`and c.id = ${only}` : sql``}
    order by coalesce(last.created_at, c.created_at) desc`.execute(backends.database.db)
  return Promise.all(rows.map(row => toConversation(backends, userId, row)))
}

async function toConversation(backends: Backends, userId: string, row: ConversationRow): Promise<Conversation> {
  const direct = row.kind === 'direct'
  const open = direct && row.mine === 'active' && row.theirs === 'active'
  const lastMessage: ChatMessage | null = row.message_id
    ? {
        id: row.message_id,
        conversationId: row.id,
        seq: row.message_seq!,
        from: row.sender_id!,
        to: direct ? (row.sender_id === userId ? row.peer_id : userId) : null,
        body: row.deleted_at ? '' : row.body!,
        timestamp: row.sent_at!.toISOString(),
        replyTo: null,
        attachments: [],
        mentions: [],
        ...(row.deleted_at && { deleted: true })
      }
    : null
  return {
    id: row.id,
    kind: row.kind,
    name: direct ? row.peer_name : row.name,
    topic: row.topic,
    visibility: row.visibility,
    memberCount: row.member_count,
    role: row.role,
    muted: row.muted,
    peer: direct && row.peer_id
      ? {
          user: { id: row.peer_id, displayName: row.peer_name!, email: row.peer_email! },
          presence: open ? await presenceOf(backends, row.peer_id, row.peer_last_seen) : { status: 'offline', lastSeen: null },
          theirRead: open && row.shared ? { seq: row.their_read_seq ?? 0, at: row.their_read_at?.toISOString() ?? null } : { seq: 0, at: null }
        }
      : null,
    lastMessage,
    lastSeq: row.last_seq,
    readSeq: row.read_seq,
    unread: row.unread,
    // Unread messages naming me, or the whole room while the room allows it.
    mentions: Number(row.mentions),
    request: direct ? requestState(row.mine, row.theirs ?? 'active') : null,
    membersCanInvite: direct ? null : row.members_can_invite,
    roomMentions: direct ? null : row.room_mentions
  }
}

/** One conversation of mine with its first members; 404 when I am not in it. */
export async function conversationDetail(backends: Backends, userId: string, conversationId: string, memberLimit = 200): Promise<{ conversation: Conversation, members: Member[] }> {
  const [conversation] = await listConversations(backends, userId, conversationId)
  if (!conversation) throw fail(404, 'not_found', 'There is no such conversation.')
  const { members } = await listMembers(backends, userId, conversationId, { limit: memberLimit })
  return { conversation, members }
}

/**
 * A page of a conversation's members, by user id (or the one member `only` names); their read
 * watermark where both share receipts.
 */
export async function listMembers(backends: Backends, userId: string, conversationId: string, { after, limit, only }: { after?: string, limit: number, only?: string }): Promise<{ members: Member[] }> {
  const db = backends.database.db
  const me = await db.selectFrom('conversation_members as m').innerJoin('users as u', 'u.id', 'm.user_id')
    .select(['u.read_receipts', 'm.state']).where('m.conversation_id', '=', conversationId).where('m.user_id', '=', userId).executeTakeFirst()
  if (!me) throw fail(404, 'not_found', 'There is no such conversation.')
  let query = db.selectFrom('conversation_members as m').innerJoin('users as u', 'u.id', 'm.user_id')
    .select(['u.id', 'u.display_name', 'u.last_seen_at', 'u.read_receipts', 'm.role', 'm.read_seq', 'm.state'])
    .where('m.conversation_id', '=', conversationId)
  if (after) query = query.where('u.id', '>', after)
  if (only) query = query.where('u.id', '=', only)
  const rows = await query.orderBy('u.id').limit(limit).execute()
  // A direct conversation someone has not accepted shows nothing of the other's presence or reading.
  const restricted = me.state !== 'active' || rows.some(row => row.state !== 'active')
  const hidden = (row: { id: string }) => restricted && row.id !== userId
  const presence = await Promise.all(rows.map(row => hidden(row) ? { status: 'offline' as const, lastSeen: null } : presenceOf(backends, row.id, row.last_seen_at)))
  return {
    members: rows.map((row, index) => ({
      user: { id: row.id, displayName: row.display_name },
      role: row.role,
      presence: presence[index]!,
      readSeq: me.read_receipts && row.read_receipts && !hidden(row) ? row.read_seq : null
    }))
  }
}
