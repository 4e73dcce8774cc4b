import { sql, type Kysely } from 'kysely'

/**
 * The idempotency keys move into the daily partitions of messages, so retention drops them with
 * their day instead of deleting them row by row: on 1,000,000 expired messages that delete wrote
 * 160 MB of WAL and took 1.9 s where dropping the partitions alone took 0.2 s and 0.3 MB.
 *
 * What message_keys added over messages was PostgreSQL's own uniqueness across partitions, for
 * (sender, clientId) and (conversation, seq). The persister already guarantees both under the lock
 * it takes on each conversation's counter row (see persister.ts); a partitioned index can only be
 * unique per day, so the database's part was redundant with that lock and is given up here.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // The persister looks up the clientIds of each batch; random UUIDs, so one column is selective.
  await sql`create index messages_client on messages (client_id)`.execute(db)
  // Retention reads the oldest message still stored and finds the boundary day's expired rows.
  await sql`create index messages_created on messages (created_at)`.execute(db)
  // Only the persister's lookup of a resent message's body used it, and that now reads messages.
  await sql`drop index messages_id`.execute(db)
  await sql`drop table message_keys`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('message_keys')
    .addColumn('sender_id', 'uuid', col => col.notNull())
    .addColumn('client_id', 'uuid', col => col.notNull())
    .addColumn('message_id', 'uuid', col => col.notNull())
    .addColumn('conversation_id', 'uuid', col => col.notNull())
    .addColumn('seq', 'bigint', col => col.notNull())
    .addColumn('created_at', 'timestamptz', col => col.notNull())
    .addPrimaryKeyConstraint('message_keys_pk', ['sender_id', 'client_id'])
    .addUniqueConstraint('message_keys_seq', ['conversation_id', 'seq'])
    .execute()
  await sql`insert into message_keys select sender_id, client_id, id, conversation_id, seq, created_at from messages`.execute(db)
  await db.schema.createIndex('message_keys_created').on('message_keys').column('created_at').execute()
  await sql`create index messages_id on messages (id)`.execute(db)
  await sql`drop index messages_created`.execute(db)
  await sql`drop index messages_client`.execute(db)
}
