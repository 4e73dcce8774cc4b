import { randomUUID } from 'node:crypto'
import type { Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startMailCatcher, type MailCatcher } from '../support/mail-catcher'
import { pairUp, signedInPerson } from '../support/people'
import { startServer, type TestServer } from '../support/server'
import { TestSocket } from '../support/socket'

// The gateway lets each person send bursts of 20 (then 10 a second): many senders bursting at
// once are what it takes to push megabytes at one reader within a few seconds.
const SENDERS = 48
const BURST = 20
// 4,000 characters of three bytes each: about 12 KB per chat.receive, under the 16 KiB frame limit.
const BODY = '€'.repeat(4000)
// A reader that answers no protocol ping is cut at the second presence heartbeat (7 s apart) after
// it stopped: it stops right after a ping and reads again within 12 s, or the 1013 close frame
// would be lost with the connection.
const PAUSE_MS = 12_000
const ROUNDS = 4

let server: TestServer
let mail: MailCatcher
const sockets: TestSocket[] = []

beforeAll(async () => {
  mail = await startMailCatcher()
  server = await startServer({ SMTP_URL: mail.url, NATTER_TRUST_PROXY: '1' })
})
afterAll(async () => {
  sockets.forEach(socket => socket.close())
  await server?.stop()
  await mail?.close()
})

async function open(client: Parameters<typeof TestSocket.open>[0]) {
  const socket = await TestSocket.open(client)
  sockets.push(socket)
  await socket.roundTrip()
  return socket
}

const answered = (socket: TestSocket) => socket.frames.filter(frame => frame.type === 'chat.ack' || frame.type === 'error').length
const wait = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

describe('a client that stops reading', () => {
  it('is closed with 1013 once the server holds 1 MiB for it, and the server keeps none of the rest', async () => {
    const reader = await signedInPerson(server, mail, 'slow')
    const senders = await Promise.all(Array.from({ length: SENDERS }, (_, i) => signedInPerson(server, mail, `flood${i}`)))
    await Promise.all(senders.map(sender => pairUp(sender, reader)))
    const floods = await Promise.all(senders.map(sender => open(sender.client)))
    const slow = await open(reader.client)
    const tcp = (slow.ws as unknown as { _socket: Socket })._socket

    let sent = 0
    let acked = 0
    const began = Date.now()
    // Each round: stop reading, let every sender burst, then read again and look for the close.
    for (let round = 0; round < ROUNDS && !slow.closed; round++) {
      // Right after a heartbeat's ping (at most 7 s away), so the next one is 7 s off and the cut 14 s.
      await new Promise(resolve => slow.ws.once('ping', resolve))
      tcp.pause()
      const pausedAt = Date.now()
      const before = floods.map(answered)
      for (const socket of floods) {
        for (let i = 0; i < BURST; i++) socket.send({ type: 'chat.send', to: reader.id, body: BODY, clientId: randomUUID() })
      }
      sent += SENDERS * BURST
      // Until every send of the round is answered (so delivered towards the reader), within the pause.
      while (floods.some((socket, i) => answered(socket) < before[i]! + BURST) && Date.now() - pausedAt < PAUSE_MS) await wait(50)
      acked = floods.reduce((sum, socket) => sum + socket.frames.filter(frame => frame.type === 'chat.ack').length, 0)
      tcp.resume()
      await slow.closedWith(3000).catch(() => undefined)
      // The senders' buckets refill (10 a second) for the next burst.
      if (!slow.closed) await wait(Math.max(0, 2000 - (Date.now() - pausedAt)))
    }

    const closed = await slow.closedWith(1000)
    const received = slow.frames.filter(frame => frame.type === 'chat.receive').length
    console.log(`[slow reader] ${acked} of ${sent} messages (about ${(acked * 12 / 1024).toFixed(1)} MiB) acknowledged to their senders; `
      + `the reader got ${received} (${(tcp.bytesRead / 2 ** 20).toFixed(1)} MiB) before the close ${closed.code} "${closed.reason}", `
      + `${((Date.now() - began) / 1000).toFixed(1)} s after the start`)
    expect(closed.code).toBe(1013)
    // The server let go of everything past the limit: the reader never gets the rest.
    expect(received).toBeLessThan(acked)
    expect(server.process.exitCode).toBeNull()
    expect((await fetch(`${server.url}/api/health`)).status).toBe(200)
    // The reader reconnects and resyncs; nothing acknowledged was lost.
    const contacts = (await reader.client.get('/api/contacts')).body as Array<{ conversationId: string }>
    let stored = 0
    for (const { conversationId } of contacts) {
      stored += (await reader.client.get(`/api/conversations/${conversationId}/messages?after=0&limit=200`)).body.messages.length
    }
    expect(stored).toBe(acked)
  }, 90_000)
})
