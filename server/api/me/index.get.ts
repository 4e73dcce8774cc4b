import { secondFactorOn } from '../../utils/second-factor/totp'

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const { database } = await useBackends()
  // retentionDays rides along so the UI states the server's real setting; totp, whether
  // two-step sign-in is on, for the account settings.
  return { user, retentionDays: useConfig().retentionDays, totp: await secondFactorOn(database.db, user.id) }
})
