import type { Kysely } from 'kysely'
import type { Database } from '../../database/schema'
import type { Envelope } from '../realtime/broadcast'
import type { MembershipChange } from '../realtime/membership'

export function directKey(a: string, b: string): string {
  return a < b ? `${a}:${b}` : `${b}:${a}`
}

/**
 * Opens (or returns) the direct conversation of two people on the first one's request: they are
 * in it as 'active'; the other is 'invited' until they accept or write back. Opening it again is
 * how someone accepts a request they got, or lifts a block they made.
 */
export async function openDirectConversation(db: Kysely<Database>, userId: string, otherId: string): Promise<string> {
  const key = directKey(userId, otherId)
  return db.transaction().execute(async (trx) => {
    const inserted = await trx.insertInto('conversations')
      .values({ kind: 'direct', direct_key: key, member_count: 2, created_by: userId })
      .onConflict(conflict => conflict.column('direct_key').doNothing())
      .returning('id')
      .executeTakeFirst()
    if (inserted) {
      await trx.insertInto('conversation_members')
        .values([{ conversation_id: inserted.id, user_id: userId, state: 'active' }, { conversation_id: inserted.id, user_id: otherId, state: 'invited' }])
        .execute()
      return inserted.id
    }
    const existing = await trx.selectFrom('conversations').select('id').where('direct_key', '=', key).executeTakeFirstOrThrow()
    await trx.updateTable('conversation_members').set({ state: 'active' })
      .where('conversation_id', '=', existing.id).where('user_id', '=', userId).where('state', '<>', 'active')
      .execute()
    return existing.id
  })
}

/** The direct conversation of two people, if they have one. */
export async function findDirectConversation(db: Kysely<Database>, userId: string, otherId: string): Promise<string | undefined> {
  const row = await db.selectFrom('conversations').select('id').where('direct_key', '=', directKey(userId, otherId)).executeTakeFirst()
  return row?.id
}

/** Sets my side of a direct conversation; false when there is none or it already was so. */
export async function setDirectState(db: Kysely<Database>, conversationId: string, userId: string, state: 'active' | 'blocked'): Promise<boolean> {
  const result = await db.updateTable('conversation_members').set({ state })
    .where('conversation_id', '=', conversationId).where('user_id', '=', userId).where('state', '<>', state)
    .executeTakeFirst()
  return Number(result.numUpdatedRows) > 0
}

/** Both people's view of a direct conversation as it now stands, for every instance's membership index. */
export async function directMembershipChanges(db: Kysely<Database>, conversationId: string): Promise<Envelope> {
  const rows = await db.selectFrom('conversation_members').select(['user_id', 'state']).where('conversation_id', '=', conversationId).execute()
  const open = rows.length === 2 && rows.every(row => row.state === 'active')
  const membership: MembershipChange[] = rows.map(row => ({
    conversationId,
    userId: row.user_id,
    membership: { kind: 'direct', peer: rows.find(other => other.user_id !== row.user_id)?.user_id ?? null, open, incoming: row.state === 'invited' }
  }))
  return { to: { users: [] }, membership }
}
