import type { Kysely, Selectable } from 'kysely'
import type { Database, UsersTable } from '../database/schema'
import type { User } from '#shared/types/user'

export function toUser(row: Selectable<UsersTable>): User {
  return {
    id: row.id,
    email: row.email,
    displayName: row.display_name,
    createdAt: row.created_at.toISOString(),
    lastSeenAt: row.last_seen_at?.toISOString() ?? null,
    readReceipts: row.read_receipts
  }
}

const defaultName = (email: string) => email.split('@')[0]!.slice(0, 64)

/**
 * The account for an address at a successful sign-in: made now, or made earlier by someone who
 * added the address and now signing in for the first time (then `created` too: they pick a name).
 */
export async function findOrCreateUser(db: Kysely<Database>, email: string): Promise<{ user: User, created: boolean }> {
  const inserted = await db.insertInto('users')
    .values({ email, display_name: defaultName(email), verified_at: new Date() })
    .onConflict(conflict => conflict.column('email').doNothing())
    .returningAll()
    .executeTakeFirst()
  if (inserted) return { user: toUser(inserted), created: true }
  const invited = await db.updateTable('users').set({ verified_at: new Date() })
    .where('email', '=', email).where('verified_at', 'is', null)
    .returningAll()
    .executeTakeFirst()
  if (invited) return { user: toUser(invited), created: true }
  const existing = await db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirstOrThrow()
  return { user: toUser(existing), created: false }
}

/**
 * The person behind an address someone adds: their account, or one made for them now that waits
 * for their first sign-in (`invited`). Either way the caller's answer is the same.
 */
export async function findOrInviteUser(db: Kysely<Database>, email: string): Promise<{ user: Selectable<UsersTable>, invited: boolean }> {
  const inserted = await db.insertInto('users')
    .values({ email, display_name: defaultName(email) })
    .onConflict(conflict => conflict.column('email').doNothing())
    .returningAll()
    .executeTakeFirst()
  const row = inserted ?? await db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirstOrThrow()
  return { user: row, invited: row.verified_at === null }
}

/** A live account by id; an erased one is as gone as one that never was. */
export async function findUser(db: Kysely<Database>, id: string): Promise<User | undefined> {
  const row = await db.selectFrom('users').selectAll().where('id', '=', id).where('deleted_at', 'is', null).executeTakeFirst()
  return row && toUser(row)
}

export async function updateUser(db: Kysely<Database>, id: string, change: { displayName?: string, readReceipts?: boolean }): Promise<User> {
  const row = await db.updateTable('users')
    .set({
      ...(change.displayName !== undefined && { display_name: change.displayName }),
      ...(change.readReceipts !== undefined && { read_receipts: change.readReceipts })
    })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow()
  return toUser(row)
}
