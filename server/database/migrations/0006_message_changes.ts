import { sql, type Kysely } from 'kysely'

/**
 * Message changes (issue 15): edits, deletions, reactions, replies and mentions.
 *
 * - messages gain their current state: edited_at, deleted_at and deleted_by (a deleted message
 *   keeps its row with an empty body, so its seq still answers), reply_to (no foreign key: messages
 *   are partitioned by day and retention drops whole days, so a reply can outlive what it answers),
 *   mentions and mentions_room.
 * - message_versions keeps every replaced body, a deleted one included, for moderation only: no
 *   endpoint a member reaches reads it. Retention deletes it with its message's day.
 * - message_reactions: one row per person and emoji on a message.
 * - conversations.room_mentions: whether `@room` mentions everyone.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table messages
    add column edited_at timestamptz,
    add column deleted_at timestamptz,
    add column deleted_by uuid,
    add column reply_to uuid,
    add column mentions uuid[] not null default '{}',
    add column mentions_room boolean not null default false`.execute(db)
  await sql`alter table conversations add column room_mentions boolean not null default true`.execute(db)
  await sql`
    create table message_versions (
      message_id uuid not null,
      conversation_id uuid not null references conversations (id) on delete cascade,
      body text not null,
      replaced_at timestamptz not null default now(),
      replaced_by uuid,
      -- When the message itself was written: retention purges by it, with the message's day.
      message_created_at timestamptz not null
    )`.execute(db)
  await sql`create index message_versions_message on message_versions (message_id)`.execute(db)
  await sql`create index message_versions_created on message_versions (message_created_at)`.execute(db)
  await sql`
    create table message_reactions (
      message_id uuid not null,
      conversation_id uuid not null references conversations (id) on delete cascade,
      user_id uuid not null,
      emoji text not null,
      created_at timestamptz not null default now(),
      message_created_at timestamptz not null,
      primary key (message_id, user_id, emoji)
    )`.execute(db)
  await sql`create index message_reactions_created on message_reactions (message_created_at)`.execute(db)
  // The changes of one message in the events table: retention removes them with the message.
  await sql`alter table conversation_events add column message_id uuid, add column message_created_at timestamptz`.execute(db)
  await sql`create index conversation_events_message on conversation_events (message_id) where message_id is not null`.execute(db)
  await sql`create index conversation_events_message_created on conversation_events (message_created_at) where message_created_at is not null`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index conversation_events_message_created`.execute(db)
  await sql`drop index conversation_events_message`.execute(db)
  await sql`alter table conversation_events drop column message_id, drop column message_created_at`.execute(db)
  await sql`drop table message_reactions`.execute(db)
  await sql`drop table message_versions`.execute(db)
  await sql`alter table conversations drop column room_mentions`.execute(db)
  await sql`alter table messages drop column edited_at, drop column deleted_at, drop column deleted_by,
    drop column reply_to, drop column mentions, drop column mentions_room`.execute(db)
}
