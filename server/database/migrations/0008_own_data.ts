import { sql, type Kysely } from 'kysely'

/**
 * People's own data (issue 19): a second factor, the export, the erased account.
 *
 * A second factor: an authenticator app's secret per person and their recovery codes.
 *
 * - user_totp.secret is encrypted (AES-256-GCM, a key derived from NATTER_SESSION_SECRET), never
 *   plain; enabled_at is null while the person has not confirmed a code from it yet. last_step is
 *   the newest step a code was used for (the store holds the same for the atomic check; this is
 *   what survives the store).
 * - totp_recovery_codes keeps keyed hashes only; used_at marks a spent one.
 * Both go with the account (on delete cascade).
 *
 * messages_sender: the export reads a person's own messages in (created_at, id) order, page by
 * page, without scanning everyone else's. users.deleted_at marks an erased account: its row
 * stays (as "Deleted account") so the messages it wrote keep a sender.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table user_totp (
      user_id uuid primary key references users (id) on delete cascade,
      secret text not null,
      created_at timestamptz not null default now(),
      enabled_at timestamptz,
      last_step bigint
    )`.execute(db)
  await sql`
    create table totp_recovery_codes (
      user_id uuid not null references users (id) on delete cascade,
      code_hash text not null,
      used_at timestamptz,
      primary key (user_id, code_hash)
    )`.execute(db)
  await sql`create index messages_sender on messages (sender_id, created_at, id)`.execute(db)
  await sql`alter table users add column deleted_at timestamptz`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table users drop column deleted_at`.execute(db)
  await sql`drop index messages_sender`.execute(db)
  await sql`drop table totp_recovery_codes`.execute(db)
  await sql`drop table user_totp`.execute(db)
}
