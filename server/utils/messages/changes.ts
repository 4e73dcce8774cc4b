import { randomUUID } from 'node:crypto'
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely'
import type { ConversationsTable, Database } from '../../database/schema'
import { MAX_MENTIONS, MAX_REACTION_USERS, MAX_REACTIONS_PER_MESSAGE, MENTION_TOKEN, ROOM_MENTION, type ChatDelete, type ChatEdit, type ChatReact, type ChatUpdate, type ReactionTally } from '#shared/types/changes'
import type { Backends } from '../backends'
import { Refusal, runCommand, type CommandEvent } from '../conversations/commands'
import { useConfig } from '../config'
import { FrameRefused, type FrameContext } from '../gateway/frame'
import { fail } from '../http'
import { log } from '../log'
import type { Envelope } from '../realtime/broadcast'
import { instanceId } from '../realtime/sockets'
import { retentionCutoff } from '../retention/cutoff'
import { CONVERSATIONS_TOPIC } from './persister'

/** A change of one message, applied by the persister in its conversation's order. */
export type MessageCommand
  = | { action: 'edit', messageId: string, body: string }
    | { action: 'delete', messageId: string }
    | { action: 'react', messageId: string, emoji: string, on: boolean }

type Conversation = Selectable<ConversationsTable>

const NO_MESSAGE = 'There is no such message.'

/**
 * The people a body mentions who are members (`<@id>`, at most MAX_MENTIONS), and whether it
 * mentions the whole room (`@room`, in a room that allows it).
 */
export async function mentionsOf(db: Kysely<Database> | Transaction<Database>, conversation: Pick<Conversation, 'id' | 'kind' | 'room_mentions'>, body: string): Promise<{ mentions: string[], mentionsRoom: boolean }> {
  const named = [...new Set([...body.matchAll(MENTION_TOKEN)].map(match => match[1]!.toLowerCase()))].slice(0, MAX_MENTIONS)
  const members = named.length
    ? (await db.selectFrom('conversation_members').select('user_id').where('conversation_id', '=', conversation.id).where('user_id', 'in', named).execute()).map(row => row.user_id)
    : []
  return { mentions: named.filter(id => members.includes(id)), mentionsRoom: conversation.kind === 'room' && conversation.room_mentions && ROOM_MENTION.test(body) }
}

/** Applies one message change inside the command's transaction (the conversation row is locked). */
export async function applyMessageCommand(trx: Transaction<Database>, conversation: Conversation, event: CommandEvent & { command: MessageCommand }): Promise<Envelope[]> {
  const { actorId, command } = event
  const actor = await trx.selectFrom('conversation_members').select(['role']).where('conversation_id', '=', conversation.id).where('user_id', '=', actorId).executeTakeFirst()
  if (!actor) throw new Refusal(404, 'not_found', NO_MESSAGE)
  const message = await trx.selectFrom('messages').selectAll()
    .where('id', '=', command.messageId).where('conversation_id', '=', conversation.id)
    .where('created_at', '>', retentionCutoff(useConfig().retentionDays))
    .executeTakeFirst()
  if (!message) throw new Refusal(404, 'not_found', NO_MESSAGE)
  const now = new Date()
  let change: Omit<ChatUpdate, 'type' | 'conversationId' | 'seq' | 'messageId' | 'by' | 'timestamp' | 'changeId'>
  let kind: 'edit' | 'delete' | 'reaction'

  switch (command.action) {
    case 'edit': {
      if (message.sender_id !== actorId) throw new Refusal(403, 'forbidden', 'Only its author can edit a message.')
      if (message.deleted_at) throw new Refusal(410, 'gone', 'This message was deleted.')
      if (message.body === command.body) return []
      const { mentions, mentionsRoom } = await mentionsOf(trx, conversation, command.body)
      await trx.insertInto('message_versions').values({ message_id: message.id, conversation_id: conversation.id, body: message.body, replaced_by: actorId, replaced_at: now, message_created_at: message.created_at }).execute()
      await trx.updateTable('messages').set({ body: command.body, edited_at: now, mentions, mentions_room: mentionsRoom })
        .where('id', '=', message.id).where('conversation_id', '=', conversation.id).where('created_at', '=', message.created_at).execute()
      kind = 'edit'
      change = { body: command.body, editedAt: now.toISOString(), mentions, mentionsRoom }
      break
    }
    case 'delete': {
      if (message.deleted_at) return []
      const manager = conversation.kind === 'room' && (actor.role === 'owner' || actor.role === 'admin')
      if (message.sender_id !== actorId && !manager) throw new Refusal(403, 'forbidden', 'Only its author, or a room\'s owner and admins, can delete a message.')
      // The text stays only in message_versions, for moderation: the row, its reactions and the
      // bodies of its earlier edits in the stream go.
      await trx.insertInto('message_versions').values({ message_id: message.id, conversation_id: conversation.id, body: message.body, replaced_by: actorId, replaced_at: now, message_created_at: message.created_at }).execute()
      await trx.updateTable('messages').set({ body: '', deleted_at: now, deleted_by: actorId, mentions: [], mentions_room: false })
        .where('id', '=', message.id).where('conversation_id', '=', conversation.id).where('created_at', '=', message.created_at).execute()
      await trx.deleteFrom('message_reactions').where('message_id', '=', message.id).execute()
      await trx.updateTable('conversation_events').set({ payload: sql`(payload - 'body') || '{"redacted": true}'::jsonb` as never })
        .where('conversation_id', '=', conversation.id).where('message_id', '=', message.id).where('kind', '=', 'edit').execute()
      kind = 'delete'
      change = { deleted: true, deletedBy: actorId }
      break
    }
    case 'react': {
      if (message.deleted_at) throw new Refusal(410, 'gone', 'This message was deleted.')
      if (command.on) {
        const present = await trx.selectFrom('message_reactions').select('emoji').distinct().where('message_id', '=', message.id).execute()
        if (!present.some(row => row.emoji === command.emoji) && present.length >= MAX_REACTIONS_PER_MESSAGE) {
          throw new Refusal(409, 'too_many_reactions', `A message carries at most ${MAX_REACTIONS_PER_MESSAGE} different emoji.`)
        }
        const added = await trx.insertInto('message_reactions')
          .values({ message_id: message.id, conversation_id: conversation.id, user_id: actorId, emoji: command.emoji, created_at: now, message_created_at: message.created_at })
          .onConflict(oc => oc.doNothing()).executeTakeFirst()
        if (!Number(added.numInsertedOrUpdatedRows ?? 0)) return []
      }
      else {
        const removed = await trx.deleteFrom('message_reactions').where('message_id', '=', message.id).where('user_id', '=', actorId).where('emoji', '=', command.emoji).executeTakeFirst()
        if (!Number(removed.numDeletedRows)) return []
      }
      kind = 'reaction'
      change = { reactions: await reactionTallies(trx, message.id), reaction: { userId: actorId, emoji: command.emoji, on: command.on } }
      break
    }
  }

  const seq = conversation.last_seq + 1
  const frame: ChatUpdate = { type: 'chat.update', conversationId: conversation.id, seq, messageId: message.id, by: actorId, ...change, changeId: event.id, timestamp: now.toISOString() }
  const { type: _type, conversationId: _conversationId, seq: _seq, timestamp: _timestamp, ...payload } = frame
  await trx.insertInto('conversation_events').values({
    conversation_id: conversation.id, seq, kind, actor_id: actorId, command_id: event.id, message_id: message.id, message_created_at: message.created_at, payload: JSON.stringify(payload), created_at: now
  }).execute()
  await trx.updateTable('conversations').set({ last_seq: seq }).where('id', '=', conversation.id).execute()
  return [{ to: { conversation: conversation.id }, frame }]
}

/** Every emoji on a message with its count and the first people, oldest first. */
export async function reactionTallies(db: Kysely<Database> | Transaction<Database>, messageId: string): Promise<ReactionTally[]> {
  const rows = await db.selectFrom('message_reactions').select(['emoji', 'user_id']).where('message_id', '=', messageId).orderBy('created_at').orderBy('user_id').execute()
  const tallies = new Map<string, ReactionTally>()
  for (const row of rows) {
    let tally = tallies.get(row.emoji)
    if (!tally) tallies.set(row.emoji, tally = { emoji: row.emoji, count: 0, users: [] })
    tally.count += 1
    if (tally.users.length < MAX_REACTION_USERS) tally.users.push(row.user_id)
  }
  return [...tallies.values()]
}

/** The conversation of a message I can see; 404 for one I cannot (not in it, unknown, purged). */
export async function conversationOfMessage(db: Kysely<Database>, userId: string, messageId: string): Promise<string | null> {
  const row = await db.selectFrom('messages')
    .innerJoin('conversation_members', join => join.onRef('conversation_members.conversation_id', '=', 'messages.conversation_id').on('conversation_members.user_id', '=', userId))
    .select('messages.conversation_id')
    .where('messages.id', '=', messageId)
    .where('messages.created_at', '>', retentionCutoff(useConfig().retentionDays))
    .executeTakeFirst()
  return row?.conversation_id ?? null
}

/** REST: a change of a message, applied in its conversation's order before the answer. */
export async function changeMessage(backends: Backends, userId: string, command: MessageCommand): Promise<string> {
  const conversationId = await conversationOfMessage(backends.database.db, userId, command.messageId)
  if (!conversationId) throw fail(404, 'not_found', NO_MESSAGE)
  await runCommand(backends, conversationId, userId, command)
  return conversationId
}

/**
 * chat.edit, chat.delete, chat.react: the gateway has checked the frame and the limit; this
 * finds the message's conversation and puts the change on the bus in its order. The persister
 * answers this socket with change.ack (or an error whose ref is the changeId), and every member
 * with chat.update.
 */
export async function changeByFrame({ socket, backends }: FrameContext, frame: ChatEdit | ChatDelete | ChatReact) {
  const conversationId = await conversationOfMessage(backends.database.db, socket.userId, frame.messageId)
  if (!conversationId) throw new FrameRefused('not_found', NO_MESSAGE)
  const command: MessageCommand = frame.type === 'chat.edit'
    ? { action: 'edit', messageId: frame.messageId, body: frame.body }
    : frame.type === 'chat.delete' ? { action: 'delete', messageId: frame.messageId } : { action: 'react', messageId: frame.messageId, emoji: frame.emoji, on: frame.on }
  const event: CommandEvent = {
    kind: 'command',
    id: frame.changeId ?? randomUUID(),
    conversationId,
    actorId: socket.userId,
    command,
    sentAt: Date.now(),
    origin: instanceId,
    socket: socket.id,
    ref: frame.changeId ?? frame.messageId
  }
  try {
    await backends.bus.publish(CONVERSATIONS_TOPIC, [{ key: conversationId, value: JSON.stringify(event) }])
  }
  catch (error) {
    log.warn('messages: the bus refused a change', { error })
    throw new FrameRefused('unavailable', 'The change could not be made right now. It will be retried.')
  }
}
