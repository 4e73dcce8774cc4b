import { NatterClient, type ClientOptions } from '#shared/sdk/client'
import { NodeTransport } from '#shared/sdk/node'
import { expect } from 'vitest'
import type { ServerFrame, ServerFrameType, StreamFrame } from '#shared/types/frames'
import type { Person } from './people'

/** A person's browser tab, as the page runs it: the protocol client on their session (and their proxied IP). */
export function natterOf(person: Person, options: Partial<ClientOptions> = {}): Tab {
  const transport = new NodeTransport(person.client.base, { cookies: person.client.cookies, headers: person.headers })
  const client = new NatterClient({ transport, userId: person.id, pingEveryMs: 5000, pongTimeoutMs: 5000, firstRetryMs: 100, maxRetryMs: 1000, ...options })
  return new Tab(client)
}

/** The protocol client with what it heard recorded, and a way to wait for what it has yet to hear. */
export class Tab {
  readonly heard: ServerFrame[] = []
  private readonly waiters = new Set<() => void>()

  constructor(readonly client: NatterClient) {
    for (const type of ['chat.receive', 'chat.ack', 'chat.update', 'change.ack', 'room.update', 'typing.update', 'read.update', 'presence.update', 'error'] as ServerFrameType[]) {
      client.on(type, (frame) => {
        this.heard.push(frame)
        this.waiters.forEach(wake => wake())
      })
    }
    client.onState(() => this.waiters.forEach(wake => wake()))
  }

  /** Connects and resolves once the socket is open. */
  async open() {
    this.client.start()
    await this.until(() => this.client.state === 'connected')
    return this
  }

  close() {
    this.client.stop()
  }

  /** The frames of one type heard so far (from `from` on). */
  frames<T extends ServerFrameType>(type: T, from = 0): Array<Extract<ServerFrame, { type: T }>> {
    return this.heard.slice(from).filter(frame => frame.type === type) as Array<Extract<ServerFrame, { type: T }>>
  }

  /** Waits for the first frame after `from` that matches; fails after `timeout` ms, naming what came. */
  async next<T extends ServerFrameType>(type: T, match: (frame: Extract<ServerFrame, { type: T }>) => boolean = () => true, { from = 0, timeout = 10_000 } = {}) {
    let found: Extract<ServerFrame, { type: T }> | undefined
    await this.until(() => !!(found = this.frames(type, from).find(match)), timeout, () => `no ${type} matching within ${timeout} ms; heard ${JSON.stringify(this.heard.slice(from)).slice(0, 2000)}`)
    return found!
  }

  /** Resolves when `condition` holds, re-checked after every frame and state change. */
  async until(condition: () => boolean, timeout = 10_000, why = () => `condition not met within ${timeout} ms`) {
    const deadline = Date.now() + timeout
    while (!condition()) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(why())
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer)
          this.waiters.delete(wake)
          resolve()
        }
        const timer = setTimeout(wake, Math.min(left, 250))
        this.waiters.add(wake)
      })
    }
  }
}

/**
 * A ping answered: every frame the server wrote to this socket before the pong has arrived. After
 * another socket of the same instance got frame X of one broadcast, this proves this socket got
 * whatever that broadcast had for it.
 */
export async function roundTrip(tab: Tab) {
  let answered = false
  const stop = tab.client.on('pong', () => {
    answered = true
  })
  try {
    expect(tab.client.send({ type: 'ping' })).toBe(true)
    await tab.until(() => answered, 10_000, () => 'no pong within 10 s')
  }
  finally {
    stop()
  }
}

export const isStream = (frame: ServerFrame): frame is StreamFrame => frame.type === 'chat.receive' || frame.type === 'chat.update' || frame.type === 'room.update'
/** A conversation's stream frames among those heard. */
export const streamOf = (frames: ServerFrame[], conversationId: string) => frames.filter(isStream).filter(frame => frame.conversationId === conversationId)
/** Every frame heard that names the conversation. */
export const aboutRoom = (frames: ServerFrame[], conversationId: string) => frames.filter(frame => 'conversationId' in frame && frame.conversationId === conversationId)
