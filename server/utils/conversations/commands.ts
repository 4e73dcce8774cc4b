import { randomUUID } from 'node:crypto'
import type { Kysely, Selectable, Transaction } from 'kysely'
import type { ConversationsTable, Database, MemberRole } from '../../database/schema'
import type { ServerFrame, SocketErrorCode } from '#shared/types/frames'
import { MAX_ROOM_MEMBERS, type RoomUpdate } from '#shared/types/conversations'
import type { ErrorCode } from '#shared/types/user'
import type { Backends } from '../backends'
import { fail } from '../http'
import { FRAME_LIMITS, takeFrom } from '../gateway/limits'
import { applyMessageCommand, type MessageCommand } from '../messages/changes'
import { CONVERSATIONS_TOPIC } from '../messages/persister'
import { onEnvelope, type Envelope } from '../realtime/broadcast'
import type { Membership } from '../realtime/membership'
import { instanceId } from '../realtime/sockets'

/** A change to a room's membership or settings, as the persister applies it in the room's order. */
export type RoomCommand
  = | { action: 'join' }
    | { action: 'leave' }
    | { action: 'add', userId: string }
    | { action: 'remove', userId: string }
    | { action: 'role', userId: string, role: Exclude<MemberRole, 'owner'> }
    | { action: 'update', name?: string, topic?: string, membersCanInvite?: boolean, roomMentions?: boolean }

/** Any change applied in a conversation's order: to the room, or to one of its messages. */
export type Command = RoomCommand | MessageCommand

export interface CommandEvent {
  kind: 'command'
  /** Also the key its REST caller waits on, and what makes a redelivery find its event again. */
  id: string
  conversationId: string
  actorId: string
  command: Command
  sentAt: number
  /** The instance whose REST call waits for the outcome. */
  origin: string
  /** A frame's command: the socket that hears the outcome (change.ack or error with `ref`). */
  socket?: string
  ref?: string
}

const isMessageCommand = (command: Command): command is MessageCommand => command.action === 'edit' || command.action === 'delete' || command.action === 'react'

/** Why a command was not applied, as the REST answer says it. */
export class Refusal extends Error {
  constructor(readonly status: number, readonly code: ErrorCode, message: string) {
    super(message)
  }
}

export const ROOM_MEMBER: Membership = { kind: 'room', peer: null, open: true, incoming: false }
const COMMAND_TIMEOUT_MS = 10_000
/** Room changes per person (each one reaches every member): 30 a minute, bursts of 10. */
export const ROOM_CHANGE_LIMIT = { perSecond: 0.5, burst: 10 }

const waiting = new Map<string, (envelope: Envelope) => void>()
onEnvelope((envelope) => {
  if (envelope.settles?.kind === 'outcome') waiting.get(envelope.settles.id)?.(envelope)
})

/**
 * Runs a command through the bus, so it takes its place in the conversation's stream after every
 * message before it, and resolves once the persister has applied it; throws the REST error when
 * it was refused (404 not a member, 403 not allowed, 409 full) or did not come back in time.
 * Room changes and message changes have their own per-person limits (429 past them).
 */
export async function runCommand(backends: Backends, conversationId: string, actorId: string, command: Command, { throttled = true } = {}): Promise<void> {
  // Unthrottled only for the server's own acts on a person's behalf (leaving every room of an erased account).
  const taken = !throttled
    ? { allowed: true, retryAfterMs: 0 }
    : await takeCommandLimit(backends, actorId, command)
  if (!taken.allowed) throw fail(429, 'throttled', 'You are making changes very fast. Wait a moment.', { retryAfter: Math.max(1, Math.ceil(taken.retryAfterMs / 1000)) })
  const event: CommandEvent = { kind: 'command', id: randomUUID(), conversationId, actorId, command, sentAt: Date.now(), origin: instanceId }
  let timer: NodeJS.Timeout | undefined
  const outcome = new Promise<Envelope>((resolve, reject) => {
    waiting.set(event.id, resolve)
    timer = setTimeout(() => reject(fail(503, 'unavailable', 'Natter could not do that in time. Try again in a moment.')), COMMAND_TIMEOUT_MS)
  })
  try {
    await backends.bus.publish(CONVERSATIONS_TOPIC, [{ key: conversationId, value: JSON.stringify(event) }])
    const { settles } = await outcome
    if (settles?.kind === 'outcome' && !settles.ok) throw fail(settles.status ?? 400, (settles.code ?? 'forbidden') as ErrorCode, settles.message ?? 'Not allowed.')
  }
  finally {
    clearTimeout(timer)
    waiting.delete(event.id)
  }
}

function takeCommandLimit(backends: Backends, actorId: string, command: Command) {
  return isMessageCommand(command)
    ? takeFrom(backends.store, FRAME_LIMITS.change, actorId)
    : backends.store.takeTokens(`limit:room-changes:${actorId}`, ROOM_CHANGE_LIMIT.perSecond, ROOM_CHANGE_LIMIT.burst)
}

/**
 * Applies one command in its own transaction; returns what every instance must hear. A frame's
 * command also answers its socket: change.ack with the seq of its chat.update (null when nothing
 * changed), or an error frame whose ref is the frame's changeId (or messageId).
 */
export async function applyCommand(db: Kysely<Database>, event: CommandEvent): Promise<Envelope[]> {
  const settles = (ok: boolean, refusal?: Refusal) => ({ kind: 'outcome' as const, id: event.id, ok, ...(refusal && { status: refusal.status, code: refusal.code, message: refusal.message }) })
  const answer = (reply: ServerFrame): Envelope[] => event.socket ? [{ to: { socket: event.socket }, origin: event.socket, reply }] : []
  try {
    const { envelopes, seq } = await db.transaction().execute(trx => apply(trx, event))
    const command = event.command
    const acked = isMessageCommand(command) ? answer({ type: 'change.ack', changeId: event.id, messageId: command.messageId, conversationId: event.conversationId, seq }) : []
    if (!envelopes.length) return [...acked, { to: { users: [] }, settles: settles(true) }]
    envelopes[envelopes.length - 1]!.settles = settles(true)
    return [...envelopes, ...acked]
  }
  catch (error) {
    if (error instanceof Refusal) {
      const refused = answer({ type: 'error', code: SOCKET_CODES[error.code] ?? 'forbidden', message: error.message, ...(event.ref && { ref: event.ref }) })
      return [...refused, { to: { users: [] }, settles: settles(false, error) }]
    }
    throw error
  }
}

// The REST codes a refusal can carry, as the socket says them.
const SOCKET_CODES: Partial<Record<ErrorCode, SocketErrorCode>> = {
  not_found: 'not_found', forbidden: 'forbidden', gone: 'gone', too_many_reactions: 'too_many_reactions',
  conflict: 'duplicate_client_id', invalid_body: 'invalid_frame', room_full: 'forbidden'
}

async function apply(trx: Transaction<Database>, event: CommandEvent): Promise<{ envelopes: Envelope[], seq: number | null }> {
  const conversation = await trx.selectFrom('conversations').selectAll().where('id', '=', event.conversationId).forUpdate().executeTakeFirst()
  // Word for word what a conversation one is not in answers: nobody learns it is there.
  if (!conversation) throw new Refusal(404, 'not_found', isMessageCommand(event.command) ? 'There is no such message.' : 'There is no such room.')
  // A redelivered command (the instance died before the broadcast), or a change sent again after
  // a reconnect, finds what it did.
  const done = await trx.selectFrom('conversation_events').select(['seq', 'actor_id']).where('command_id', '=', event.id).executeTakeFirst()
  if (done) {
    if (done.actor_id !== event.actorId) throw new Refusal(409, 'conflict', 'This changeId was already used. Send the change with a new one.')
    return { envelopes: [], seq: done.seq }
  }
  const envelopes = isMessageCommand(event.command)
    ? await applyMessageCommand(trx, conversation, event as CommandEvent & { command: MessageCommand })
    : await applyRoomCommand(trx, conversation, event as CommandEvent & { command: RoomCommand })
  const last = envelopes.at(-1)?.frame
  return { envelopes, seq: last && 'seq' in last ? last.seq : null }
}

async function applyRoomCommand(trx: Transaction<Database>, room: Selectable<ConversationsTable>, event: CommandEvent & { command: RoomCommand }): Promise<Envelope[]> {
  const { conversationId, actorId, command } = event
  if (room.kind !== 'room') throw new Refusal(404, 'not_found', 'There is no such room.')
  const actor = await trx.selectFrom('conversation_members').select(['role']).where('conversation_id', '=', conversationId).where('user_id', '=', actorId).executeTakeFirst()
  const memberOf = (userId: string) => trx.selectFrom('conversation_members').select(['role']).where('conversation_id', '=', conversationId).where('user_id', '=', userId).executeTakeFirst()
  const manager = actor?.role === 'owner' || actor?.role === 'admin'
  const changes: Array<Omit<RoomUpdate, 'type' | 'conversationId' | 'seq' | 'timestamp'> & { membership?: 'add' | 'remove' }> = []
  let memberDelta = 0

  switch (command.action) {
    case 'join': {
      if (actor) return []
      // A private room is not there for someone outside it.
      if (room.visibility !== 'public') throw new Refusal(404, 'not_found', 'There is no such room.')
      if (room.member_count >= MAX_ROOM_MEMBERS) throw new Refusal(409, 'room_full', `A room has at most ${MAX_ROOM_MEMBERS} members.`)
      // The first to join a public room its last member left takes it over: a room always has an owner.
      const empty = room.member_count === 0
      await trx.insertInto('conversation_members').values({ conversation_id: conversationId, user_id: actorId, role: empty ? 'owner' : 'member' }).execute()
      memberDelta = 1
      changes.push({ change: 'joined', userId: actorId, membership: 'add' })
      if (empty) changes.push({ change: 'role', userId: actorId, role: 'owner' })
      break
    }
    case 'leave': {
      if (!actor) throw new Refusal(404, 'not_found', 'There is no such room.')
      if (actor.role === 'owner') {
        // The room keeps an owner: the longest-standing admin, else the longest-standing member.
        const heir = await trx.selectFrom('conversation_members').select('user_id')
          .where('conversation_id', '=', conversationId).where('user_id', '<>', actorId)
          .orderBy(eb => eb.case().when('role', '=', 'admin').then(0).else(1).end()).orderBy('joined_at').limit(1)
          .executeTakeFirst()
        if (heir) {
          await trx.updateTable('conversation_members').set({ role: 'owner' }).where('conversation_id', '=', conversationId).where('user_id', '=', heir.user_id).execute()
          changes.push({ change: 'role', userId: heir.user_id, role: 'owner' })
        }
      }
      await trx.deleteFrom('conversation_members').where('conversation_id', '=', conversationId).where('user_id', '=', actorId).execute()
      memberDelta = -1
      changes.unshift({ change: 'left', userId: actorId, membership: 'remove' })
      break
    }
    case 'add': {
      if (!actor) throw new Refusal(404, 'not_found', 'There is no such room.')
      if (!manager && !room.members_can_invite) throw new Refusal(403, 'forbidden', 'Only the owner and admins can add people to this room.')
      if (await memberOf(command.userId)) return []
      if (room.member_count >= MAX_ROOM_MEMBERS) throw new Refusal(409, 'room_full', `A room has at most ${MAX_ROOM_MEMBERS} members.`)
      await trx.insertInto('conversation_members').values({ conversation_id: conversationId, user_id: command.userId }).execute()
      memberDelta = 1
      changes.push({ change: 'added', userId: command.userId, by: actorId, membership: 'add' })
      break
    }
    case 'remove': {
      if (!actor) throw new Refusal(404, 'not_found', 'There is no such room.')
      if (!manager) throw new Refusal(403, 'forbidden', 'Only the owner and admins can remove people.')
      const target = await memberOf(command.userId)
      if (!target) throw new Refusal(404, 'not_found', 'That person is not in this room.')
      if (command.userId === actorId) throw new Refusal(400, 'invalid_body', 'To go, leave the room.')
      if (target.role === 'owner' || (target.role === 'admin' && actor.role !== 'owner')) throw new Refusal(403, 'forbidden', 'Only the owner can remove an admin, and nobody the owner.')
      await trx.deleteFrom('conversation_members').where('conversation_id', '=', conversationId).where('user_id', '=', command.userId).execute()
      memberDelta = -1
      changes.push({ change: 'removed', userId: command.userId, by: actorId, membership: 'remove' })
      break
    }
    case 'role': {
      if (!actor) throw new Refusal(404, 'not_found', 'There is no such room.')
      if (actor.role !== 'owner') throw new Refusal(403, 'forbidden', 'Only the owner can change roles.')
      const target = await memberOf(command.userId)
      if (!target) throw new Refusal(404, 'not_found', 'That person is not in this room.')
      if (target.role === 'owner') throw new Refusal(403, 'forbidden', 'The owner keeps their role.')
      if (target.role === command.role) return []
      await trx.updateTable('conversation_members').set({ role: command.role }).where('conversation_id', '=', conversationId).where('user_id', '=', command.userId).execute()
      changes.push({ change: 'role', userId: command.userId, by: actorId, role: command.role })
      break
    }
    case 'update': {
      if (!actor) throw new Refusal(404, 'not_found', 'There is no such room.')
      if (!manager) throw new Refusal(403, 'forbidden', 'Only the owner and admins can change the room.')
      const name = command.name ?? room.name ?? ''
      const topic = command.topic ?? room.topic ?? ''
      await trx.updateTable('conversations').set({
        name,
        topic,
        ...(command.membersCanInvite !== undefined && { members_can_invite: command.membersCanInvite }),
        ...(command.roomMentions !== undefined && { room_mentions: command.roomMentions })
      }).where('id', '=', conversationId).execute()
      if (name !== room.name || topic !== (room.topic ?? '')) changes.push({ change: 'renamed', by: actorId, name, topic })
      break
    }
  }
  if (!changes.length) return []
  return recordChanges(trx, room, actorId, event.id, changes, memberDelta)
}

/** Writes room changes as the conversation's next events and returns their envelopes. */
export async function recordChanges(
  trx: Transaction<Database>,
  room: { id: string, last_seq: number },
  actorId: string,
  commandId: string | null,
  changes: Array<Omit<RoomUpdate, 'type' | 'conversationId' | 'seq' | 'timestamp'> & { membership?: 'add' | 'remove' }>,
  memberDelta = 0
): Promise<Envelope[]> {
  const people = [...new Set(changes.flatMap(change => [change.userId, change.by].filter((id): id is string => !!id)))]
  const named = people.length ? await trx.selectFrom('users').select(['id', 'display_name']).where('id', 'in', people).execute() : []
  const names = Object.fromEntries(named.map(row => [row.id, row.display_name]))
  const at = new Date()
  let seq = room.last_seq
  const envelopes: Envelope[] = []
  const rows = changes.map(({ membership, ...change }, index) => {
    seq += 1
    const payload = { ...change, names: Object.fromEntries(Object.entries(names).filter(([id]) => id === change.userId || id === change.by)) }
    const frame: RoomUpdate = { type: 'room.update', conversationId: room.id, seq, timestamp: at.toISOString(), ...payload }
    envelopes.push({
      to: { conversation: room.id },
      frame,
      ...(membership && change.userId && { membership: [{ conversationId: room.id, userId: change.userId, membership: membership === 'add' ? ROOM_MEMBER : null }] })
    })
    // Only the first row of a command carries its id: the unique index allows one.
    return { conversation_id: room.id, seq, kind: change.change, actor_id: actorId, command_id: index === 0 ? commandId : null, payload: JSON.stringify(payload), created_at: at }
  })
  await trx.insertInto('conversation_events').values(rows).execute()
  await trx.updateTable('conversations')
    .set(eb => ({ last_seq: seq, member_count: eb('member_count', '+', memberDelta) }))
    .where('id', '=', room.id)
    .execute()
  return envelopes
}
