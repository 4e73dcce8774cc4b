import { getValidatedQuery } from 'h3'
import { RoomsQuery } from '#shared/types/conversations'
import { requireUser } from '../../utils/auth'
import { useBackends } from '../../utils/backends'
import { browseRooms } from '../../utils/conversations/rooms'
import { validated } from '../../utils/http'

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const { q } = await getValidatedQuery(event, validated(RoomsQuery))
  return browseRooms(await useBackends(), user, q || undefined)
})
