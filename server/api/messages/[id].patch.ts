import { getValidatedRouterParams } from 'h3'
import { EditMessageBody, MessageParams } from '#shared/types/changes'
import { requireUser } from '../../utils/auth'
import { useBackends } from '../../utils/backends'
import { readBodyAs, validated } from '../../utils/http'
import { changeMessage } from '../../utils/messages/changes'
import { messageById } from '../../utils/messages/history'

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const { id } = await getValidatedRouterParams(event, validated(MessageParams))
  const { body } = await readBodyAs(event, EditMessageBody)
  const backends = await useBackends()
  await changeMessage(backends, user.id, { action: 'edit', messageId: id, body })
  return { message: await messageById(backends.database.db, user.id, id) }
})
