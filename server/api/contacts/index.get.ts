import { requireUser } from '../../utils/auth'
import { useBackends } from '../../utils/backends'
import { listContacts } from '../../utils/contacts/contacts'

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  return listContacts(await useBackends(), user.id)
})
