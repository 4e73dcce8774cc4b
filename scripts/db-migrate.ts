// `npm run db:migrate`: brings the database named by DATABASE_URL (or the embedded one in .data/db)
// to the latest schema. The server does the same at start; this is for deploy pipelines and checks.
import { migrateToLatest } from '../server/database/migrate'
import { createPGliteDatabase, createPostgresDatabase, defaultPGliteDir } from '../server/utils/database'
import { loadConfig } from '../server/utils/config'

const config = loadConfig({ ...process.env, NATTER_SESSION_SECRET: process.env.NATTER_SESSION_SECRET || 'x'.repeat(32) })
const database = config.databaseUrl ? createPostgresDatabase(config.databaseUrl, 1) : await createPGliteDatabase(defaultPGliteDir(config.dataDir))
try {
  const applied = await migrateToLatest(database.db)
  console.log(applied.length ? `database (${database.mode}): applied ${applied.join(', ')}` : `database (${database.mode}): already up to date`)
}
finally {
  await database.close()
}
