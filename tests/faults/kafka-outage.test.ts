import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ChatLoad, ReadinessLog } from '../support/load'
import { startMailCatcher, type MailCatcher } from '../support/mail-catcher'
import type { TestServer } from '../support/server'
import { kafka, sampleApi, startInstance, underLoad, wait } from './services'

const OUTAGE_MS = 20_000

let mail: MailCatcher
const instances: TestServer[] = []
let load: ChatLoad

beforeAll(async () => {
  mail = await startMailCatcher()
  instances.push(...await Promise.all([startInstance(mail), startInstance(mail)]))
  load = new ChatLoad({ mail, servers: () => instances })
  await load.start()
})
afterAll(async () => {
  load?.stop()
  await kafka.start()
  await Promise.all(instances.map(server => server.stop()))
  await mail?.close()
})

describe('Kafka killed (SIGKILL) for 20 s under load', () => {
  it('loses nothing: sends are refused as unavailable and retried, readiness says 503, and the pipeline resumes by itself', async () => {
    const readiness = new ReadinessLog(() => instances)
    let during: Awaited<ReturnType<typeof sampleApi>> | undefined
    const { verdict, faultAt, liftedAt } = await underLoad('kill -9 Kafka for 20 s', { load, readiness, instances }, async () => {
      await kafka.stop()
      await wait(5000)
      during = await sampleApi(load.clients[0]!)
      await wait(OUTAGE_MS - 5000)
    }, kafka.start, { recoveryMs: 120_000 })
    console.log(`[kafka outage] mid-outage: ${during!.text}`)
    const refused = load.clients.flatMap(client => [...client.outbox.values()]).filter(sent => sent.errors.includes('unavailable')).length
    console.log(`[kafka outage] ${refused} sends were answered "unavailable" during the outage and sent again`)
    expect(verdict.violations).toEqual([])
    expect(verdict.summary.lost).toBe(0)
    expect(verdict.summary.unknown).toBe(0)
    expect(readiness.between(faultAt, liftedAt).get(503)).toBeGreaterThan(0)
    expect([...readiness.between(Date.now() - 2000, Date.now()).keys()]).toEqual([200])
  }, 300_000)
})
