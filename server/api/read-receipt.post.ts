import { setResponseStatus } from 'h3'
import { ReadReceiptBody } from '../../shared/types/chat'

export default defineEventHandler(async (event) => {
  const { messageIds } = await readBodyAs(event, ReadReceiptBody)
  const { user } = await requireUser(event)
  await markRead(await useBackends(), user.id, messageIds, useConfig().retentionDays)
  setResponseStatus(event, 204)
  return null
})
