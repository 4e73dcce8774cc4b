import type { Kysely } from 'kysely'
import type { Database } from './schema'
import { Migrator, type Migration } from 'kysely/migration'
import * as m0001 from './migrations/0001_users'
import * as m0002 from './migrations/0002_conversations'
import * as m0003 from './migrations/0003_keys_in_partitions'
import * as m0004 from './migrations/0004_persist_function'
import * as m0005 from './migrations/0005_rooms'
import * as m0006 from './migrations/0006_message_changes'
import * as m0007 from './migrations/0007_search'
import * as m0008 from './migrations/0008_own_data'

// Static imports, not a folder provider: the production bundle has no migrations folder to read.
const migrations: Record<string, Migration> = {
  '0001_users': m0001,
  '0002_conversations': m0002,
  '0003_keys_in_partitions': m0003,
  '0004_persist_function': m0004,
  '0005_rooms': m0005,
  '0006_message_changes': m0006,
  '0007_search': m0007,
  '0008_own_data': m0008
}

export const migrationNames = Object.keys(migrations)

/**
 * Brings the schema up to date. Kysely's PostgreSQL adapter holds a session advisory lock for the
 * whole run, so instances starting together migrate one after the other; PGlite has one connection.
 */
export async function migrateToLatest(db: Kysely<Database>): Promise<string[]> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } })
  const { error, results } = await migrator.migrateToLatest()
  if (error) throw error instanceof Error ? error : new Error(String(error))
  return (results ?? []).filter(result => result.status === 'Success').map(result => result.migrationName)
}
