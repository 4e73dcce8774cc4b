import { randomBytes, randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { connect } from 'node:net'
import { beforeAll, describe, expect, it, vi } from 'vitest'
import { MAX_FRAME_BYTES } from '#shared/types/messages'
import { peakResident, residentMiB, useInstances } from '../support/attack'
import type { Person } from '../support/people'
import type { TestServer } from '../support/server'
import type { TestSocket } from '../support/socket'

// An attacker with one ordinary account sends WebSocket messages larger than any limit. Before,
// ws' own cap was its default of 100 MiB: a 100 MiB message was read whole before the gateway's
// 16 KiB check refused it, and the fragments of a message that never finished were held for as
// long as the client answered pings (six such sockets held ~584 MiB). The transport now stops
// reading past 64 KiB (server/plugins/websocket-limits.ts) and closes with 1009. This suite found
// that ws went on reading (and throwing away) all 100 MiB of a client that ignores the close, for
// up to 30 s: the gateway now stops reading and hangs up (hangUp in server/routes/ws.ts). A
// message is the transport's concern, one process at a time: one instance is enough on either backend.

const KiB = 1024
const MiB = 1024 * KiB
const MESSAGE_CAP = 64 * KiB

const chat = useInstances({}, 1)
let ada: Person
let bob: Person

beforeAll(async () => {
  ada = await chat.person('ada')
  bob = await chat.person('bob')
})

/**
 * An attacker below any WebSocket library: the upgrade by hand, then one text message declaring
 * `length` bytes, written a MiB at a time for as long as the server takes them, whatever it
 * answers. Resolves with the close code the server sent (if any) and how much it took in.
 */
async function sendHuge(person: Person, server: TestServer, length: number): Promise<{ closeCode?: number, taken: number }> {
  // Half-open allowed: the server's FIN does not stop this attacker from sending.
  const connection = connect({ port: server.port, host: '127.0.0.1', allowHalfOpen: true })
  await once(connection, 'connect')
  connection.write([
    'GET /ws HTTP/1.1', `Host: 127.0.0.1:${server.port}`, 'Upgrade: websocket', 'Connection: Upgrade',
    'Sec-WebSocket-Version: 13', `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    `Origin: ${server.origin}`, `Cookie: ${person.client.cookieHeader()}`, '', ''
  ].join('\r\n'))
  let received = Buffer.alloc(0)
  connection.on('data', (bytes: Buffer) => {
    received = Buffer.concat([received, bytes])
  })
  connection.on('error', () => {})
  const closed = new Promise(resolve => connection.once('close', resolve))
  await vi.waitFor(() => expect(received.includes('\r\n\r\n')).toBe(true))
  expect(received.toString('latin1')).toMatch(/^HTTP\/1\.1 101 /)
  received = received.subarray(received.indexOf('\r\n\r\n') + 4)
  // A mask of zeros leaves the payload as it is.
  const header = Buffer.alloc(14)
  header[0] = 0x81
  header[1] = 0x80 | 127
  header.writeBigUInt64BE(BigInt(length), 2)
  const chunk = Buffer.alloc(MiB, 0x20)
  const write = (bytes: Buffer) => new Promise<boolean>(resolve => connection.write(bytes, error => resolve(!error)))
  let taken = 0
  if (await write(header)) while (taken < length && await write(chunk)) taken += chunk.length
  connection.destroy()
  await closed
  // The server's frames: opcode 8 is a close, its payload starts with the code.
  const close = received.indexOf(0x88)
  return { closeCode: close >= 0 && received.length >= close + 4 ? received.readUInt16BE(close + 2) : undefined, taken }
}

/** Sends `total` bytes as fragments of `size` that never end: no final fragment ever comes. */
function sendUnfinished(socket: TestSocket, total: number, size = 8 * KiB) {
  for (let sent = 0; sent < total; sent += size) socket.ws.send(Buffer.alloc(size, 0x20), { binary: false, fin: false })
}

describe('nothing larger than a limit is ever buffered', () => {
  it('closes sockets sending 100 MiB messages or endless fragments with 1009, memory flat', async () => {
    const pid = chat.at(0).process.pid!
    const bystander = await chat.open(bob)
    // The sockets first, so the baseline includes what the first sockets warm up.
    const endless = await Promise.all(Array.from({ length: 4 }, () => chat.open(ada)))
    await bystander.roundTrip()
    const baseline = residentMiB(pid)

    let huge: Array<{ closeCode?: number, taken: number }> = []
    const peak = await peakResident(pid, async () => {
      // 72 KiB in fragments: past the cap, yet no fragment alone is large.
      for (const socket of endless) sendUnfinished(socket, MESSAGE_CAP + 8 * KiB)
      const sending = Promise.all(Array.from({ length: 4 }, () => sendHuge(ada, chat.at(0), 100 * MiB)))
      await Promise.all(endless.map(socket => socket.closedWith(20_000)))
      huge = await sending
    })

    console.log(`[socket-limits] resident memory ${baseline.toFixed(0)} MiB before, ${peak.toFixed(0)} MiB at most while 4 x 100 MiB and 4 x endless fragments came in; the server took in ${huge.map(({ taken }) => taken / MiB).join(', ')} MiB of the 100 MiB messages`)
    for (const socket of endless) expect(socket.closed).toMatchObject({ code: 1009 })
    // None of them got an answer: the messages were never read, so never handled.
    for (const socket of endless) expect(socket.frames.at(-1)).toEqual({ type: 'pong' })
    expect(huge.map(({ closeCode }) => closeCode)).toEqual([1009, 1009, 1009, 1009])
    expect(peak - baseline).toBeLessThan(50)
    // Not even read and thrown away: the server stopped taking bytes (the kernels' buffers hold a few MiB).
    for (const { taken } of huge) expect(taken).toBeLessThan(40 * MiB)
    // Everyone else carries on, and the attacker can come back with a normal socket.
    await bystander.roundTrip()
    await (await chat.open(ada)).roundTrip()
    expect((await fetch(`${chat.at(0).url}/api/health`)).status).toBe(200)
  }, 60_000)

  it('closes a socket whose unfinished message grows past 64 KiB, however slowly', async () => {
    const socket = await chat.open(ada)
    // Under the cap an unfinished message is only waiting: pings are answered in between.
    sendUnfinished(socket, MESSAGE_CAP - 8 * KiB)
    socket.ws.ping()
    await new Promise(resolve => socket.ws.once('pong', resolve))
    expect(socket.closed).toBeUndefined()
    // Two more fragments: 72 KiB in all.
    sendUnfinished(socket, 16 * KiB)
    expect(await socket.closedWith()).toMatchObject({ code: 1009 })
  })
})

describe('a frame over 16 KiB and within 64 KiB gets an error frame, and the socket stays open', () => {
  it.each([
    ['20 KiB in one frame', [20 * KiB]],
    ['60 KiB in one frame', [60 * KiB]],
    ['20 KiB in five fragments that finish', [4 * KiB, 4 * KiB, 4 * KiB, 4 * KiB, 4 * KiB]]
  ])('%s', async (_label, fragments) => {
    const socket = await chat.open(ada)
    const clientId = randomUUID()
    const total = fragments.reduce((sum, size) => sum + size, 0)
    const head = `{"type":"chat.send","to":"${bob.id}","clientId":"${clientId}","body":"`
    const text = Buffer.from(head + 'x'.repeat(total - head.length - 2) + '"}')
    expect(text.length).toBe(total)
    expect(total).toBeGreaterThan(MAX_FRAME_BYTES)
    const from = socket.frames.length
    let offset = 0
    fragments.forEach((size, i) => {
      socket.ws.send(text.subarray(offset, offset + size), { binary: false, fin: i === fragments.length - 1 })
      offset += size
    })
    // The clientId is found without parsing, so the client can mark the right message as failed.
    expect(await socket.next(frame => frame.type === 'error', { from })).toEqual({ type: 'error', code: 'frame_too_large', message: expect.any(String), ref: clientId })
    await socket.roundTrip()
    expect(socket.closed).toBeUndefined()
    expect(socket.frames.slice(from).filter(frame => frame.type === 'chat.ack')).toEqual([])
  })
})
