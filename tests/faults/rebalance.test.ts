import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ChatLoad, ReadinessLog } from '../support/load'
import { startMailCatcher, type MailCatcher } from '../support/mail-catcher'
import type { TestServer } from '../support/server'
import { startInstance, underLoad, wait } from './services'

const CYCLES = 4

let mail: MailCatcher
const instances: TestServer[] = []
const extras: TestServer[] = []
let load: ChatLoad

beforeAll(async () => {
  mail = await startMailCatcher()
  instances.push(...await Promise.all([startInstance(mail), startInstance(mail)]))
  load = new ChatLoad({ mail, servers: () => instances })
  await load.start()
})
afterAll(async () => {
  load?.stop()
  await Promise.all([...instances, ...extras].map(server => server.stop()))
  await mail?.close()
})

describe('consumer-group rebalances while persisting', () => {
  it(`loses and repeats nothing while a third instance joins and leaves the group ${CYCLES} times`, async () => {
    const readiness = new ReadinessLog(() => instances)
    const joins: number[] = []
    const { verdict } = await underLoad(`${CYCLES} rebalances (third instance up and down)`, { load, readiness, instances }, async () => {
      for (let cycle = 0; cycle < CYCLES; cycle++) {
        const began = Date.now()
        // Joining moves partitions to the newcomer mid-batch; a graceful stop (SIGTERM) moves them back.
        const third = await startInstance(mail)
        extras.push(third)
        joins.push(Date.now() - began)
        await wait(6000)
        await third.stop('SIGTERM')
        extras.splice(extras.indexOf(third), 1)
        await wait(3000)
      }
    }, async () => {
      await Promise.all(extras.map(server => server.stop()))
    }, { recoveryMs: 120_000 })
    console.log(`[rebalance] the third instance was ready after ${joins.map(ms => (ms / 1000).toFixed(1)).join(', ')} s`)
    expect(verdict.violations).toEqual([])
    expect(verdict.summary.lost).toBe(0)
    expect(verdict.summary.unknown).toBe(0)
    expect(verdict.summary.duplicates).toBe(0)
  }, 300_000)
})
