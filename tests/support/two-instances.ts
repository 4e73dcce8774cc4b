import { afterAll, afterEach, beforeAll } from 'vitest'
import type { WebSocket } from 'ws'
import type { SocketLike } from '#shared/sdk/api'
import { NatterClient } from '#shared/sdk/client'
import { NodeTransport } from '#shared/sdk/node'
import type { ServerFrame } from '#shared/types/frames'
import { startMailCatcher, type MailCatcher } from './mail-catcher'
import { roundTrip, Tab } from './natter'
import type { Person } from './people'
import { startServer, type TestServer } from './server'

/** A Node transport that also keeps every frame its socket got, before the client orders or drops any. */
class WireTransport extends NodeTransport {
  readonly wire: ServerFrame[] = []

  override openSocket(path: string): SocketLike {
    const socket = super.openSocket(path) as unknown as WebSocket
    socket.addEventListener('message', event => this.wire.push(JSON.parse(String(event.data)) as ServerFrame))
    return socket as unknown as SocketLike
  }
}

export type WireTab = Tab & { wire: ServerFrame[] }

/**
 * Two app processes on one PostgreSQL, Redis and Kafka, with one mail catcher for both, for the
 * length of a test file; tabs opened through `tabOn` close after each test.
 */
export function useTwoInstances() {
  let one: TestServer
  let two: TestServer
  let mail: MailCatcher
  const tabs: WireTab[] = []

  beforeAll(async () => {
    mail = await startMailCatcher()
    ;[one, two] = await Promise.all([
      startServer({ SMTP_URL: mail.url, NATTER_TRUST_PROXY: '1' }),
      startServer({ SMTP_URL: mail.url, NATTER_TRUST_PROXY: '1' })
    ])
  })
  afterEach(() => {
    for (const tab of tabs.splice(0)) tab.close()
  })
  afterAll(async () => {
    await Promise.all([one.stop(), two.stop()])
    await mail.close()
  })

  return {
    get one() {
      return one
    },
    get two() {
      return two
    },
    get mail() {
      return mail
    },
    /** A person's tab on the given instance, open, its socket's opening finished on the server. */
    async tabOn(server: TestServer, person: Person, outbox?: { perSecond: number, burst: number }): Promise<WireTab> {
      const transport = new WireTransport(server.url, { cookies: person.client.cookies, headers: person.headers })
      const client = new NatterClient({ transport, userId: person.id, pingEveryMs: 60_000, pongTimeoutMs: 10_000, firstRetryMs: 100, maxRetryMs: 1000, outbox })
      const tab = Object.assign(new Tab(client), { wire: transport.wire })
      tabs.push(tab)
      await tab.open()
      await roundTrip(tab)
      return tab
    }
  }
}
