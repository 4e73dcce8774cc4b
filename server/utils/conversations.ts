import { sql, type Kysely } from 'kysely'
import type { Database } from '../database/schema'
import type { ChatMessage, Contact } from '../../shared/types/chat'
import { fail } from './http'

export function directKey(a: string, b: string): string {
  return a < b ? `${a}:${b}` : `${b}:${a}`
}

/** Opens (or returns) the direct conversation of two people. */
export async function openDirectConversation(db: Kysely<Database>, userId: string, otherId: string): Promise<string> {
  const key = directKey(userId, otherId)
  return db.transaction().execute(async (trx) => {
    const inserted = await trx.insertInto('conversations')
      .values({ kind: 'direct', direct_key: key })
      .onConflict(conflict => conflict.column('direct_key').doNothing())
      .returning('id')
      .executeTakeFirst()
    if (!inserted) {
      const existing = await trx.selectFrom('conversations').select('id').where('direct_key', '=', key).executeTakeFirstOrThrow()
      return existing.id
    }
    await trx.insertInto('conversation_members')
      .values([{ conversation_id: inserted.id, user_id: userId }, { conversation_id: inserted.id, user_id: otherId }])
      .execute()
    return inserted.id
  })
}

/** The direct conversation of two people, if they have one. */
export async function findDirectConversation(db: Kysely<Database>, userId: string, otherId: string): Promise<string | undefined> {
  const row = await db.selectFrom('conversations').select('id').where('direct_key', '=', directKey(userId, otherId)).executeTakeFirst()
  return row?.id
}

/** A conversation the caller belongs to, with the other member of a direct one; 404 otherwise. */
export async function requireMembership(db: Kysely<Database>, userId: string, conversationId: string): Promise<{ otherId: string | null }> {
  const rows = await db.selectFrom('conversation_members').select('user_id').where('conversation_id', '=', conversationId).execute()
  if (!rows.some(row => row.user_id === userId)) throw fail(404, 'not_found', 'There is no such conversation.')
  return { otherId: rows.find(row => row.user_id !== userId)?.user_id ?? null }
}

export function retentionCutoff(retentionDays: number, now = Date.now()): Date {
  return new Date(now - retentionDays * 24 * 3600_000)
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
}

/** The caller's direct conversations: the other person, the last message and the unread count, newest activity first. */
export async function listContacts(db: Kysely<Database>, userId: string, retentionDays: number): Promise<Array<Omit<Contact, 'presence'> & { lastSeen: string | null }>> {
  const cutoff = retentionCutoff(retentionDays)
  const { rows } = await sql<ContactRow>`
    select c.id as conversation_id, u.id as user_id, u.email, u.display_name, u.last_seen_at,
      last.id as message_id, last.seq, last.sender_id, last.body, last.created_at,
      (select count(*) from messages m
        where m.conversation_id = c.id and m.seq > me.read_seq and m.sender_id <> ${userId}
          and m.created_at > ${cutoff})::int8 as unread,
      coalesce(last.created_at, c.created_at) as activity,
      other.read_seq as their_read_seq, other.read_at as their_read_at,
      (u.read_receipts and mine.read_receipts) as shared
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
    order by activity desc`.execute(db)
  return rows.map(row => ({
    user: { id: row.user_id, email: row.email, displayName: row.display_name },
    conversationId: row.conversation_id,
    lastMessage: row.message_id
      ? {
        id: row.message_id,
        conversationId: row.conversation_id,
        seq: row.seq!,
        from: row.sender_id!,
        to: row.sender_id === userId ? row.user_id : userId,
        body: row.body!,
        timestamp: row.created_at!.toISOString()
      } satisfies ChatMessage
      : null,
    unread: row.unread,
    // Receipts are mutual: with either side's switched off, none are shown.
    theirRead: row.shared ? { seq: row.their_read_seq, at: row.their_read_at?.toISOString() ?? null } : { seq: 0, at: null },
    lastSeen: row.last_seen_at?.toISOString() ?? null
  }))
}
