import type { Kysely, Selectable } from 'kysely'
import type { Database, UsersTable } from '../database/schema'
import type { User } from '../../shared/types/user'

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

/** The account for an address, made on its first successful sign-in. */
export async function findOrCreateUser(db: Kysely<Database>, email: string): Promise<{ user: User, created: boolean }> {
  const inserted = await db.insertInto('users')
    .values({ email, display_name: email.split('@')[0]!.slice(0, 64) })
    .onConflict(conflict => conflict.column('email').doNothing())
    .returningAll()
    .executeTakeFirst()
  if (inserted) return { user: toUser(inserted), created: true }
  const existing = await db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirstOrThrow()
  return { user: toUser(existing), created: false }
}

export async function findUser(db: Kysely<Database>, id: string): Promise<User | undefined> {
  const row = await db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst()
  return row && toUser(row)
}

export async function findUserByEmail(db: Kysely<Database>, email: string): Promise<User | undefined> {
  const row = await db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst()
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
