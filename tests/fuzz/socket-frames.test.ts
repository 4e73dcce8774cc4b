import { randomUUID } from 'node:crypto'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startMailCatcher, type MailCatcher } from '../support/mail-catcher'
import { pairUp, signedInPerson, type Person } from '../support/people'
import { startServer, type TestServer } from '../support/server'
import { TestSocket, type Frame } from '../support/socket'
import { binaryFrames, deepAndHuge, hostileFields, invalidUtf8, notObjects, unknownTypes, type Cast, type Expected, type HostileFrame } from './hostile'

// 10,000 generated frames in all, in batches one socket can hold (the server queues at most 100).
const BATCH = 50
const FRAMES = { hostileFields: 3000, unknownTypes: 1500, notObjects: 1500, deepAndHuge: 1000, binary: 2950, invalidUtf8Text: 50 }
// Set FUZZ_SEED to replay a run; fast-check prints the seed of a failing property.
const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31)

let server: TestServer
let mail: MailCatcher
let a: Person
let b: Person
let conversationId: string
let cast: Cast
let contactsBefore: unknown[]
let socket: TestSocket | undefined
const sockets: TestSocket[] = []
let framesThrown = 0

beforeAll(async () => {
  mail = await startMailCatcher()
  server = await startServer({ SMTP_URL: mail.url, NATTER_TRUST_PROXY: '1' })
  a = await signedInPerson(server, mail, 'fuzz-a')
  b = await signedInPerson(server, mail, 'fuzz-b')
  conversationId = await pairUp(a, b)
  cast = { self: a.id, partner: b.id }
  contactsBefore = await contactsOf(a)
})
afterAll(async () => {
  sockets.forEach(open => open.close())
  await server?.stop()
  await mail?.close()
})

async function contactsOf(person: Person) {
  const answer = await person.client.get('/api/contacts')
  expect(answer.status).toBe(200)
  return (answer.body as Array<Record<string, unknown>>).map(({ presence: _presence, ...rest }) => rest)
}

/** The socket the frames go to; a new one if a frame got the last one closed. */
async function live(): Promise<TestSocket> {
  if (!socket || socket.closed) {
    socket = await TestSocket.open(a.client)
    sockets.push(socket)
    await socket.roundTrip()
  }
  return socket
}

const isAnswer = (frame: Frame) => frame.type === 'error' || frame.type === 'pong'
// What a stack trace or a file path in an error message would look like.
const LEAK = /\n\s+at |node_modules|\(\/.*:\d+:\d+\)/

/** Why `answer` is not what the contract asks for `expected`, or undefined when it is. */
function misfit(expected: Expected, answer: Frame | undefined): string | undefined {
  if (!answer) return 'no answer at all'
  if ('pong' in expected) return answer.type === 'pong' ? undefined : `a ${answer.type} where a pong was due`
  if (answer.type !== 'error') return `a ${answer.type} where an error was due`
  // A rate_limited refusal also says when to try again.
  const { type: _type, code, message, ref, ...rest } = answer
  if (code === 'rate_limited' && typeof rest.retryAfterMs === 'number') delete rest.retryAfterMs
  if (Object.keys(rest).length) return `unexpected fields ${Object.keys(rest).join(', ')}`
  if (!expected.codes.includes(code)) return `code ${code}, expected one of ${expected.codes.join(', ')}`
  if (typeof message !== 'string' || !message.trim() || message.length > 500 || LEAK.test(message)) return `message ${JSON.stringify(message)}`
  if (ref !== expected.ref && !(expected.refOptional && ref === undefined)) return `ref ${JSON.stringify(ref)}, expected ${JSON.stringify(expected.ref)}`
  return undefined
}

/**
 * Pairs frames with answers, in order, and lists what is wrong. Each answer goes to the first frame
 * still waiting that it fits; the frames it passes over got no answer. An answer that fits none is
 * a wrong answer to the first frame waiting. The last answer is the pong to our closing ping.
 */
function misfits(frames: HostileFrame[], answers: Frame[]): string[] {
  const found: string[] = []
  let waiting = 0
  for (const answer of answers.slice(0, -1)) {
    let fits = waiting
    while (fits < frames.length && misfit(frames[fits]!.expected, answer)) fits += 1
    if (fits === frames.length) {
      found.push(waiting < frames.length ? `${misfit(frames[waiting]!.expected, answer)}: ${JSON.stringify(answer)} to ${fc.stringify(frames[waiting])}` : `an extra answer ${JSON.stringify(answer)}`)
      waiting += 1
      continue
    }
    for (; waiting < fits; waiting++) found.push(`no answer at all to ${fc.stringify(frames[waiting])}`)
    waiting = fits + 1
  }
  for (; waiting < frames.length; waiting++) found.push(`no answer at all to ${fc.stringify(frames[waiting])}`)
  if (answers.at(-1)?.type !== 'pong') found.push(`the closing ping got ${JSON.stringify(answers.at(-1))}`)
  return found
}

// Every frame of a category is thrown even after a first misfit, so one run shows every kind of bug.
let problems: string[] = []

/**
 * Sends a batch and a ping, then checks frame by frame: one answer each, in order, of the right
 * kind; nothing acknowledged; the socket still open; the process still alive and healthy.
 */
async function throwBatch(frames: HostileFrame[]) {
  const open = await live()
  const from = open.frames.length
  for (const frame of frames) open.ws.send(frame.bytes, { binary: frame.binary })
  open.send({ type: 'ping' })
  framesThrown += frames.length
  // Frames are handled one at a time, so the last pong (ours) comes after every other answer.
  const pongs = frames.filter(frame => 'pong' in frame.expected).length + 1
  await open.next(() => open.frames.slice(from).filter(frame => frame.type === 'pong').length >= pongs, { from, timeout: 20_000 })
  problems.push(...misfits(frames, open.frames.slice(from).filter(isAnswer)))
  // A frame the server took for a real message would show up as an ack (and a stored row).
  expect(open.frames.slice(from).filter(frame => frame.type === 'chat.ack')).toEqual([])
  expect(open.closed).toBeUndefined()
  expect(server.process.exitCode).toBeNull()
  expect((await fetch(`${server.url}/api/health`)).status).toBe(200)
}

/** Throws `count` frames in batches; fails listing each kind of misfit found, with examples. */
async function fuzz(count: number, arbitrary: (cast: Cast) => fc.Arbitrary<HostileFrame>) {
  problems = []
  await fc.assert(
    fc.asyncProperty(fc.array(arbitrary(cast), { minLength: BATCH, maxLength: BATCH }), throwBatch),
    { numRuns: count / BATCH, seed, endOnFailure: true }
  )
  const kinds = new Map<string, string[]>()
  for (const problem of problems) {
    const kind = problem.replace(/ to .*/s, '').replace(/"ref":"[^"]*"|[0-9a-f-]{36}/g, '…')
    kinds.set(kind, [...(kinds.get(kind) ?? []), problem].slice(0, 3))
  }
  expect([...kinds.values()].flat(), `${problems.length} of ${count} frames were answered wrongly`).toEqual([])
}

describe('every frame a hostile client can send gets an error frame, changes nothing, and leaves the socket open', () => {
  it(`valid types with hostile fields (${FRAMES.hostileFields} frames)`, () => fuzz(FRAMES.hostileFields, hostileFields), 60_000)

  it(`missing and unknown types (${FRAMES.unknownTypes} frames)`, () => fuzz(FRAMES.unknownTypes, () => unknownTypes), 60_000)

  it(`text that is not JSON or not an object (${FRAMES.notObjects} frames)`, () => fuzz(FRAMES.notObjects, notObjects), 60_000)

  it(`deep JSON and frames around and over 16 KiB (${FRAMES.deepAndHuge} frames)`, () => fuzz(FRAMES.deepAndHuge, deepAndHuge), 60_000)

  it(`binary frames: random bytes, invalid UTF-8, hostile JSON (${FRAMES.binary} frames)`, () => fuzz(FRAMES.binary, binaryFrames), 60_000)

  it(`invalid UTF-8 in a text frame is a protocol error: closed with 1007, the server lives on (${FRAMES.invalidUtf8Text} frames)`, async () => {
    // Socket opens are limited per person (a burst of 20): a few people share the 50 throws.
    const throwers = [a, ...await Promise.all([1, 2, 3].map(i => signedInPerson(server, mail, `fuzz-utf8-${i}`)))]
    let thrown = 0
    await fc.assert(fc.asyncProperty(invalidUtf8, fc.boolean(), async (bad, wrapped) => {
      const victim = await TestSocket.open(throwers[thrown++ % throwers.length]!.client)
      sockets.push(victim)
      await victim.roundTrip()
      const bytes = wrapped ? Buffer.concat([Buffer.from('{"type":"ping","x":"'), bad, Buffer.from('"}')]) : bad
      victim.ws.send(bytes, { binary: false })
      framesThrown += 1
      // RFC 6455 8.1: a text frame that is not UTF-8 fails the connection; no error frame can follow.
      expect((await victim.closedWith(5000)).code).toBe(1007)
      expect((await fetch(`${server.url}/api/health`)).status).toBe(200)
    }), { numRuns: FRAMES.invalidUtf8Text, seed, endOnFailure: true })
  }, 60_000)

  it('answers frames whose fields have no string form (found by this fuzzer)', async () => {
    const open = await live()
    const clientId = randomUUID()
    const cases: Array<[unknown, string]> = [
      // String(type) throws: no callable toString, or nesting deeper than the stack.
      [{ type: { toString: 1 }, clientId }, 'unknown_type'],
      [{ type: [{ toString: null }], clientId }, 'unknown_type'],
      // Sent as text: JSON.stringify of it would overflow this test's own stack.
      [`{"type":${'['.repeat(6000)}${']'.repeat(6000)},"clientId":"${clientId}"}`, 'unknown_type'],
      // zod runs .min()/.max() on a non-array too, and compares its `length` with a number.
      [{ type: 'read.update', messageIds: { length: { toString: 1 } }, clientId }, 'invalid_frame']
    ]
    for (const [frame, code] of cases) {
      const from = open.frames.length
      open.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
      open.send({ type: 'ping' })
      await open.next(answer => answer.type === 'pong', { from })
      expect(open.frames.slice(from).filter(isAnswer), String(typeof frame === 'string' ? frame : JSON.stringify(frame)).slice(0, 80)).toEqual([
        { type: 'error', code, message: expect.any(String), ref: clientId },
        { type: 'pong' }
      ])
    }
  })

  it('threw 10,000 frames, stored nothing, added no contact, and still takes a real message as seq 1', async () => {
    expect(framesThrown).toBeGreaterThanOrEqual(10_000)
    const stored = await a.client.get(`/api/conversations/${conversationId}/messages?after=0&limit=200`)
    expect(stored.status).toBe(200)
    expect(stored.body.messages).toEqual([])
    expect(await contactsOf(a)).toEqual(contactsBefore)
    expect((await contactsOf(b)).map(contact => (contact.user as { id: string }).id)).toEqual([a.id])
    expect(server.process.exitCode).toBeNull()

    const open = await live()
    const clientId = randomUUID()
    // The strangers' chat.send frames spent the send limit: a refusal says when a token is back.
    for (;;) {
      const from = open.frames.length
      open.send({ type: 'chat.send', to: b.id, body: 'still here', clientId })
      const answer = await open.next(frame => frame.type === 'chat.ack' || frame.type === 'error', { from })
      if (answer.type === 'error' && answer.code === 'rate_limited') {
        await new Promise(resolve => setTimeout(resolve, answer.retryAfterMs))
        continue
      }
      expect(answer).toMatchObject({ type: 'chat.ack', clientId, conversationId, seq: 1 })
      break
    }
  })
})
