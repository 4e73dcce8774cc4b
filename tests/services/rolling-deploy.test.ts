import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { serviceUrls } from '../support/backends'
import type { Client } from '../support/client'
import { startMailCatcher, type MailCatcher } from '../support/mail-catcher'
import { pairUp, signedInPerson, type Person } from '../support/people'
import { startServer, type TestServer } from '../support/server'
import { TestSocket } from '../support/socket'

/**
 * A sender as the browser is one: an outbox of unacknowledged messages, re-sent in order with the
 * same clientId after a reconnect, and a reconnect to whichever instance still answers.
 */
class Sender {
  socket?: TestSocket
  readonly outbox = new Map<string, string>()
  readonly acked = new Set<string>()
  readonly sent: string[] = []
  closeCodes: number[] = []
  private connecting?: Promise<void>
  constructor(readonly person: Person, readonly to: string, private servers: () => TestServer[]) {}

  connect() {
    this.connecting ??= this.reconnect().finally(() => {
      this.connecting = undefined
    })
    return this.connecting
  }

  private async reconnect() {
    for (let attempt = 0; attempt < 50; attempt++) {
      for (const server of this.servers()) {
        try {
          const client = Object.assign(Object.create(Object.getPrototypeOf(this.person.client)), this.person.client, { base: server.url, origin: server.url }) as Client
          const socket = await TestSocket.open(client)
          this.socket = socket
          socket.ws.on('message', (data) => {
            const frame = JSON.parse(String(data))
            if (frame.type === 'chat.ack') {
              this.acked.add(frame.clientId)
              this.outbox.delete(frame.clientId)
            }
            // Refused for now (rate limit, bus unavailable): the outbox tries again shortly.
            if (frame.type === 'error' && this.outbox.has(frame.ref)) {
              setTimeout(() => {
                const body = this.outbox.get(frame.ref)
                if (body !== undefined && this.socket === socket) socket.send({ type: 'chat.send', to: this.to, body, clientId: frame.ref })
              }, 1000)
            }
          })
          socket.ws.on('close', (code) => {
            this.closeCodes.push(code)
            if (this.socket === socket) this.socket = undefined
          })
          for (const [clientId, body] of this.outbox) socket.send({ type: 'chat.send', to: this.to, body, clientId })
          return
        }
        catch { /* that instance is going away: try the next */ }
      }
      await new Promise(resolve => setTimeout(resolve, 100 + Math.random() * 200))
    }
    throw new Error('could not reconnect to any instance')
  }

  send(body: string) {
    const clientId = randomUUID()
    this.outbox.set(clientId, body)
    this.sent.push(clientId)
    if (this.socket?.ws.readyState === 1) this.socket.send({ type: 'chat.send', to: this.to, body, clientId })
    else if (!this.socket) void this.connect()
  }
}

let one: TestServer
let two: TestServer
let mail: MailCatcher
let db: pg.Pool

beforeAll(async () => {
  mail = await startMailCatcher()
  ;[one, two] = await Promise.all([
    startServer({ SMTP_URL: mail.url, NATTER_TRUST_PROXY: '1' }),
    startServer({ SMTP_URL: mail.url, NATTER_TRUST_PROXY: '1' })
  ])
  db = new pg.Pool({ connectionString: serviceUrls.DATABASE_URL, max: 2 })
})
afterAll(async () => {
  await Promise.all([one.stop(), two.stop()])
  await mail.close()
  await db.end()
})

describe('a rolling deploy', () => {
  it('loses no acknowledged message when an instance gets SIGTERM mid-stream', async () => {
    let alive = [one, two]
    const senders: Sender[] = []
    const conversations: string[] = []
    for (let pair = 0; pair < 4; pair++) {
      const a = await signedInPerson(pair % 2 ? one : two, mail, 'ada')
      const b = await signedInPerson(pair % 2 ? two : one, mail, 'bob')
      conversations.push(await pairUp(a, b))
      // Half the people start on the instance that will be stopped.
      senders.push(new Sender(a, b.id, () => alive), new Sender(b, a.id, () => [...alive].reverse()))
    }
    await Promise.all(senders.map(sender => sender.connect()))

    let stopped: Promise<number | null> | undefined
    let stoppedAt = 0
    for (let tick = 0; tick < 40; tick++) {
      for (const sender of senders) sender.send(`tick ${tick}`)
      if (tick === 15) {
        alive = [two]
        stoppedAt = Date.now()
        stopped = one.stop('SIGTERM')
      }
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    const exitCode = await stopped
    const drainMs = Date.now() - stoppedAt
    expect(exitCode).toBe(0)

    // Everything in the outboxes gets acknowledged once the clients are on the surviving instance.
    const deadline = Date.now() + 30_000
    while (senders.some(sender => sender.outbox.size) && Date.now() < deadline) {
      for (const sender of senders) if (!sender.socket) await sender.connect()
      await new Promise(resolve => setTimeout(resolve, 200))
    }
    expect(senders.map(sender => sender.outbox.size)).toEqual(senders.map(() => 0))
    expect(senders.flatMap(sender => sender.closeCodes)).toContain(1012)

    const { rows } = await db.query<{ conversation_id: string, seq: string, client_id: string }>(
      'select conversation_id, seq, client_id from messages where conversation_id = any($1) order by conversation_id, seq', [conversations])
    const sent = senders.flatMap(sender => sender.sent)
    const stored = rows.map(row => row.client_id)
    expect(new Set(stored).size).toBe(stored.length)
    expect(stored.sort()).toEqual([...sent].sort())
    for (const conversationId of conversations) {
      const seqs = rows.filter(row => row.conversation_id === conversationId).map(row => Number(row.seq))
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1))
    }
    console.log(`rolling deploy: ${sent.length} sent, ${stored.length} stored once each, SIGTERM to exit ${drainMs} ms`)
  }, 90_000)
})
