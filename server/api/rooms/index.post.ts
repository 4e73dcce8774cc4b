import { setResponseStatus } from 'h3'
import { CreateRoomBody } from '#shared/types/conversations'
import { requireUser } from '../../utils/auth'
import { useBackends } from '../../utils/backends'
import { createRoom } from '../../utils/conversations/rooms'
import { readBodyAs } from '../../utils/http'

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const body = await readBodyAs(event, CreateRoomBody)
  const conversation = await createRoom(event, await useBackends(), user, body)
  setResponseStatus(event, 201)
  return { conversation }
})
