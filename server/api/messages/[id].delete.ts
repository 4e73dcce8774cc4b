import { getValidatedRouterParams, setResponseStatus } from 'h3'
import { MessageParams } from '#shared/types/changes'
import { requireUser } from '../../utils/auth'
import { useBackends } from '../../utils/backends'
import { validated } from '../../utils/http'
import { changeMessage } from '../../utils/messages/changes'

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const { id } = await getValidatedRouterParams(event, validated(MessageParams))
  await changeMessage(await useBackends(), user.id, { action: 'delete', messageId: id })
  setResponseStatus(event, 204)
  return null
})
