export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  // retentionDays rides along so the UI states the server's real setting.
  return { user, retentionDays: useConfig().retentionDays }
})
