import { randomUUID } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { onInstance, useInstances } from '../support/attack'
import { pairUp, type Person } from '../support/people'
import type { Frame, TestSocket } from '../support/socket'

// One ordinary account tries to stall everyone on its instance. Before, a chat.send whose clientId
// the sender had already used in another conversation was dropped by the persister without a
// word, and stayed in the instance's list of sends waiting for their delivery: 120 of them, and
// after 5 s the backpressure judged the pipeline stuck (sends waiting that long, counted by their
// number) and answered every chat.send on the instance with rate_limited for ~12 s. Now the
// persister refuses such a send at once with an error frame (duplicate_client_id), which settles
// it, and "stuck" is judged from the pipeline's own progress. Under `services` the attacker and a
// bystander share an instance and another bystander is on the second one.

const chat = useInstances()
const REUSED = 120

const wait = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/** The ack of a send, or the error frame answering it. */
const answerTo = (clientId: string) => (frame: Frame) => (frame.type === 'chat.ack' && frame.clientId === clientId) || (frame.type === 'error' && frame.ref === clientId)

/** Sends a message and waits for its answer; resends with the same clientId when told to wait. */
async function sendUntilAnswered(socket: TestSocket, frame: Record<string, unknown> & { clientId: string }): Promise<Frame> {
  for (;;) {
    const from = socket.frames.length
    socket.send({ type: 'chat.send', ...frame })
    const answer = await socket.next(answerTo(frame.clientId), { from })
    if (answer.type !== 'error' || answer.code !== 'rate_limited') return answer
    await wait(answer.retryAfterMs)
  }
}

interface Bystander { name: string, socket: TestSocket, to: Person, answers: Array<{ type: string, code?: string, ms: number }> }

/** One message a second until `done`, each answered before the next. */
async function chatAlong(bystander: Bystander, done: () => boolean) {
  while (!done()) {
    const clientId = randomUUID()
    const started = performance.now()
    const from = bystander.socket.frames.length
    bystander.socket.send({ type: 'chat.send', to: bystander.to.id, body: `still here ${bystander.answers.length}`, clientId })
    const answer = await bystander.socket.next(answerTo(clientId), { from, timeout: 15_000 })
    const ms = performance.now() - started
    bystander.answers.push({ type: answer.type, code: answer.code, ms })
    await wait(Math.max(0, 1000 - ms))
  }
}

describe('one account cannot stall everyone', () => {
  let attacker: Person
  let first: string
  let second: string
  const bystanders: Bystander[] = []

  beforeAll(async () => {
    attacker = await chat.person('mallory')
    const [bob, cy] = [await chat.person('bob'), await chat.person('cy')]
    first = await pairUp(attacker, bob)
    second = await pairUp(attacker, cy)
    // A pair on the attacker's instance, and under `services` one on the other instance.
    for (const [index, server] of chat.servers.entries()) {
      const [ada, dan] = [await chat.person('ada', index), await chat.person('dan', index)]
      await pairUp(ada, dan)
      await chat.open(dan, server)
      bystanders.push({ name: `bystander on instance ${index + 1}`, socket: await chat.open(ada, server), to: dan, answers: [] })
    }
  })

  it(`answers ${REUSED} reused clientIds at once with duplicate_client_id, and everyone else's messages keep going`, async () => {
    const socket = await chat.open(attacker)
    // The clientIds, used once each in the first conversation (paced under the send limit).
    const clientIds = Array.from({ length: REUSED }, () => randomUUID())
    for (const [i, clientId] of clientIds.entries()) {
      const answer = await sendUntilAnswered(socket, { conversationId: first, body: `message ${i}`, clientId })
      expect(answer).toMatchObject({ type: 'chat.ack', conversationId: first, seq: i + 1 })
    }

    // The same clientIds in the second conversation, 8 a second (the send bucket refilled first:
    // 20 at 10 a second), while the bystanders chat on.
    await wait(2000)
    let attacking = true
    const chatting = Promise.all(bystanders.map(bystander => chatAlong(bystander, () => !attacking)))
    const answers: Array<{ frame: Frame, ms: number }> = []
    const started = performance.now()
    for (const [i, clientId] of clientIds.entries()) {
      await wait(Math.max(0, started + i * 125 - performance.now()))
      const sentAt = performance.now()
      const from = socket.frames.length
      socket.send({ type: 'chat.send', conversationId: second, body: `again ${i}`, clientId })
      answers.push({ frame: await socket.next(answerTo(clientId), { from, timeout: 10_000 }), ms: performance.now() - sentAt })
    }
    // The old code's stall came 5 s after the first refused send and lasted ~12 s: chat on past it.
    await wait(Math.max(0, started + 18_000 - performance.now()))
    attacking = false
    await chatting

    const slowest = Math.max(...answers.map(({ ms }) => ms))
    console.log(`[stall] ${REUSED} reused clientIds answered in ${Math.round(slowest)} ms at most; ${bystanders.map(({ name, answers }) => `${name}: ${answers.length} messages, slowest ack ${Math.round(Math.max(...answers.map(({ ms }) => ms)))} ms`).join('; ')}`)
    expect(answers.map(({ frame }) => frame)).toEqual(clientIds.map(clientId => ({ type: 'error', code: 'duplicate_client_id', message: expect.any(String), ref: clientId })))
    expect(slowest).toBeLessThan(2000)
    for (const { name, answers } of bystanders) {
      expect(answers.length, name).toBeGreaterThanOrEqual(15)
      expect(answers.filter(({ type }) => type !== 'chat.ack'), name).toEqual([])
      expect(Math.max(...answers.map(({ ms }) => ms)), name).toBeLessThan(2000)
    }

    // Nothing was stored in the second conversation; the first has its 120.
    const stored = async (conversationId: string) => (await onInstance(attacker, chat.other).get(`/api/conversations/${conversationId}/messages?after=0&limit=200`)).body.messages
    expect(await stored(second)).toEqual([])
    expect((await stored(first)).length).toBe(REUSED)
  }, 120_000)
})
