import { getValidatedRouterParams, setResponseStatus } from 'h3'
import { AddMemberBody, ConversationIdParams } from '#shared/types/conversations'
import { requireUser } from '../../../../utils/auth'
import { useBackends } from '../../../../utils/backends'
import { addMember } from '../../../../utils/conversations/rooms'
import { readBodyAs, validated } from '../../../../utils/http'

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const { id } = await getValidatedRouterParams(event, validated(ConversationIdParams))
  const { email } = await readBodyAs(event, AddMemberBody)
  const member = await addMember(event, await useBackends(), user, id, email)
  setResponseStatus(event, 201)
  return { member }
})
