export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const { database } = await useBackends()
  const contacts = await listContacts(database.db, user.id, useConfig().retentionDays)
  return withPresence(contacts)
})
