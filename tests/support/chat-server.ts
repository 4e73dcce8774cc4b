import { afterAll, beforeAll } from 'vitest'
import { startMailCatcher, type MailCatcher } from './mail-catcher'
import { pairUp, signedInPerson, type Person } from './people'
import { startServer, type TestServer } from './server'
import { TestSocket } from './socket'

/**
 * One built server (behind a pretend proxy, so each person has their own IP) with a real SMTP
 * catcher for the sign-in codes, for the length of a test file; sockets opened through it are
 * closed at the end.
 */
export function useChatServer(env: Record<string, string> = {}) {
  let server: TestServer
  let mail: MailCatcher
  const sockets: TestSocket[] = []

  beforeAll(async () => {
    mail = await startMailCatcher()
    server = await startServer({ SMTP_URL: mail.url, NATTER_TRUST_PROXY: '1', ...env })
  })
  afterAll(async () => {
    sockets.forEach(socket => socket.close())
    await server.stop()
    await mail.close()
  })

  return {
    get server() {
      return server
    },
    get mail() {
      return mail
    },
    person: (label = 'person') => signedInPerson(server, mail, label),
    /** Two signed-in people who have each other as contacts. */
    async pair() {
      const a = await signedInPerson(server, mail, 'ada')
      const b = await signedInPerson(server, mail, 'bob')
      return { a, b, conversationId: await pairUp(a, b) }
    },
    /** A socket that has answered a ping: open, registered, and its first frames delivered. */
    async open(person: Person) {
      const socket = await TestSocket.open(person.client)
      sockets.push(socket)
      await socket.roundTrip()
      return socket
    }
  }
}
