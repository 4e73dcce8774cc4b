import { sql, type Kysely } from 'kysely'

/**
 * The persister's transaction as one function, so storing a batch is one round trip instead of
 * six (BEGIN, lock, lookup, insert, update, COMMIT). The benchmark found those round trips, each a
 * loopback write that wakes PostgreSQL, to be most of the server's CPU per message.
 *
 * The order of work is what makes it safe with any number of persisters: first the counter rows of
 * the batch's conversations are locked, in id order (no deadlock between two batches); only then,
 * in a second statement with a fresh snapshot, are the batch's clientIds looked up. A repeat of a
 * message belongs to the same conversation, so it waits for the first copy's commit and finds it.
 *
 * One row per input element that is stored or found again, in input order:
 * - duplicate is false for the first copy of a new message, true for a resend (body then holds
 *   the stored body; otherwise it is null and the caller has it);
 * - elements that are dropped (their conversation is gone, or their clientId was already used by
 *   the same sender in another conversation) have no row.
 * Times: each new message is at least 1 ms after the previous one of its conversation, so paging
 * by time agrees with seq: at_i = max(sent_i, at_(i-1) + 1) = i + max(last, max_j<=i(sent_j - j)).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // Every stored batch rewrites its conversations' counter rows: room on each page lets those
  // be HOT updates (no index entry, pruned in place) instead of bloating the table.
  await sql`alter table conversations set (fillfactor = 70)`.execute(db)
  await sql`
    create or replace function persist_messages(batch jsonb, cutoff timestamptz)
    returns table (ord int, id uuid, seq bigint, created_at timestamptz, body text, duplicate boolean)
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
      known as (
        select m.id, m.conversation_id, m.seq, m.sender_id, m.client_id, m.body, m.created_at
        from messages m
        -- An array, not IN (subquery): the planner then probes each partition's client_id index
        -- instead of hashing the input and scanning every row of the week.
        where m.client_id = any(array(select i.client_id from input i)) and m.created_at > cutoff
      ),
      firsts as (
        select f.*, row_number() over (partition by f.conversation_id order by f.ord) as rank
        from (select distinct on (i.sender_id, i.client_id) i.* from input i order by i.sender_id, i.client_id, i.ord) f
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
      select i.ord, coalesce(n.id, k.id), coalesce(n.seq, k.seq), coalesce(n.created_at, k.created_at),
        k.body, (k.id is not null or i.ord <> f.ord)
      from input i
      left join fresh f on f.sender_id = i.sender_id and f.client_id = i.client_id
      left join inserted n on n.sender_id = i.sender_id and n.client_id = i.client_id
      left join known k on k.sender_id = i.sender_id and k.client_id = i.client_id
      where coalesce(n.conversation_id, k.conversation_id) = i.conversation_id
      order by i.ord;
    end
    $fn$`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table conversations reset (fillfactor)`.execute(db)
  await sql`drop function persist_messages(jsonb, timestamptz)`.execute(db)
}
