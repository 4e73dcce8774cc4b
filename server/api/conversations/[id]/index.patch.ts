import { getValidatedRouterParams } from 'h3'
import { ConversationIdParams, UpdateConversationBody } from '#shared/types/conversations'
import { requireUser } from '../../../utils/auth'
import { useBackends } from '../../../utils/backends'
import { updateConversation } from '../../../utils/conversations/rooms'
import { readBodyAs, validated } from '../../../utils/http'

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const { id } = await getValidatedRouterParams(event, validated(ConversationIdParams))
  const change = await readBodyAs(event, UpdateConversationBody)
  return { conversation: await updateConversation(await useBackends(), user, id, change) }
})
