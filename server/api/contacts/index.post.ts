import { setResponseStatus } from 'h3'
import { OpenContactBody } from '../../../shared/types/chat'

export default defineEventHandler(async (event) => {
  const { email } = await readBodyAs(event, OpenContactBody)
  const { user } = await requireUser(event)
  const { database } = await useBackends()
  const other = await findUserByEmail(database.db, email)
  if (!other) throw fail(404, 'not_found', `No one has signed in to Natter as ${email} yet. Ask them to sign in once, then add them.`)
  if (other.id === user.id) throw fail(400, 'invalid_body', 'That is your own address.')
  const conversationId = await openDirectConversation(database.db, user.id, other.id)
  setResponseStatus(event, 201)
  return { user: { id: other.id, email: other.email, displayName: other.displayName }, conversationId }
})
