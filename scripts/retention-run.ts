// `npm run retention:run`: one purge by hand, the same as the scheduled retention:purge task, on the
// database named by DATABASE_URL (or the embedded one in .data/db: stop the server first, an
// embedded database is one process's). Prints the summary as JSON.
import { migrateToLatest } from '../server/database/migrate'
import { loadConfig } from '../server/utils/config'
import { createPGliteDatabase, createPostgresDatabase, defaultPGliteDir } from '../server/utils/database'
import { purgeExpired } from '../server/utils/retention/retention'

const config = loadConfig({ ...process.env, NATTER_SESSION_SECRET: process.env.NATTER_SESSION_SECRET || 'x'.repeat(32) })
const database = config.databaseUrl ? createPostgresDatabase(config.databaseUrl, 1) : await createPGliteDatabase(defaultPGliteDir(config.dataDir))
try {
  await migrateToLatest(database.db)
  const summary = await purgeExpired(database.db, { retentionDays: config.retentionDays })
  console.log(JSON.stringify({ database: database.mode, retentionDays: config.retentionDays, ...summary }, null, 2))
}
finally {
  await database.close()
}
