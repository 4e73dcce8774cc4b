import { sql, type Kysely } from 'kysely'

/**
 * The scripts written without spaces between words (Japanese kana, CJK ideographs, Thai, Lao,
 * Khmer, Myanmar): the text-search parser takes a whole run of them as one word, so they are found
 * by substring through a trigram index instead. As a PostgreSQL regular expression (ARE escapes);
 * search.ts repeats this exact text in its queries, so the planner sees they imply the partial
 * index's predicate.
 */
export const UNSPACED_SCRIPTS = '[\\u0e00-\\u0eff\\u1000-\\u109f\\u1780-\\u17ff\\u3040-\\u30ff\\u3400-\\u4dbf\\u4e00-\\u9fff\\uf900-\\ufaff\\uff66-\\uff9f]'

/**
 * Search (issue 16).
 *
 * - messages.search: the body's words as a tsvector, a stored generated column, so the database
 *   keeps it through every insert (the persist function needs no change), edit and deletion (a
 *   deleted message's body is empty, so it has no words). PostgreSQL gives each partition, the
 *   future ones too, the parent's generated column. The 'simple' configuration lowercases and
 *   does not stem: a word is found in English, German, French, Spanish and Russian text as it was
 *   written, never changed into a stem that another language's word happens to share.
 * - A GIN index on it, created on the parent: every partition gets its own, current and future,
 *   and retention drops each with its day.
 * - A trigram index on the body of the messages that contain an unspaced script only, so Latin
 *   and Cyrillic chatter (most of it) pays nothing for it on insert and takes no room in it.
 *
 * Adding a stored column rewrites each partition once; on a large installation this migration
 * takes as long as copying the messages.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create extension if not exists pg_trgm`.execute(db)
  await sql`alter table messages add column search tsvector generated always as (to_tsvector('simple'::regconfig, body)) stored`.execute(db)
  await sql`create index messages_search on messages using gin (search)`.execute(db)
  await sql`create index messages_body_trigrams on messages using gin (body gin_trgm_ops) where body ~ ${sql.lit(UNSPACED_SCRIPTS)}`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index messages_body_trigrams`.execute(db)
  await sql`drop index messages_search`.execute(db)
  await sql`alter table messages drop column search`.execute(db)
}
