import { setResponseStatus } from 'h3'
import { OpenContactBody } from '#shared/types/contacts'
import { requireUser } from '../../utils/auth'
import { useBackends } from '../../utils/backends'
import { addContact } from '../../utils/contacts/contacts'
import { readBodyAs } from '../../utils/http'

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const { email } = await readBodyAs(event, OpenContactBody)
  const added = await addContact(event, await useBackends(), user, email)
  setResponseStatus(event, 201)
  return added
})
