import { getValidatedRouterParams, setResponseStatus } from 'h3'
import { MemberParams } from '#shared/types/conversations'
import { requireUser } from '../../../../utils/auth'
import { useBackends } from '../../../../utils/backends'
import { removeMember } from '../../../../utils/conversations/rooms'
import { validated } from '../../../../utils/http'

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const { id, userId } = await getValidatedRouterParams(event, validated(MemberParams))
  await removeMember(await useBackends(), user, id, userId)
  setResponseStatus(event, 204)
  return null
})
