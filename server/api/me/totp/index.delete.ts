import { setResponseStatus } from 'h3'
import { SecondFactorCodeBody } from '#shared/types/me'
import { requireUser } from '../../../utils/auth'
import { readBodyAs } from '../../../utils/http'
import { secondFactorContext } from '../../../utils/second-factor/context'
import { removeSecondFactor } from '../../../utils/second-factor/totp'

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const { code } = await readBodyAs(event, SecondFactorCodeBody)
  await removeSecondFactor(await secondFactorContext(event), user.id, code)
  setResponseStatus(event, 204)
  return null
})
