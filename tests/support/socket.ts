import { WebSocket } from 'ws'
import type { Client } from './client'

export interface Frame { type: string, [key: string]: any }

export interface UpgradeOptions { origin?: string, cookie?: string, headers?: Record<string, string> }

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
    // A reset (the server hung up mid-send) is followed by 'close', which records it.
    ws.on('error', () => {})
  }

  /** `headers` are added to the upgrade request (a proxy's X-Forwarded-For, say). */
  static async open(client: Client, options: UpgradeOptions = {}): Promise<TestSocket> {
    const { status, socket } = await TestSocket.attempt(client, options)
    if (!socket) throw new Error(`upgrade refused: ${status}`)
    return socket
  }

  /** An upgrade as it went: the open socket (status 101), or the refusal's status and headers. */
  static async attempt(client: Client, options: UpgradeOptions = {}): Promise<{ status: number, headers: Record<string, string | string[] | undefined>, socket?: TestSocket }> {
    const ws = new WebSocket(client.base.replace(/^http/, 'ws') + '/ws', {
      headers: { ...options.headers, origin: options.origin ?? client.origin, cookie: options.cookie ?? client.cookieHeader() }
    })
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve({ status: 101, headers: {}, socket: new TestSocket(ws) }))
      ws.once('unexpected-response', (_req, res) => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers })
        res.resume()
        ws.terminate()
      })
      ws.once('error', reject)
    })
  }

  /** The status an upgrade is refused with, or 101 when it is accepted. */
  static async upgradeStatus(client: Client, options: UpgradeOptions = {}): Promise<number> {
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
