import { Readable } from 'node:stream'
import { sql, type Kysely } from 'kysely'
import type { Database } from '../../database/schema'
import { findUser } from '../users'

/** Rows read per query: what the export holds in memory at once, whatever the account's size. */
export const EXPORT_PAGE = 500

/**
 * Everything about one person, as JSON lines: `profile`, then each `conversation` they are in
 * (a room's name, or the other person's name for a direct one), then each `message` they wrote
 * that retention kept (in any conversation, also one they left), and last `end` with the counts,
 * so a reader can tell a complete file from a cut one. Others' messages are not theirs to take
 * away: only the conversation names give them context.
 *
 * A stream with backpressure that reads the database in keyset pages: memory stays flat for any
 * number of messages.
 */
export function exportOf(db: Kysely<Database>, userId: string): Readable {
  return Readable.from(lines(db, userId), { objectMode: false })
}

async function* lines(db: Kysely<Database>, userId: string): AsyncGenerator<string> {
  const user = await findUser(db, userId)
  if (!user) return
  yield line({ type: 'profile', exportedAt: new Date().toISOString(), ...user })

  let conversations = 0
  let afterConversation = '00000000-0000-0000-0000-000000000000'
  for (;;) {
    const page = await db.selectFrom('conversation_members as m')
      .innerJoin('conversations as c', 'c.id', 'm.conversation_id')
      .select(['c.id', 'c.kind', 'c.name', 'c.topic', 'm.joined_at', 'm.role', 'm.state'])
      .select(eb => eb.selectFrom('conversation_members as o').innerJoin('users as u', 'u.id', 'o.user_id')
        .select('u.display_name').whereRef('o.conversation_id', '=', 'c.id').where('o.user_id', '<>', userId).limit(1)
        .as('peer_name'))
      .where('m.user_id', '=', userId).where('c.id', '>', afterConversation)
      .orderBy('c.id').limit(EXPORT_PAGE)
      .execute()
    for (const row of page) {
      conversations++
      yield line({
        type: 'conversation',
        id: row.id,
        kind: row.kind,
        name: row.kind === 'room' ? row.name : row.peer_name,
        topic: row.topic,
        joinedAt: row.joined_at.toISOString(),
        role: row.role,
        state: row.state
      })
    }
    if (page.length < EXPORT_PAGE) break
    afterConversation = page.at(-1)!.id
  }

  let messages = 0
  // The cursor keeps created_at as PostgreSQL's text, to the microsecond: a JavaScript Date holds
  // milliseconds, and a cursor rounded down would read the page's last message again.
  let after: { createdAt: string, id: string } | undefined
  for (;;) {
    let query = db.selectFrom('messages')
      .select(['id', 'conversation_id', 'seq', 'body', 'created_at', 'edited_at', 'deleted_at', 'reply_to'])
      .select(sql<string>`created_at::text`.as('cursor'))
      .where('sender_id', '=', userId)
    if (after) query = query.where(sql<boolean>`(created_at, id) > (${after.createdAt}::timestamptz, ${after.id}::uuid)`)
    const page = await query.orderBy('created_at').orderBy('id').limit(EXPORT_PAGE).execute()
    for (const row of page) {
      messages++
      yield line({
        type: 'message',
        id: row.id,
        conversationId: row.conversation_id,
        seq: row.seq,
        body: row.body,
        createdAt: row.created_at.toISOString(),
        editedAt: row.edited_at?.toISOString() ?? null,
        deletedAt: row.deleted_at?.toISOString() ?? null,
        replyTo: row.reply_to
      })
    }
    if (page.length < EXPORT_PAGE) break
    const last = page.at(-1)!
    after = { createdAt: last.cursor, id: last.id }
  }
  yield line({ type: 'end', conversations, messages })
}

const line = (value: unknown) => JSON.stringify(value) + '\n'
