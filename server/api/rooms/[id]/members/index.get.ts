import { getValidatedQuery, getValidatedRouterParams } from 'h3'
import { ConversationIdParams, MembersQuery } from '#shared/types/conversations'
import { requireUser } from '../../../../utils/auth'
import { useBackends } from '../../../../utils/backends'
import { listMembers } from '../../../../utils/conversations/conversations'
import { validated } from '../../../../utils/http'

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const { id } = await getValidatedRouterParams(event, validated(ConversationIdParams))
  const query = await getValidatedQuery(event, validated(MembersQuery))
  return listMembers(await useBackends(), user.id, id, query)
})
