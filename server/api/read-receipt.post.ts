import { setResponseStatus } from 'h3'
import { ReadReceiptBody } from '#shared/types/receipts'
import { requireUser } from '../utils/auth'
import { useBackends } from '../utils/backends'
import { readBodyAs } from '../utils/http'
import { markReadOverRest } from '../utils/receipts/receipts'

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const { messageIds } = await readBodyAs(event, ReadReceiptBody)
  await markReadOverRest(event, await useBackends(), user.id, messageIds)
  setResponseStatus(event, 204)
  return null
})
