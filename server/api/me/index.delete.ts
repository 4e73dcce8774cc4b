import { setResponseStatus } from 'h3'
import { DeleteMeBody } from '#shared/types/me'
import { clearSessionCookie, requireUser } from '../../utils/auth'
import { useBackends } from '../../utils/backends'
import { fail, readBodyAs } from '../../utils/http'
import { eraseAccount } from '../../utils/own-data/erase'

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const { email } = await readBodyAs(event, DeleteMeBody)
  // Typing one's own address again is the confirmation: anything else changes nothing.
  if (email !== user.email) throw fail(400, 'invalid_body', 'That is not the address of this account. Type your own address to delete it.')
  await eraseAccount(await useBackends(), user.id)
  clearSessionCookie(event)
  setResponseStatus(event, 204)
  return null
})
