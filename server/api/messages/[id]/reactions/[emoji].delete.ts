import { getValidatedRouterParams, setResponseStatus } from 'h3'
import { ReactionParams } from '#shared/types/changes'
import { requireUser } from '../../../../utils/auth'
import { useBackends } from '../../../../utils/backends'
import { validated } from '../../../../utils/http'
import { changeMessage } from '../../../../utils/messages/changes'

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const { id, emoji } = await getValidatedRouterParams(event, validated(ReactionParams), { decode: true })
  await changeMessage(await useBackends(), user.id, { action: 'react', messageId: id, emoji, on: false })
  setResponseStatus(event, 204)
  return null
})
