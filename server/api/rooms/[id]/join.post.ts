import { getValidatedRouterParams } from 'h3'
import { ConversationIdParams } from '#shared/types/conversations'
import { requireUser } from '../../../utils/auth'
import { useBackends } from '../../../utils/backends'
import { joinRoom } from '../../../utils/conversations/rooms'
import { validated } from '../../../utils/http'

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const { id } = await getValidatedRouterParams(event, validated(ConversationIdParams))
  return { conversation: await joinRoom(await useBackends(), user, id) }
})
