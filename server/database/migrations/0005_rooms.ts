import { sql, type Kysely } from 'kysely'
import { up as persistFunctionOfVersion4 } from './0004_persist_function'

/**
 * Rooms, and the conversation as the unit of everything members see.
 *
 * - conversations: a kind of 'direct' or 'room'; rooms have a name, topic, visibility and a member
 *   count kept by whoever changes the membership (a count(*) of 1,000 rows on every list was not).
 * - conversation_members: a role, muting, and the state of a direct conversation's request: the
 *   person added by someone they never talked to is 'invited' until they accept (or reply), and
 *   may block. Presence, typing and receipts wait for both sides to be 'active'.
 * - conversation_events: every change that is not a message (room created, joined, left, renamed,
 *   roles) takes the conversation's next seq like a message does, so one ordered stream replays the
 *   conversation. Messages stay in their daily partitions; the events endpoint merges the two.
 * - messages(id): edits, deletions and version 1 read receipts find a message by its id.
 * - persist_messages refuses what the sender may not write (not a member, blocked, a clientId used
 *   in another conversation) with a reason per message, instead of leaving it out silently: the
 *   sender hears of it at once.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table conversations drop constraint conversations_kind_check`.execute(db)
  await sql`update conversations set kind = 'room' where kind = 'group'`.execute(db)
  await sql`alter table conversations add constraint conversations_kind_check check (kind in ('direct', 'room'))`.execute(db)
  await sql`alter table conversations
    add column name text,
    add column topic text,
    add column visibility text check (visibility in ('public', 'private')),
    add column member_count int not null default 0,
    add column members_can_invite boolean not null default true,
    add column created_by uuid references users (id) on delete set null`.execute(db)
  await sql`update conversations c set member_count = (select count(*) from conversation_members m where m.conversation_id = c.id)`.execute(db)
  await sql`create index conversations_public_name on conversations (lower(name)) where visibility = 'public'`.execute(db)

  await sql`alter table conversation_members
    add column role text not null default 'member' check (role in ('owner', 'admin', 'member')),
    add column muted boolean not null default false,
    add column state text not null default 'active' check (state in ('active', 'invited', 'blocked'))`.execute(db)
  // The persister asks, per message, whether anyone in the conversation blocked the sender.
  await sql`create index conversation_members_blocked on conversation_members (conversation_id) where state = 'blocked'`.execute(db)

  // Set on the first successful sign-in: an address someone added but that never signed in gets an
  // invitation mail, and the answer to whoever added it is the same either way.
  await sql`alter table users add column verified_at timestamptz`.execute(db)
  await sql`update users set verified_at = created_at`.execute(db)

  await sql`
    create table conversation_events (
      conversation_id uuid not null references conversations (id) on delete cascade,
      seq bigint not null,
      kind text not null,
      actor_id uuid,
      -- The bus command that made it: a command redelivered after a crash finds its event again.
      command_id uuid,
      payload jsonb not null,
      created_at timestamptz not null default now(),
      primary key (conversation_id, seq)
    )`.execute(db)
  await sql`create index conversation_events_created on conversation_events (created_at)`.execute(db)
  await sql`create unique index conversation_events_command on conversation_events (command_id) where command_id is not null`.execute(db)
  await sql`create index messages_id on messages (id)`.execute(db)

  await sql`drop function persist_messages(jsonb, timestamptz)`.execute(db)
  await sql`
    create function persist_messages(batch jsonb, cutoff timestamptz)
    returns table (ord int, id uuid, seq bigint, created_at timestamptz, body text, duplicate boolean, refused text)
    language plpgsql as $fn$
    #variable_conflict use_column
    declare
      -- Every reach into conversations goes through this array, so the planner probes the
      -- primary key: it cannot know that the jsonb holds a handful of rows, not its guess of 100.
      conversation_ids uuid[] := array(select distinct (e->>'conversationId')::uuid from jsonb_array_elements(batch) e);
    begin
      perform 1 from conversations c where c.id = any(conversation_ids) order by c.id for update;

      return query
      with input as (
        select (e->>'ord')::int as ord, (e->>'conversationId')::uuid as conversation_id,
          (e->>'senderId')::uuid as sender_id, (e->>'clientId')::uuid as client_id,
          e->>'body' as body, (e->>'sentAt')::bigint as sent_at
        from jsonb_array_elements(batch) e
      ),
      checked as (
        select i.*,
          (select m.state from conversation_members m where m.conversation_id = i.conversation_id and m.user_id = i.sender_id) as sender_state,
          exists (select 1 from conversation_members m
            where m.conversation_id = i.conversation_id and m.user_id <> i.sender_id and m.state = 'blocked') as blocked
        from input i
      ),
      known as (
        select m.id, m.conversation_id, m.seq, m.sender_id, m.client_id, m.body, m.created_at
        from messages m
        where m.client_id = any(array(select i.client_id from input i)) and m.created_at > cutoff
      ),
      firsts as (
        select f.*, row_number() over (partition by f.conversation_id order by f.ord) as rank
        from (select distinct on (c.sender_id, c.client_id) c.* from checked c
              where c.sender_state = 'active' and not c.blocked
              order by c.sender_id, c.client_id, c.ord) f
        where not exists (select 1 from known k where k.sender_id = f.sender_id and k.client_id = f.client_id)
      ),
      fresh as (
        select f.*, c.last_seq + f.rank as seq,
          f.rank + greatest(
            coalesce(floor(extract(epoch from c.last_message_at) * 1000)::bigint, 0),
            max(f.sent_at - f.rank) over (partition by f.conversation_id order by f.rank)) as at_ms
        from firsts f join conversations c on c.id = f.conversation_id
        where c.id = any(conversation_ids)
      ),
      inserted as (
        insert into messages (id, conversation_id, seq, sender_id, client_id, body, created_at)
        select gen_random_uuid(), f.conversation_id, f.seq, f.sender_id, f.client_id, f.body,
          timestamptz 'epoch' + f.at_ms * interval '1 millisecond'
        from fresh f
        returning messages.id, messages.conversation_id, messages.seq, messages.sender_id, messages.client_id, messages.created_at
      ),
      moved as (
        update conversations c set last_seq = x.seq, last_message_at = x.created_at
        from (select distinct on (n.conversation_id) n.conversation_id, n.seq, n.created_at
              from inserted n order by n.conversation_id, n.seq desc) x
        where c.id = x.conversation_id and c.id = any(conversation_ids)
      )
      select c.ord, coalesce(n.id, k.id), coalesce(n.seq, k.seq), coalesce(n.created_at, k.created_at),
        k.body, (k.id is not null or c.ord <> f.ord),
        case
          when coalesce(n.conversation_id, k.conversation_id) = c.conversation_id then null
          when k.id is not null then 'duplicate_client_id'
          when c.sender_state is null then 'not_member'
          when c.blocked or c.sender_state = 'blocked' then 'blocked'
          when c.sender_state <> 'active' then 'forbidden'
          else 'duplicate_client_id'
        end
      from checked c
      left join fresh f on f.sender_id = c.sender_id and f.client_id = c.client_id
      left join inserted n on n.sender_id = c.sender_id and n.client_id = c.client_id
      left join known k on k.sender_id = c.sender_id and k.client_id = c.client_id
      order by c.ord;
    end
    $fn$`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop function persist_messages(jsonb, timestamptz)`.execute(db)
  await persistFunctionOfVersion4(db)
  await sql`drop index messages_id`.execute(db)
  await sql`drop table conversation_events`.execute(db)
  await sql`alter table users drop column verified_at`.execute(db)
  await sql`drop index conversation_members_blocked`.execute(db)
  await sql`alter table conversation_members drop column role, drop column muted, drop column state`.execute(db)
  await sql`drop index conversations_public_name`.execute(db)
  await sql`alter table conversations drop column name, drop column topic, drop column visibility,
    drop column member_count, drop column members_can_invite, drop column created_by`.execute(db)
  await sql`alter table conversations drop constraint conversations_kind_check`.execute(db)
  await sql`update conversations set kind = 'group' where kind = 'room'`.execute(db)
  await sql`alter table conversations add constraint conversations_kind_check check (kind in ('direct', 'group'))`.execute(db)
}
