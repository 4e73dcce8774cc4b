import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ChatLoad, ReadinessLog } from '../support/load'
import { startMailCatcher, type MailCatcher } from '../support/mail-catcher'
import type { TestServer } from '../support/server'
import { report, startInstance, wait } from './services'

let mail: MailCatcher
const instances: TestServer[] = []
const everyInstance: TestServer[] = []
let load: ChatLoad

beforeAll(async () => {
  mail = await startMailCatcher()
  everyInstance.push(...await Promise.all([startInstance(mail), startInstance(mail)]))
  instances.push(...everyInstance)
  load = new ChatLoad({ mail, servers: () => instances })
  await load.start()
})
afterAll(async () => {
  load?.stop()
  await Promise.all(everyInstance.map(server => server.stop()))
  await mail?.close()
})

describe('kill -9 of one app instance mid-stream', () => {
  it('loses nothing: its clients move to the other instance, resend and resync; the restarted instance takes clients again', async () => {
    const readiness = new ReadinessLog(() => everyInstance)
    load.startSending()
    readiness.start()
    await wait(5000)

    const victim = instances[0]!
    const killedAt = Date.now()
    victim.process.kill('SIGKILL')
    instances.splice(instances.indexOf(victim), 1)
    // The survivors serve everyone, without a manual step: each client gets an ack for a message written after the kill.
    const failover = await load.recovered(load.probe(), killedAt, 90_000)
    const moved = load.clients.filter(client => client.base !== victim.url).length

    // Back up on a new port; clients that lose their socket from now on may land on it.
    const restarted = await startInstance(mail)
    everyInstance.push(restarted)
    instances.unshift(restarted)
    const liftedAt = Date.now()
    for (const client of load.clients.slice(0, 4)) client.cut()
    const rejoin = await load.recovered(load.probe(), liftedAt, 60_000)
    await wait(3000)
    await load.drain(60_000)
    readiness.stop()

    const verdict = await load.verify('kill -9 of an app instance', failover, `killed one: ${readiness.describe(killedAt, liftedAt)}`)
    report(verdict)
    console.log(`[instance crash] ${moved}/${load.clients.length} clients on a live instance after the failover; every client served again ${failover.toFixed(1)} s after the kill; `
      + `${rejoin.toFixed(1)} s to serve everyone after the restart; clients on the restarted instance: ${load.clients.filter(client => client.base === restarted.url).length}`)
    expect(verdict.violations).toEqual([])
    expect(verdict.summary.lost).toBe(0)
    expect(verdict.summary.unknown).toBe(0)
    // The surviving instance stayed ready throughout; the dead one did not answer.
    const survivor = instances.find(server => server !== restarted)!
    expect(readiness.answers.filter(answer => answer.url === survivor.url && answer.at >= killedAt && answer.at <= liftedAt).every(answer => answer.status === 200)).toBe(true)
    expect(readiness.answers.some(answer => answer.url === victim.url && answer.at > killedAt && answer.status === 0)).toBe(true)
  }, 300_000)
})
