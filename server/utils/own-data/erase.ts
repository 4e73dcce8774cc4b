import type { Backends } from '../backends'
import { runCommand } from '../conversations/commands'
import { endAllSessions } from '../sessions'

const LEAVES_AT_ONCE = 8

/** What an erased account is called wherever its messages remain. */
export const DELETED_ACCOUNT_NAME = 'Deleted account'

/**
 * Erases a person's account. Their rooms first, each leave in the room's own order (so members
 * see them leave and the room keeps an owner); a failure there stops before anything is erased
 * and the person can try again. Then in one transaction: the profile becomes a tombstone (the
 * address freed for a new account, the name "Deleted account"; the row stays so the messages they
 * wrote keep a sender), their reactions and second factor go. Last, every session ends and its
 * sockets close on every instance; a session that outlived a failure there finds no account
 * (findUser skips erased ones).
 *
 * Direct conversations stay as they are: the other person keeps them, with "Deleted account".
 */
export async function eraseAccount(backends: Backends, userId: string): Promise<void> {
  const { db } = backends.database
  const rooms = await db.selectFrom('conversation_members as m').innerJoin('conversations as c', 'c.id', 'm.conversation_id')
    .select('c.id').where('m.user_id', '=', userId).where('c.kind', '=', 'room')
    .execute()
  // A few rooms at a time: each leave waits for its room's persister, and someone may be in hundreds.
  for (let i = 0; i < rooms.length; i += LEAVES_AT_ONCE) {
    await Promise.all(rooms.slice(i, i + LEAVES_AT_ONCE).map(room => runCommand(backends, room.id, userId, { action: 'leave' }, { throttled: false })))
  }
  await db.transaction().execute(async (trx) => {
    await trx.updateTable('users')
      // Not an address any sign-in accepts: nobody can ever sign in as the tombstone.
      .set({ email: `deleted:${userId}`, display_name: DELETED_ACCOUNT_NAME, deleted_at: new Date(), last_seen_at: null, read_receipts: false })
      .where('id', '=', userId).execute()
    await trx.deleteFrom('message_reactions').where('user_id', '=', userId).execute()
    await trx.deleteFrom('totp_recovery_codes').where('user_id', '=', userId).execute()
    await trx.deleteFrom('user_totp').where('user_id', '=', userId).execute()
  })
  await endAllSessions(backends.store, userId)
}
