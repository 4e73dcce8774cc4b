import { getValidatedRouterParams, setResponseStatus } from 'h3'
import { ConversationIdParams } from '#shared/types/conversations'
import { requireUser } from '../../../utils/auth'
import { useBackends } from '../../../utils/backends'
import { leaveRoom } from '../../../utils/conversations/rooms'
import { validated } from '../../../utils/http'

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const { id } = await getValidatedRouterParams(event, validated(ConversationIdParams))
  await leaveRoom(await useBackends(), user, id)
  setResponseStatus(event, 204)
  return null
})
