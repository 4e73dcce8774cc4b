import { requireUser } from '../../utils/auth'
import { useBackends } from '../../utils/backends'
import { listConversations } from '../../utils/conversations/conversations'

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  return listConversations(await useBackends(), user.id)
})
