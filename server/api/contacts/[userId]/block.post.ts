import { getValidatedRouterParams, setResponseStatus } from 'h3'
import { ContactParams } from '#shared/types/contacts'
import { requireUser } from '../../../utils/auth'
import { useBackends } from '../../../utils/backends'
import { blockContact } from '../../../utils/contacts/contacts'
import { validated } from '../../../utils/http'

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const { userId } = await getValidatedRouterParams(event, validated(ContactParams))
  await blockContact(await useBackends(), user.id, userId)
  setResponseStatus(event, 204)
  return null
})
