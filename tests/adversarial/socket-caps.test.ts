import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { connect } from 'node:net'
import { describe, expect, it, vi } from 'vitest'
import { onInstance, retryAfterOf, useInstances } from '../support/attack'
import type { Person } from '../support/people'
import type { TestServer } from '../support/server'
import { TestSocket, type UpgradeOptions } from '../support/socket'

// An attacker with one ordinary account opens sockets. Before, nothing capped them: one session
// held 3,000 sockets open on one instance. Now each instance holds at most 20 per person, 200 per
// address and 10,000 in all (NATTER_MAX_SOCKETS_PER_USER, NATTER_MAX_SOCKETS_PER_IP,
// NATTER_MAX_SOCKETS), and a person's socket opens are a token bucket in the store (20 at once,
// then one every 2 s) shared by every instance. Each cap is tried here with a small value on a
// server of its own; the upgrades come all at once, as an attacker sends them. That found the caps
// checked before the upgrade's awaits (session, bucket) and counted only at the open: with Redis,
// 7 of 7 parallel upgrades from one address got in where the cap was 4, 9 of 9 where the total was
// 5. An upgrade now holds its place from its last check (reserveSocket in realtime/sockets.ts).

/** Upgrades at once; the open sockets are closed at the end of the file. */
async function upgradeAll(chat: ReturnType<typeof useInstances>, attempts: Array<[Person, TestServer, UpgradeOptions?]>) {
  const results = await Promise.all(attempts.map(([person, server, options]) => TestSocket.attempt(onInstance(person, server), options)))
  for (const { socket } of results) if (socket) chat.track(socket)
  return {
    open: results.flatMap(({ socket }) => socket ? [socket] : []),
    refused: results.filter(({ status }) => status !== 101)
  }
}

/** A refusal as the contract says: 429 with Retry-After in seconds. */
function expectTooMany(refused: Array<{ status: number, headers: Record<string, string | string[] | undefined> }>, count: number) {
  expect(refused.map(({ status }) => status)).toEqual(Array.from({ length: count }, () => 429))
  for (const { headers } of refused) expect(retryAfterOf(headers)).toBeGreaterThanOrEqual(1)
}

/** An upgrade that succeeds once the server has seen an earlier socket close (its close runs after the client's). */
async function eventuallyOpens(chat: ReturnType<typeof useInstances>, person: Person, server: TestServer, options: UpgradeOptions = {}) {
  return vi.waitFor(async () => {
    const { socket, status } = await TestSocket.attempt(onInstance(person, server), options)
    if (!socket) throw new Error(`still refused: ${status}`)
    return chat.track(socket)
  }, { timeout: 5000, interval: 50 })
}

/** Sends an upgrade request and hangs up without waiting for the answer. */
async function dropUpgrade(person: Person, server: TestServer) {
  const connection = connect(server.port, '127.0.0.1')
  connection.on('error', () => {})
  await once(connection, 'connect')
  connection.end([
    'GET /ws HTTP/1.1', `Host: 127.0.0.1:${server.port}`, 'Upgrade: websocket', 'Connection: Upgrade',
    'Sec-WebSocket-Version: 13', `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    `Origin: ${server.origin}`, `Cookie: ${person.client.cookieHeader()}`, '', ''
  ].join('\r\n'))
  connection.destroy()
}

describe('sockets per person (NATTER_MAX_SOCKETS_PER_USER=3)', () => {
  const chat = useInstances({ NATTER_MAX_SOCKETS_PER_USER: '3' })

  it('lets 3 of 12 parallel upgrades in, refuses the rest with 429, and lets a new one in when one closes', async () => {
    const eve = await chat.person('eve')
    const { open, refused } = await upgradeAll(chat, Array.from({ length: 12 }, () => [eve, chat.at(0)]))
    expect(open.length).toBe(3)
    expectTooMany(refused, 9)
    // The three are real sockets: each answers, and stays open.
    for (const socket of open) await socket.roundTrip()
    expect(await TestSocket.upgradeStatus(onInstance(eve, chat.at(0)))).toBe(429)

    open[0]!.close()
    await open[0]!.closedWith()
    const again = await eventuallyOpens(chat, eve, chat.at(0))
    await again.roundTrip()
    expect(await TestSocket.upgradeStatus(onInstance(eve, chat.at(0)))).toBe(429)
    for (const socket of open.slice(1)) await socket.roundTrip()
  })

  it('gives back the place of an upgrade whose connection drops before the socket opens', async () => {
    const eve = await chat.person('eve')
    // 15 upgrades dropped as soon as they are sent: each gets past the caps while the store answers.
    await Promise.all(Array.from({ length: 15 }, () => dropUpgrade(eve, chat.at(0))))
    const sockets = await Promise.all(Array.from({ length: 3 }, () => eventuallyOpens(chat, eve, chat.at(0))))
    for (const socket of sockets) await socket.roundTrip()
    expect(await TestSocket.upgradeStatus(onInstance(eve, chat.at(0)))).toBe(429)
  })

  it('counts per instance: the same person opens their 3 on another instance too', async () => {
    const eve = await chat.person('eve')
    await upgradeAll(chat, Array.from({ length: 3 }, () => [eve, chat.at(0)]))
    const { open, refused } = await upgradeAll(chat, Array.from({ length: 5 }, () => [eve, chat.other]))
    // Under `unit` the other instance is the same one: nothing more gets in.
    expect(open.length).toBe(chat.servers.length > 1 ? 3 : 0)
    expectTooMany(refused, 5 - open.length)
  })
})

describe('sockets per address (NATTER_MAX_SOCKETS_PER_IP=4, behind a trusted proxy)', () => {
  const chat = useInstances({ NATTER_MAX_SOCKETS_PER_USER: '10', NATTER_MAX_SOCKETS_PER_IP: '4' })
  const from = (ip: string) => ({ headers: { 'x-forwarded-for': ip } })

  it('counts the address the proxy forwarded: 4 of 7 people behind one address get in, others are not held back', async () => {
    const people = await Promise.all(Array.from({ length: 7 }, (_, i) => chat.person(`flat${i}`)))
    const shared = '192.0.2.10'
    const { open, refused } = await upgradeAll(chat, people.map(person => [person, chat.at(0), from(shared)]))
    expect(open.length).toBe(4)
    expectTooMany(refused, 3)
    for (const socket of open) await socket.roundTrip()
    // A hop the client wrote itself, before the proxy's, changes nothing: the proxy's (last) one counts.
    expect(await TestSocket.upgradeStatus(onInstance(people[6]!, chat.at(0)), from(`203.0.113.7, ${shared}`))).toBe(429)
    // Someone behind another address is not held back.
    const { open: elsewhere } = await upgradeAll(chat, [[people[6]!, chat.at(0), from('192.0.2.11')]])
    expect(elsewhere.length).toBe(1)

    open[0]!.close()
    await open[0]!.closedWith()
    await (await eventuallyOpens(chat, people[5]!, chat.at(0), from(shared))).roundTrip()
    expect(await TestSocket.upgradeStatus(onInstance(people[4]!, chat.at(0)), from(shared))).toBe(429)
  })
})

describe('sockets in all (NATTER_MAX_SOCKETS=5)', () => {
  const chat = useInstances({ NATTER_MAX_SOCKETS: '5' })

  it('lets 5 of 9 parallel upgrades in, refuses the rest with 429, and lets a new one in when one closes', async () => {
    const people = await Promise.all(Array.from({ length: 9 }, (_, i) => chat.person(`crowd${i}`)))
    const { open, refused } = await upgradeAll(chat, people.map(person => [person, chat.at(0)]))
    expect(open.length).toBe(5)
    expectTooMany(refused, 4)
    for (const socket of open) await socket.roundTrip()

    open[0]!.close()
    await open[0]!.closedWith()
    await (await eventuallyOpens(chat, people[8]!, chat.at(0))).roundTrip()
    expect(await TestSocket.upgradeStatus(onInstance(people[7]!, chat.at(0)))).toBe(429)
  })
})

describe('socket opens per person (20 at once, then one every 2 s, across instances)', () => {
  const chat = useInstances()

  it('refuses the 21st open in a burst, spread over the instances, until Retry-After has passed', async () => {
    const eve = await chat.person('eve')
    const statuses: number[] = []
    let refusal: Awaited<ReturnType<typeof TestSocket.attempt>> | undefined
    // Opened and closed one after the other, alternating instances: never more than one open.
    for (let i = 0; i < 25; i++) {
      const attempt = await TestSocket.attempt(onInstance(eve, chat.at(i)))
      statuses.push(attempt.status)
      if (attempt.socket) {
        attempt.socket.close()
        await attempt.socket.closedWith()
      }
      else refusal ??= attempt
    }
    // A slow run may see one token come back (one every 2 s).
    const opened = statuses.filter(status => status === 101).length
    expect(opened).toBeGreaterThanOrEqual(20)
    expect(opened).toBeLessThanOrEqual(21)
    expect(statuses.slice(0, 20)).toEqual(Array.from({ length: 20 }, () => 101))
    expect(statuses.filter(status => status !== 101).every(status => status === 429)).toBe(true)
    const retryAfter = retryAfterOf(refusal!.headers)
    expect(retryAfter).toBeGreaterThanOrEqual(1)
    expect(retryAfter).toBeLessThanOrEqual(2)

    // Waiting as told is enough for one more, not two.
    await new Promise(resolve => setTimeout(resolve, retryAfter * 1000))
    const next = await TestSocket.attempt(onInstance(eve, chat.at(1)))
    expect(next.status).toBe(101)
    chat.track(next.socket!)
    expect(await TestSocket.upgradeStatus(onInstance(eve, chat.at(0)))).toBe(429)
  })
})
