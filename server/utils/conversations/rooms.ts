import type { H3Event } from 'h3'
import { sql } from 'kysely'
import { MAX_ROOM_MEMBERS, type Conversation, type CreateRoom, type Member, type UpdateConversation } from '#shared/types/conversations'
import type { User } from '#shared/types/user'
import type { Backends } from '../backends'
import { allowInvitations, sendInvitation } from '../contacts/contacts'
import { fail } from '../http'
import { throttled } from '../throttle'
import { broadcast } from '../realtime/broadcast'
import { findOrInviteUser } from '../users'
import { recordChanges, runCommand } from './commands'
import { conversationDetail, listConversations, listMembers, requireMember } from './conversations'

/**
 * Creates a room with me as its owner and the people named as members (addresses without an
 * account are invited, as when adding a contact). Its first events say so: "created", then one
 * "added" per member, so the timeline and every client's replay agree from seq 1.
 */
/** New rooms per person: 20 an hour, bursts of 5. */
const CREATE_LIMIT = { perSecond: 20 / 3600, burst: 5 }

export async function createRoom(event: H3Event, backends: Backends, me: User, body: CreateRoom): Promise<Conversation> {
  const db = backends.database.db
  const taken = await backends.store.takeTokens(`limit:rooms:${me.id}`, CREATE_LIMIT.perSecond, CREATE_LIMIT.burst)
  if (!taken.allowed) throw throttled(event, taken.retryAfterMs, 'You have made many rooms in a short time. Try again later.', 'rooms')
  const emails = [...new Set(body.members ?? [])].filter(email => email !== me.email)
  await allowInvitations(event, backends, me, emails)
  const people: Array<Awaited<ReturnType<typeof findOrInviteUser>>> = []
  for (const email of emails) people.push(await findOrInviteUser(db, email))
  const { id, envelopes } = await db.transaction().execute(async (trx) => {
    const room = await trx.insertInto('conversations')
      .values({ kind: 'room', name: body.name, topic: body.topic ?? '', visibility: body.visibility, created_by: me.id, member_count: 1 + people.length, members_can_invite: body.membersCanInvite ?? true })
      .returning(['id', 'last_seq'])
      .executeTakeFirstOrThrow()
    await trx.insertInto('conversation_members')
      .values([{ conversation_id: room.id, user_id: me.id, role: 'owner' }, ...people.map(({ user }) => ({ conversation_id: room.id, user_id: user.id }))])
      .execute()
    const envelopes = await recordChanges(trx, room, me.id, null, [
      { change: 'created', by: me.id, name: body.name, topic: body.topic ?? '', membership: 'add', userId: me.id },
      ...people.map(({ user }) => ({ change: 'added' as const, userId: user.id, by: me.id, membership: 'add' as const }))
    ])
    return { id: room.id, envelopes }
  })
  await broadcast(envelopes)
  for (const { user, invited } of people) if (invited) await sendInvitation(event, backends, me, user.email)
  const [conversation] = await listConversations(backends, me.id, id)
  return conversation!
}

/** Public rooms (matching `q`) and the rooms I am in. */
export async function browseRooms(backends: Backends, me: User, q?: string): Promise<Array<{ conversation: Conversation, joined: boolean }>> {
  const db = backends.database.db
  const mine = (await listConversations(backends, me.id)).filter(conversation => conversation.kind === 'room')
  const pattern = q ? `%${q.toLowerCase().replace(/[\\%_]/g, char => `\\${char}`)}%` : undefined
  const open = await db.selectFrom('conversations as c')
    .select(['c.id', 'c.name', 'c.topic', 'c.member_count', 'c.last_seq', 'c.members_can_invite'])
    .where('c.visibility', '=', 'public')
    .where(eb => eb.not(eb.exists(eb.selectFrom('conversation_members as m').select('m.user_id').whereRef('m.conversation_id', '=', 'c.id').where('m.user_id', '=', me.id))))
    .$if(!!pattern, query => query.where(sql<boolean>`lower(c.name) like ${pattern}`))
    .orderBy('c.member_count', 'desc')
    .limit(50)
    .execute()
  const joined = mine.filter(conversation => !pattern || (conversation.name ?? '').toLowerCase().includes(q!.toLowerCase()))
  return [
    ...joined.map(conversation => ({ conversation, joined: true })),
    ...open.map(row => ({
      joined: false,
      conversation: {
        id: row.id,
        kind: 'room' as const,
        name: row.name,
        topic: row.topic,
        visibility: 'public' as const,
        memberCount: row.member_count,
        role: 'member' as const,
        muted: false,
        peer: null,
        lastMessage: null,
        lastSeq: row.last_seq,
        readSeq: 0,
        unread: 0,
        mentions: 0,
        request: null,
        membersCanInvite: row.members_can_invite
      }
    }))
  ]
}

export async function joinRoom(backends: Backends, me: User, roomId: string): Promise<Conversation> {
  await runCommand(backends, roomId, me.id, { action: 'join' })
  const [conversation] = await listConversations(backends, me.id, roomId)
  if (!conversation) throw fail(404, 'not_found', 'There is no such room.')
  return conversation
}

export async function leaveRoom(backends: Backends, me: User, roomId: string): Promise<void> {
  await runCommand(backends, roomId, me.id, { action: 'leave' })
}

/**
 * Adds the person behind an address (inviting it to Natter if it has no account). Checked before
 * anything is made for the address: a room I am not in is a 404, one that lets only its managers
 * add people a 403; the bus command checks again in the room's order.
 */
export async function addMember(event: H3Event, backends: Backends, me: User, roomId: string, email: string): Promise<Member> {
  const db = backends.database.db
  const mine = await requireMember(db, me.id, roomId)
  if (mine.kind !== 'room') throw fail(404, 'not_found', 'There is no such room.')
  const room = await db.selectFrom('conversations').select(['members_can_invite', 'member_count']).where('id', '=', roomId).executeTakeFirstOrThrow()
  if (mine.role === 'member' && !room.members_can_invite) throw fail(403, 'forbidden', 'Only the owner and admins can add people to this room.')
  if (room.member_count >= MAX_ROOM_MEMBERS) throw fail(409, 'room_full', `A room has at most ${MAX_ROOM_MEMBERS} members.`)
  await allowInvitations(event, backends, me, [email])
  const { user, invited } = await findOrInviteUser(db, email)
  await runCommand(backends, roomId, me.id, { action: 'add', userId: user.id })
  if (invited) await sendInvitation(event, backends, me, email)
  const [member] = (await listMembers(backends, me.id, roomId, { limit: 1, only: user.id })).members
  return member ?? { user: { id: user.id, displayName: user.display_name }, role: 'member', presence: { status: 'offline', lastSeen: null }, readSeq: null }
}

export async function removeMember(backends: Backends, me: User, roomId: string, userId: string): Promise<void> {
  await runCommand(backends, roomId, me.id, { action: 'remove', userId })
}

export async function setMemberRole(backends: Backends, me: User, roomId: string, userId: string, role: 'admin' | 'member'): Promise<Member> {
  await runCommand(backends, roomId, me.id, { action: 'role', userId, role })
  const [member] = (await listMembers(backends, me.id, roomId, { limit: 1, only: userId })).members
  if (!member) throw fail(404, 'not_found', 'That person is not in this room.')
  return member
}

/** Muting is mine alone; a room's name, topic and settings are its managers', in the room's stream. */
export async function updateConversation(backends: Backends, me: User, conversationId: string, change: UpdateConversation): Promise<Conversation> {
  const db = backends.database.db
  const mine = await requireMember(db, me.id, conversationId)
  const { muted, ...settings } = change
  const changesRoom = Object.values(settings).some(value => value !== undefined)
  if (changesRoom && (mine.kind !== 'room' || mine.role === 'member')) throw fail(403, 'forbidden', 'Only a room\'s owner and admins can change it.')
  if (muted !== undefined) {
    await db.updateTable('conversation_members').set({ muted }).where('conversation_id', '=', conversationId).where('user_id', '=', me.id).execute()
  }
  if (changesRoom) await runCommand(backends, conversationId, me.id, { action: 'update', ...settings })
  return (await conversationDetail(backends, me.id, conversationId, 0)).conversation
}
