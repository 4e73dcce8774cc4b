import { useBackends } from '../../utils/backends'
import { useConfig } from '../../utils/config'
import { purgeExpired } from '../../utils/retention/retention'

// Scheduled by nitro.scheduledTasks in nuxt.config.ts (NATTER_RETENTION_CRON, fixed at build time).
// Every replica fires it; the advisory lock in purgeExpired lets one of them do the work.
export default defineTask({
  meta: {
    name: 'retention:purge',
    description: 'Drops expired message partitions, deletes expired boundary rows and idempotency keys, creates partitions ahead'
  },
  async run() {
    const { database } = await useBackends()
    const result = await purgeExpired(database.db, { retentionDays: useConfig().retentionDays })
    return { result }
  }
})
