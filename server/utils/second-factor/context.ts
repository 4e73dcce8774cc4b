import type { H3Event } from 'h3'
import { useBackends } from '../backends'
import { useConfig } from '../config'
import { clientIp } from '../http'
import type { SecondFactorContext } from './totp'

export async function secondFactorContext(event: H3Event): Promise<SecondFactorContext> {
  const { store, database } = await useBackends()
  return { event, store, db: database.db, serverSecret: useConfig().sessionSecret, ip: clientIp(event) }
}
