import { ConfirmSecondFactorBody } from '#shared/types/me'
import { requireUser } from '../../../utils/auth'
import { readBodyAs } from '../../../utils/http'
import { secondFactorContext } from '../../../utils/second-factor/context'
import { confirmSecondFactor } from '../../../utils/second-factor/totp'

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const { code } = await readBodyAs(event, ConfirmSecondFactorBody)
  // The only time the recovery codes are shown: the server keeps hashes of them.
  return { recoveryCodes: await confirmSecondFactor(await secondFactorContext(event), user.id, code) }
})
