import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ChatLoad, ReadinessLog } from '../support/load'
import { startMailCatcher, type MailCatcher } from '../support/mail-catcher'
import type { TestServer } from '../support/server'
import { postgres, sampleApi, startInstance, underLoad, wait } from './services'

const OUTAGE_MS = 30_000

let mail: MailCatcher
const instances: TestServer[] = []
let load: ChatLoad
// What a person met mid-outage: checked on its own below, so a wrong answer there does not hide the load's result.
let during: Awaited<ReturnType<typeof sampleApi>> | undefined

beforeAll(async () => {
  mail = await startMailCatcher()
  instances.push(...await Promise.all([startInstance(mail), startInstance(mail)]))
  load = new ChatLoad({ mail, servers: () => instances })
  await load.start()
})
afterAll(async () => {
  load?.stop()
  await postgres.start()
  await Promise.all(instances.map(server => server.stop()))
  await mail?.close()
})

describe('PostgreSQL stopped for 30 s under load', () => {
  it('loses nothing: messages wait on the bus and are stored once it is back; readiness says 503 meanwhile', async () => {
    const readiness = new ReadinessLog(() => instances)
    const { verdict, faultAt, liftedAt } = await underLoad('PostgreSQL stopped for 30 s', { load, readiness, instances }, async () => {
      await postgres.stop()
      await wait(5000)
      during = await sampleApi(load.clients[0]!)
      await wait(OUTAGE_MS - 5000)
    }, postgres.start, { recoveryMs: 120_000 })
    console.log(`[postgres outage] mid-outage: ${during!.text}`)
    expect(verdict.violations).toEqual([])
    expect(verdict.summary.lost).toBe(0)
    expect(verdict.summary.unknown).toBe(0)
    expect(readiness.between(faultAt, liftedAt).get(503)).toBeGreaterThan(0)
    expect([...readiness.between(Date.now() - 2000, Date.now()).keys()]).toEqual([200])
  }, 300_000)

  it('answers REST requests during the outage with 503 unavailable and Retry-After, and a new socket with 503', () => {
    expect(during, 'the load test above ran').toBeDefined()
    expect(during!.upgrade).toBe(503)
    // The database is away, not the request wrong: 503 with a code and Retry-After says "try again".
    for (const answer of [during!.me, during!.resync]) {
      expect(answer.json, during!.text).toMatchObject({ statusCode: 503, message: expect.any(String), data: { code: 'unavailable' } })
      expect(answer.retryAfter, during!.text).toBe('5')
    }
  })
})
