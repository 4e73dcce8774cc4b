import { UpdateMeBody } from '#shared/types/auth'

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const change = await readBodyAs(event, UpdateMeBody)
  const { database } = await useBackends()
  return { user: await updateUser(database.db, user.id, change) }
})
