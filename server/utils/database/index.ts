import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { Kysely, PGliteDialect, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import type { Database } from '../../database/schema'

export interface DatabaseHandle {
  readonly db: Kysely<Database>
  readonly mode: 'postgres' | 'pglite'
  ping(): Promise<void>
  close(): Promise<void>
}

const INT8 = 20
// Counts and seq are bigint in SQL; they stay far below 2^53, and a number is what every caller wants.
pg.types.setTypeParser(INT8, value => Number(value))

export function createPostgresDatabase(url: string, max = 20): DatabaseHandle {
  const pool = new pg.Pool({ connectionString: url, max, connectionTimeoutMillis: 5000 })
  // An idle client losing its server is reported by the next query; do not crash on it.
  pool.on('error', () => {})
  return handle(new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }), 'postgres')
}

/** Embedded PostgreSQL: `dataDir` on disk, or `memory://` for a throw-away database in tests. */
export async function createPGliteDatabase(dataDir: string): Promise<DatabaseHandle> {
  const { PGlite } = await import('@electric-sql/pglite')
  // Search's trigram index (migration 0007): PGlite loads an extension only when it starts.
  const { pg_trgm } = await import('@electric-sql/pglite/contrib/pg_trgm')
  if (dataDir !== 'memory://') mkdirSync(dataDir, { recursive: true })
  // 'memory://' is PGlite's own name for no directory; with `undefined` first, it ignores the options.
  const pglite = new PGlite(dataDir, { parsers: { [INT8]: (value: string) => Number(value) }, extensions: { pg_trgm } })
  await pglite.waitReady
  return handle(new Kysely<Database>({ dialect: new PGliteDialect({ pglite }) }), 'pglite')
}

export function defaultPGliteDir(dataDir: string): string {
  return join(dataDir, 'db')
}

function handle(db: Kysely<Database>, mode: DatabaseHandle['mode']): DatabaseHandle {
  return {
    db,
    mode,
    async ping() {
      await sql`select 1`.execute(db)
    },
    async close() {
      await db.destroy()
    }
  }
}
