import { getValidatedRouterParams } from 'h3'
import { MemberParams, UpdateMemberBody } from '#shared/types/conversations'
import { requireUser } from '../../../../utils/auth'
import { useBackends } from '../../../../utils/backends'
import { setMemberRole } from '../../../../utils/conversations/rooms'
import { readBodyAs, validated } from '../../../../utils/http'

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const { id, userId } = await getValidatedRouterParams(event, validated(MemberParams))
  const { role } = await readBodyAs(event, UpdateMemberBody)
  return { member: await setMemberRole(await useBackends(), user, id, userId, role) }
})
