import { randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { useChatServer } from '../support/chat-server'
import { escapedErrors } from '../support/server'

// Issue 21: `nuxt dev` restarted on `[unhandledRejection] read ECONNRESET` when a chat tab closed
// or reloaded. Here clients reset their TCP connections (RST, not FIN) at every awkward moment
// against the production build; stopping the server (useChatServer's afterAll) fails the file
// if its output has any unhandled rejection or uncaught exception, and each test checks it too.

const chat = useChatServer()

function rawSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' }, () => resolve(socket))
    socket.once('error', reject)
  })
}

/** Writes, waits until the server has had the bytes (a short read pause), then resets. */
async function writeThenReset(socket: Socket, ...parts: (string | Buffer)[]) {
  socket.on('error', () => {})
  for (const part of parts) socket.write(part)
  // Until the server has read what we wrote: its answer, or nothing within 300 ms.
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 300)
    socket.once('data', () => {
      clearTimeout(timer)
      resolve()
    })
  })
  const closed = new Promise(resolve => socket.once('close', resolve))
  socket.resetAndDestroy()
  await closed
}

function upgradeHead(person: { client: { cookieHeader(): string, origin: string }, headers: Record<string, string> }) {
  const extra = Object.entries(person.headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')
  return 'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n'
    + `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n`
    + `Origin: ${person.client.origin}\r\nCookie: ${person.client.cookieHeader()}\r\n${extra}`
}

/** A masked client text frame header announcing `length` bytes (< 126). */
function frameHeader(length: number) {
  return Buffer.from([0x81, 0x80 | length, 1, 2, 3, 4])
}

async function stillServing() {
  const response = await fetch(`${chat.server.url}/api/health`)
  expect(response.status).toBe(200)
  expect(escapedErrors(chat.server.logs)).toEqual([])
}

describe('connections reset by the client', () => {
  it('mid-handshake: headers half sent, and sent whole with no wait for the answer', async () => {
    const person = await chat.person()
    const head = upgradeHead(person)
    for (let i = 0; i < 5; i++) {
      await writeThenReset(await rawSocket(chat.server.port), head.slice(0, head.length / 2))
      // The upgrade hook (session lookup) is still running when the reset arrives.
      const socket = await rawSocket(chat.server.port)
      socket.on('error', () => {})
      socket.write(`${head}\r\n`)
      socket.resetAndDestroy()
    }
    await stillServing()
  })

  it('mid-frame: an open chat socket reset inside a frame, header and payload', async () => {
    const person = await chat.person()
    for (let i = 0; i < 5; i++) {
      const socket = await rawSocket(chat.server.port)
      socket.on('error', () => {})
      const upgraded = new Promise<string>(resolve => socket.once('data', chunk => resolve(String(chunk))))
      socket.write(`${upgradeHead(person)}\r\n`)
      expect(await upgraded).toMatch(/^HTTP\/1.1 101/)
      await writeThenReset(socket, frameHeader(100), 'x'.repeat(i * 10))
    }
    await stillServing()
  })

  it('mid-body: requests whose bodies stop half-way, signed in and not', async () => {
    const person = await chat.person()
    const cookie = person.client.cookieHeader()
    for (const [path, headers] of [
      ['/api/auth/request-otp', ''],
      ['/api/contacts', `Cookie: ${cookie}\r\nX-CSRF-Token: ${person.client.cookies.get('natter_csrf') ?? ''}\r\n`]
    ] as const) {
      const head = `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: ${person.client.origin}\r\n${headers}`
        + 'Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n'
      await writeThenReset(await rawSocket(chat.server.port), head, '{"email": "a')
    }
    await stillServing()
  })
})
