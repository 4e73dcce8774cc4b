import { randomUUID } from 'node:crypto'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startMailCatcher, type MailCatcher } from '../support/mail-catcher'
import { pairUp, signedInPerson } from '../support/people'
import { startServer, type TestServer } from '../support/server'
import { TestSocket } from '../support/socket'
import { legalBody } from './hostile'

// Set FUZZ_SEED to replay a run.
const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31)
// A UTF-16 surrogate without its partner: not text; PostgreSQL stores it as U+FFFD (PGlite may refuse it).
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

// Its own server: a message the persister cannot store must not hold up the other fuzz suites.
let server: TestServer
let mail: MailCatcher
const sockets: TestSocket[] = []

beforeAll(async () => {
  mail = await startMailCatcher()
  server = await startServer({ SMTP_URL: mail.url, NATTER_TRUST_PROXY: '1' })
})
afterAll(async () => {
  sockets.forEach(open => open.close())
  await server?.stop()
  await mail?.close()
})

describe('bodies the contract accepts, however awkward', () => {
  it('stores hostile but legal bodies exactly as sent (trimmed), live and in history alike', async () => {
    const c = await signedInPerson(server, mail, 'fuzz-c')
    const d = await signedInPerson(server, mail, 'fuzz-d')
    const between = await pairUp(c, d)
    const [sc, sd] = [await TestSocket.open(c.client), await TestSocket.open(d.client)]
    sockets.push(sc, sd)
    const sent = fc.sample(legalBody, { numRuns: 40, seed }).map(body => ({ body, clientId: randomUUID() }))
    for (const [index, { body, clientId }] of sent.entries()) {
      // Inside the rate limit: a burst of 20, then 10 a second.
      if (index >= 15) await new Promise(resolve => setTimeout(resolve, 110))
      sc.send({ type: 'chat.send', to: d.id, body, clientId })
    }
    const answerTo = (clientId: string) => sc.frames.find(frame => (frame.type === 'chat.ack' && frame.clientId === clientId) || (frame.type === 'error' && frame.ref === clientId))
    await sc.next(() => sent.every(({ clientId }) => answerTo(clientId)), { timeout: 20_000 }).catch((error) => {
      throw new Error(`seed ${seed}: unanswered: ${JSON.stringify(sent.filter(({ clientId }) => !answerTo(clientId)).map(({ body }) => body.slice(0, 80)))}; errors ${JSON.stringify(sc.frames.filter(frame => frame.type === 'error'))}\n${server.logs.join('').split('\n').filter(line => /handler failed|persist/.test(line)).slice(0, 2).join('\n').slice(0, 2000)}`, { cause: error })
    })
    const accepted = sent.filter(({ clientId }) => answerTo(clientId)!.type === 'chat.ack')
    await sd.next(() => sd.frames.filter(frame => frame.type === 'chat.receive').length >= accepted.length)
    const stored = (await d.client.get(`/api/conversations/${between}/messages?after=0&limit=200`)).body.messages as Array<{ id: string, body: string }>
    const live = sd.frames.filter(frame => frame.type === 'chat.receive')
    expect(stored).toHaveLength(accepted.length)
    for (const { body, clientId } of sent) {
      const what = `body ${JSON.stringify(body).slice(0, 120)}`
      const answer = answerTo(clientId)!
      // Text that is not well-formed UTF-16 may be refused, or stored with U+FFFD in place of the
      // lone surrogates; well-formed text must be stored as sent, trimmed.
      if (answer.type === 'error') {
        expect(LONE_SURROGATE.test(body) && answer.code === 'invalid_frame', `${what} refused: ${JSON.stringify(answer)}`).toBe(true)
        continue
      }
      const message = stored.find(row => row.id === answer.id)
      expect(message?.body, what).toBe(body.trim().replace(new RegExp(LONE_SURROGATE.source, 'g'), '\uFFFD'))
      expect(live.find(frame => frame.id === answer.id)?.body, `${what}: live and stored differ`).toBe(message?.body)
    }
  }, 60_000)

  it('does not let a body the database cannot store stop later messages (found by this fuzzer)', async () => {
    const c = await signedInPerson(server, mail, 'fuzz-e')
    const d = await signedInPerson(server, mail, 'fuzz-f')
    await pairUp(c, d)
    const sc = await TestSocket.open(c.client)
    sockets.push(sc)
    // Two lone low surrogates: PGlite refuses the row ("invalid byte sequence for encoding UTF8").
    const poison = randomUUID()
    const after = randomUUID()
    sc.send({ type: 'chat.send', to: d.id, body: 'x\uDC00\uDC00', clientId: poison })
    sc.send({ type: 'chat.send', to: d.id, body: 'and then this', clientId: after })
    const answer = (clientId: string) => sc.next(frame => (frame.type === 'chat.ack' && frame.clientId === clientId) || (frame.type === 'error' && frame.ref === clientId), { timeout: 5000 })
    expect(['chat.ack', 'error']).toContain((await answer(poison)).type)
    expect(await answer(after)).toMatchObject({ type: 'chat.ack', clientId: after })
  })
})
