import { afterAll, beforeAll } from 'vitest'
import { realServices } from './backends'
import { Client } from './client'
import { startMailCatcher, type MailCatcher } from './mail-catcher'
import { signedInPerson, type Person } from './people'
import { residentMiB, startServer, type TestServer } from './server'
import { TestSocket, type Frame, type UpgradeOptions } from './socket'

/**
 * The servers an attack suite runs against, for the length of its file: one under `unit`, and
 * under `services` `instances` of them sharing PostgreSQL, Redis and Kafka, so that a limit is
 * shown to hold across processes. Each is behind a pretend proxy (people have their own address)
 * and mails through one real SMTP catcher. Sockets opened through it are closed at the end.
 */
export function useInstances(env: Record<string, string> = {}, instances = 2) {
  let servers: TestServer[] = []
  let mail: MailCatcher
  const sockets: TestSocket[] = []

  beforeAll(async () => {
    mail = await startMailCatcher()
    servers = await Promise.all(Array.from({ length: realServices ? instances : 1 }, () => startServer({ SMTP_URL: mail.url, NATTER_TRUST_PROXY: '1', ...env })))
  })
  afterAll(async () => {
    sockets.forEach(socket => socket.close())
    await Promise.all(servers.map(server => server.stop()))
    await mail?.close()
  })

  const at = (index: number) => servers[index % servers.length]!
  return {
    get servers() {
      return servers
    },
    get mail() {
      return mail
    },
    /** The instance of this index; under `unit`, the one server whatever the index. */
    at,
    /** The last instance: another process than the first under `services`, the same one under `unit`. */
    get other() {
      return servers.at(-1)!
    },
    person: (label = 'person', server = 0) => signedInPerson(at(server), mail, label),
    /** A socket of this person on this instance, open and past its first frames. */
    async open(person: Person, server: TestServer = at(0), options: UpgradeOptions = {}) {
      const socket = await TestSocket.open(onInstance(person, server), options)
      sockets.push(socket)
      await socket.roundTrip()
      return socket
    },
    /** Keeps a socket opened elsewhere to be closed at the end. */
    track(socket: TestSocket) {
      sockets.push(socket)
      return socket
    }
  }
}

/** The same person (session, address) talking to another instance. */
export function onInstance(person: Person, server: TestServer): Client {
  if (person.client.base === server.url) return person.client
  const client = new Client(server.url)
  for (const [name, value] of person.client.cookies) client.cookies.set(name, value)
  const request = client.request.bind(client)
  client.request = (method, path, body, options = {}) => request(method, path, body, { ...options, headers: { ...person.headers, ...options.headers } })
  return client
}

export { residentMiB }

/** Samples a process's resident memory while `work` runs; resolves with the highest value seen. */
export async function peakResident(pid: number, work: () => Promise<unknown>): Promise<number> {
  let peak = residentMiB(pid)
  const sampler = setInterval(() => {
    peak = Math.max(peak, residentMiB(pid))
  }, 10)
  try {
    await work()
  }
  finally {
    clearInterval(sampler)
  }
  return Math.max(peak, residentMiB(pid))
}

/** The frames of a socket after `from` that match. */
export const framesOf = (socket: TestSocket, match: (frame: Frame) => boolean, from = 0) => socket.frames.slice(from).filter(match)

export const errorOf = (code: string) => (frame: Frame) => frame.type === 'error' && frame.code === code

export const presenceOf = (userId: string) => (frame: Frame) => frame.type === 'presence.update' && frame.userId === userId

/** The time a ping takes to come back as a pong on this socket, in ms. */
export async function pingMs(socket: TestSocket): Promise<number> {
  const started = performance.now()
  await socket.roundTrip()
  return performance.now() - started
}

/** Retry-After of a refusal, in seconds. */
export const retryAfterOf = (headers: Record<string, string | string[] | undefined>) => Number(headers['retry-after'])
