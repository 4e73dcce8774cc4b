import { WebSocket } from 'ws'
import type { Client } from './client'

export interface Frame { type: string, [key: string]: any }

/** A chat socket as a browser opens it: session cookie, our Origin; frames are collected in order. */
export class TestSocket {
  readonly frames: Frame[] = []
  private waiters = new Set<() => void>()
  closed?: { code: number, reason: string }

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.frames.push(JSON.parse(String(data)))
      this.waiters.forEach(wake => wake())
    })
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: String(reason) }
      this.waiters.forEach(wake => wake())
    })
  }

  static async open(client: Client, options: { origin?: string, cookie?: string } = {}): Promise<TestSocket> {
    const ws = new WebSocket(client.base.replace(/^http/, 'ws') + '/ws', {
      headers: { origin: options.origin ?? client.origin, cookie: options.cookie ?? client.cookieHeader() }
    })
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)))
      ws.once('error', reject)
    })
    return new TestSocket(ws)
  }

  /** The status an upgrade is refused with, or 101 when it is accepted. */
  static async upgradeStatus(client: Client, options: { origin?: string, cookie?: string } = {}): Promise<number> {
    try {
      const socket = await TestSocket.open(client, options)
      socket.close()
      return 101
    }
    catch (error) {
      return Number(String(error).match(/refused: (\d+)/)?.[1] ?? 0)
    }
  }

  send(frame: unknown) {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
  }

  /** Waits for the first frame after `from` that matches; fails after `timeout` ms. */
  async next(match: (frame: Frame) => boolean, { from = 0, timeout = 10_000 } = {}): Promise<Frame> {
    const deadline = Date.now() + timeout
    for (;;) {
      const found = this.frames.slice(from).find(match)
      if (found) return found
      if (this.closed) throw new Error(`socket closed (${this.closed.code} ${this.closed.reason}) before the frame came; got ${JSON.stringify(this.frames.slice(from))}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no matching frame within ${timeout} ms; got ${JSON.stringify(this.frames.slice(from))}`)
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer)
          this.waiters.delete(wake)
          resolve()
        }
        const timer = setTimeout(wake, left)
        this.waiters.add(wake)
      })
    }
  }

  /** Sends a ping and waits for its pong: proves the connection is open and every earlier frame was handled. */
  async roundTrip() {
    const from = this.frames.length
    this.send({ type: 'ping' })
    await this.next(frame => frame.type === 'pong', { from })
  }

  close() {
    this.ws.close()
  }

  async closedWith(timeout = 10_000) {
    const deadline = Date.now() + timeout
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('socket did not close')
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50)
        this.waiters.add(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    return this.closed
  }
}
