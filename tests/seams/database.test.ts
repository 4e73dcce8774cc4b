import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { migrateToLatest, migrationNames } from '../../server/database/migrate'
import type { DatabaseHandle } from '../../server/utils/database'
import { realServices, serviceUrls, testDatabase } from '../support/backends'
import { createPostgresDatabase } from '../../server/utils/database'

describe(`database seam (${realServices ? 'postgres' : 'pglite'})`, () => {
  let database: DatabaseHandle
  beforeAll(async () => {
    database = await testDatabase()
    await migrateToLatest(database.db)
  })
  afterAll(() => database.close())

  it('migrates to the latest schema, and a second run changes nothing', async () => {
    expect(await migrateToLatest(database.db)).toEqual([])
    const tables = await sql<{ table_name: string }>`select table_name from information_schema.tables where table_schema = 'public'`.execute(database.db)
    expect(tables.rows.map(row => row.table_name)).toContain('users')
  })

  it('stores a user with generated id and timestamps, and enforces unique email', async () => {
    const email = `db-${Date.now()}@example.org`
    const user = await database.db.insertInto('users').values({ email, display_name: 'Ada' }).returningAll().executeTakeFirstOrThrow()
    expect(user.id).toMatch(/^[0-9a-f-]{36}$/)
    expect(user.created_at).toBeInstanceOf(Date)
    expect(user.read_receipts).toBe(true)
    await expect(database.db.insertInto('users').values({ email, display_name: 'Ada again' }).execute()).rejects.toThrow()
  })

  it('returns bigint counts as numbers', async () => {
    const row = await sql<{ n: number }>`select count(*)::int8 as n from users`.execute(database.db)
    expect(typeof row.rows[0]!.n).toBe('number')
  })

  // PGlite is one process's database: only PostgreSQL has two instances to migrate at once.
  it.runIf(realServices)('lets instances that start together migrate one at a time', async () => {
    // A fresh database, so the race is real: both migrators find every migration pending.
    const name = `natter_migrate_${Date.now()}`
    await sql.raw(`create database ${name}`).execute(database.db)
    const url = serviceUrls.DATABASE_URL.replace(/\/[^/]*$/, `/${name}`)
    const instances = [createPostgresDatabase(url, 2), createPostgresDatabase(url, 2)]
    try {
      const results = await Promise.all(instances.map(instance => migrateToLatest(instance.db)))
      expect(results.flat().sort()).toEqual(migrationNames)
    }
    finally {
      await Promise.all(instances.map(instance => instance.close()))
      await sql.raw(`drop database ${name}`).execute(database.db)
    }
  })
})
