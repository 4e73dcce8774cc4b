export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const backends = await useBackends()
  const contacts = await listContacts(backends.database.db, user.id, useConfig().retentionDays)
  return withPresence(backends, contacts)
})
