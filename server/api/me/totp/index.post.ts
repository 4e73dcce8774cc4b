import type { SecondFactorSetup } from '#shared/types/me'
import { requireUser } from '../../../utils/auth'
import { secondFactorContext } from '../../../utils/second-factor/context'
import { beginSecondFactor } from '../../../utils/second-factor/totp'

export default defineEventHandler(async (event): Promise<SecondFactorSetup> => {
  const { user } = await requireUser(event)
  return beginSecondFactor(await secondFactorContext(event), user)
})
