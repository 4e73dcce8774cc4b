import { sql, type Kysely } from 'kysely'

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('conversations')
    .addColumn('id', 'uuid', col => col.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('kind', 'text', col => col.notNull().check(sql`kind in ('direct', 'group')`))
    // Two people have one direct conversation: "smaller-id:larger-id".
    .addColumn('direct_key', 'text', col => col.unique())
    .addColumn('created_at', 'timestamptz', col => col.notNull().defaultTo(sql`now()`))
    // The seq counter: locked by the persisting transaction, so seq has no gap and no duplicate.
    .addColumn('last_seq', 'bigint', col => col.notNull().defaultTo(0))
    .addColumn('last_message_at', 'timestamptz')
    .execute()

  await db.schema
    .createTable('conversation_members')
    .addColumn('conversation_id', 'uuid', col => col.notNull().references('conversations.id').onDelete('cascade'))
    .addColumn('user_id', 'uuid', col => col.notNull().references('users.id').onDelete('cascade'))
    .addColumn('joined_at', 'timestamptz', col => col.notNull().defaultTo(sql`now()`))
    // Read state as a watermark: everything up to read_seq is read, read_at is when it got there.
    .addColumn('read_seq', 'bigint', col => col.notNull().defaultTo(0))
    .addColumn('read_at', 'timestamptz')
    .addPrimaryKeyConstraint('conversation_members_pk', ['conversation_id', 'user_id'])
    .execute()
  await db.schema.createIndex('conversation_members_user').on('conversation_members').column('user_id').execute()

  // One partition a day, so retention drops whole tables instead of deleting rows.
  await sql`
    create table messages (
      id uuid not null,
      conversation_id uuid not null,
      seq bigint not null,
      sender_id uuid not null,
      client_id uuid not null,
      body text not null,
      created_at timestamptz not null,
      primary key (conversation_id, seq, created_at)
    ) partition by range (created_at)`.execute(db)
  await sql`create table messages_default partition of messages default`.execute(db)
  await sql`create index messages_id on messages (id)`.execute(db)

  // Unpartitioned, so PostgreSQL itself enforces both guarantees across every partition:
  // one (sender, clientId) is stored once, and (conversation, seq) is unique.
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
  await db.schema.createIndex('message_keys_created').on('message_keys').column('created_at').execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('message_keys').execute()
  await sql`drop table messages`.execute(db)
  await db.schema.dropTable('conversation_members').execute()
  await db.schema.dropTable('conversations').execute()
}
