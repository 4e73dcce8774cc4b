import { randomUUID } from 'node:crypto'
import { describe, expect, it, vi } from 'vitest'
import { FRAME_LIMITS } from '../../server/utils/gateway/limits'
import { errorOf, framesOf, onInstance, pingMs, presenceOf, useInstances } from '../support/attack'
import { pairUp, type Person } from '../support/people'
import { TestSocket, type Frame } from '../support/socket'

// One ordinary account against the per-person limits of the socket path. Before: the send limit
// (10 a second) lived in the instance's memory and was forgotten when the person's last socket
// closed, so reconnecting between bursts sent ~1,100 messages a second; read.update had no limit
// and cost a query each (2,000 frames pushed a bystander's ping from 1.6 ms to 1.4 s); typing and
// presence changes were relayed unthrottled. Now every frame kind has a token bucket per person in
// the store (server/utils/gateway/limits.ts), held across reconnects and instances, typing starts
// are relayed at most every 2 s, and socket opens are a bucket too. Under `services` the attacks
// are spread over two instances sharing Redis.

const chat = useInstances()

/** What a bucket lets through in `ms` from full: its burst, what it refilled, and one for rounding. */
const allowance = (limit: { perSecond: number, burst: number }, ms: number) => limit.burst + Math.floor(limit.perSecond * ms / 1000) + 1

/** Sends `count` chat.send frames at once; resolves with the answer to each (ack or error). */
async function sendBurst(socket: TestSocket, to: string, count: number): Promise<Frame[]> {
  const clientIds = Array.from({ length: count }, () => randomUUID())
  const from = socket.frames.length
  for (const clientId of clientIds) socket.send({ type: 'chat.send', to, body: 'burst', clientId })
  const answerOf = (clientId: string) => socket.frames.slice(from).find(frame => (frame.type === 'chat.ack' && frame.clientId === clientId) || (frame.type === 'error' && frame.ref === clientId))
  await socket.next(() => clientIds.every(answerOf), { from, timeout: 20_000 })
  return clientIds.map(clientId => answerOf(clientId)!)
}

function expectRefusals(answers: Frame[]) {
  for (const answer of answers.filter(frame => frame.type === 'error')) {
    expect(answer).toMatchObject({ code: 'rate_limited', retryAfterMs: expect.any(Number) })
  }
}

describe('the send limit holds across reconnects and instances', () => {
  it('does not give the tokens back when the socket closes and a new one opens', async () => {
    const { a, b } = await pairOf('ada', 'bob')
    const started = performance.now()
    const first = await chat.open(a)
    const before = await sendBurst(first, b.id, 30)
    first.close()
    await first.closedWith()
    const second = await chat.open(a)
    const after = await sendBurst(second, b.id, 30)
    const elapsed = performance.now() - started

    const acked = (answers: Frame[]) => answers.filter(frame => frame.type === 'chat.ack').length
    console.log(`[rate-limits] sends: ${acked(before)} of 30, then ${acked(after)} of 30 after reconnecting, in ${Math.round(elapsed)} ms`)
    expectRefusals([...before, ...after])
    expect(acked(before)).toBeGreaterThanOrEqual(FRAME_LIMITS.send.burst)
    expect(acked(before) + acked(after)).toBeLessThanOrEqual(allowance(FRAME_LIMITS.send, elapsed))
  })

  it('holds one person to one bucket when their sends are split over the instances', async () => {
    const { a, b } = await pairOf('ada', 'bob')
    const sockets = await Promise.all(chat.servers.map(server => chat.open(a, server)))
    const started = performance.now()
    const answers = (await Promise.all(sockets.map(socket => sendBurst(socket, b.id, 30)))).flat()
    const elapsed = performance.now() - started

    const acked = answers.filter(frame => frame.type === 'chat.ack').length
    console.log(`[rate-limits] sends split over ${sockets.length} instance(s): ${acked} of ${answers.length} in ${Math.round(elapsed)} ms`)
    expectRefusals(answers)
    expect(acked).toBeGreaterThanOrEqual(FRAME_LIMITS.send.burst)
    expect(acked).toBeLessThanOrEqual(allowance(FRAME_LIMITS.send, elapsed))
  })
})

describe('read.update', () => {
  it('refuses 2,000 frames past the limit from memory: few database updates, a bystander\'s ping stays fast', async () => {
    // A room with a long history, so that every accepted read.update moves the reader's watermark.
    const reader = await chat.person('reader')
    const writers = await Promise.all(Array.from({ length: 5 }, (_, i) => chat.person(`writer${i}`)))
    const created = await reader.client.post('/api/rooms', { name: 'Busy', visibility: 'private', members: writers.map(writer => writer.email) })
    expect(created.status).toBe(201)
    const roomId = created.body.conversation.id as string
    await Promise.all(writers.map(async (writer) => {
      const socket = await chat.open(writer)
      const from = socket.frames.length
      for (let i = 0; i < FRAME_LIMITS.send.burst; i++) socket.send({ type: 'chat.send', conversationId: roomId, body: `line ${i}`, clientId: randomUUID() })
      await socket.next(() => framesOf(socket, frame => frame.type === 'chat.ack', from).length === FRAME_LIMITS.send.burst, { from })
    }))
    const lastSeq = (await reader.client.get(`/api/conversations/${roomId}`)).body.conversation.lastSeq as number
    expect(lastSeq).toBeGreaterThan(100)

    // The reader's other device, on another instance under `services`; a bystander on the attacked one.
    const device = await chat.open(reader, chat.other)
    const { a: bystander } = await pairOf('by', 'stander')
    const pinger = await chat.open(bystander)
    const quiet: number[] = []
    for (let i = 0; i < 20; i++) quiet.push(await pingMs(pinger))

    // Four sockets of the reader, spread over the instances, 500 frames each in waves of 50. Frame
    // k says "read up to k": taken one by one, each of the first hundred would move the watermark.
    const floods = await Promise.all(Array.from({ length: 4 }, (_, i) => chat.open(reader, chat.at(i))))
    let flooding = true
    const pings: number[] = []
    const pinging = (async () => {
      while (flooding) pings.push(await pingMs(pinger))
    })()
    const started = performance.now()
    const answers = await Promise.all(floods.map(async (socket, i) => {
      const from = socket.frames.length
      await inWaves(socket, Array.from({ length: 500 }, (_, k) => ({ type: 'read.update', conversationId: roomId, seq: 4 * k + i + 1 })))
      return framesOf(socket, frame => frame.type === 'error', from)
    }))
    const elapsed = performance.now() - started
    flooding = false
    await pinging

    const refused = answers.flat()
    const limit = allowance(FRAME_LIMITS.read, elapsed)
    expect(refused.filter(frame => !errorOf('rate_limited')(frame))).toEqual([])
    expect(refused.length).toBeGreaterThanOrEqual(2000 - limit)
    // Every watermark that moved was told to the reader's other devices: that is what the database wrote.
    const readSeq = (await reader.client.get(`/api/conversations/${roomId}`)).body.conversation.readSeq as number
    await device.next(frame => frame.type === 'read.update' && frame.seq === readSeq)
    const moved = framesOf(device, frame => frame.type === 'read.update' && frame.conversationId === roomId).length
    const sorted = [...pings].sort((x, y) => x - y)
    const median = (values: number[]) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)]!
    console.log(`[rate-limits] read.update: ${2000 - refused.length} of 2,000 taken in ${Math.round(elapsed)} ms, ${moved} watermark moves; bystander ping ${median(quiet).toFixed(1)} ms quiet, ${median(pings).toFixed(1)} ms median and ${sorted.at(-1)!.toFixed(1)} ms at most during the flood (${pings.length} pings)`)
    expect(moved).toBeGreaterThanOrEqual(1)
    expect(moved).toBeLessThanOrEqual(limit)
    expect(pings.length).toBeGreaterThanOrEqual(5)
    expect(sorted.at(-1)).toBeLessThan(500)
  }, 60_000)
})

describe('typing', () => {
  it('relays 200 typing.start frames in a second as a handful of typing.update frames', async () => {
    const { a, b } = await pairOf('ada', 'bob')
    const listener = await chat.open(b)
    const typists = await Promise.all(chat.servers.map(server => chat.open(a, server)))
    const from = listener.frames.length
    const started = performance.now()
    await Promise.all(typists.map(socket => inWaves(socket, Array.from({ length: 200 / typists.length }, () => ({ type: 'typing.start', to: b.id })))))
    const elapsed = performance.now() - started
    expect(elapsed).toBeLessThan(1500)
    // A message after the flood, from each socket: relays go out in order before it.
    await settle(typists, listener, b)

    const relayed = framesOf(listener, frame => frame.type === 'typing.update' && frame.from === a.id, from)
    console.log(`[rate-limits] typing: 200 starts in ${Math.round(elapsed)} ms reached the other person as ${relayed.length} typing.update frame(s)`)
    expect(relayed.length).toBeGreaterThanOrEqual(1)
    // One relay per instance at most every 2 s.
    expect(relayed.length).toBeLessThanOrEqual(2 * typists.length)
    expect(relayed.every(frame => frame.typing)).toBe(true)
  })

  it('holds alternating starts and stops to the typing limit', async () => {
    const { a, b } = await pairOf('ada', 'bob')
    const listener = await chat.open(b)
    const typists = await Promise.all(chat.servers.map(server => chat.open(a, server)))
    const from = listener.frames.length
    const started = performance.now()
    await Promise.all(typists.map(socket => inWaves(socket, Array.from({ length: 200 / typists.length }, (_, i) => ({ type: i % 2 ? 'typing.stop' : 'typing.start', to: b.id })))))
    const elapsed = performance.now() - started
    await settle(typists, listener, b)

    const relayed = framesOf(listener, frame => frame.type === 'typing.update' && frame.from === a.id, from)
    console.log(`[rate-limits] typing: 200 alternating starts and stops reached the other person as ${relayed.length} typing.update frame(s)`)
    expect(relayed.length).toBeLessThanOrEqual(allowance(FRAME_LIMITS.typing, elapsed))
  })
})

describe('presence', () => {
  it('announces a person opening and closing sockets in a loop a bounded number of times', async () => {
    const { a, b } = await pairOf('ada', 'bob')
    const watcher = await chat.open(b, chat.other)
    const from = watcher.frames.length
    const statuses: number[] = []
    const started = performance.now()
    for (let i = 0; i < 60; i++) {
      const attempt = await TestSocket.attempt(onInstance(a, chat.at(i)))
      statuses.push(attempt.status)
      if (!attempt.socket) continue
      await attempt.socket.roundTrip()
      attempt.socket.close()
      await attempt.socket.closedWith()
    }
    const elapsed = performance.now() - started
    // The last socket's close reaches the watcher as offline.
    await vi.waitFor(() => expect(framesOf(watcher, presenceOf(a.id), from).at(-1)?.status).toBe('offline'), { timeout: 5000 })
    await watcher.roundTrip()

    const opened = statuses.filter(status => status === 101).length
    const announced = framesOf(watcher, presenceOf(a.id), from).length
    console.log(`[rate-limits] presence: 60 opens in ${Math.round(elapsed)} ms, ${opened} let in, ${announced} presence frames to a contact`)
    expect(statuses.filter(status => status !== 101).every(status => status === 429)).toBe(true)
    expect(opened).toBeLessThanOrEqual(allowance({ perSecond: 0.5, burst: 20 }, elapsed))
    expect(announced).toBeLessThanOrEqual(2 * opened)
  }, 60_000)
})

/**
 * Sends frames 50 at a time, each wave answered (a ping after it) before the next: a socket holds
 * at most 100 frames waiting, and refuses the rest (the ping too) with rate_limited.
 */
async function inWaves(socket: TestSocket, frames: unknown[]) {
  for (let i = 0; i < frames.length; i += 50) {
    for (const frame of frames.slice(i, i + 50)) socket.send(frame)
    await socket.roundTrip()
  }
}

/** Two fresh people who accepted each other, on the first instance. */
async function pairOf(first: string, second: string): Promise<{ a: Person, b: Person }> {
  const a = await chat.person(first)
  const b = await chat.person(second)
  await pairUp(a, b)
  return { a, b }
}

/** Each socket sends a message; once all reached `listener`, everything those sockets did before has too. */
async function settle(sockets: TestSocket[], listener: TestSocket, to: Person) {
  const bodies = sockets.map(() => `sentinel ${randomUUID()}`)
  sockets.forEach((socket, i) => socket.send({ type: 'chat.send', to: to.id, body: bodies[i], clientId: randomUUID() }))
  for (const body of bodies) await listener.next(frame => frame.type === 'chat.receive' && frame.body === body)
}
