import { randomUUID } from 'node:crypto'
import { Client } from './client'
import type { MailCatcher } from './mail-catcher'
import type { TestServer } from './server'

export interface Person {
  client: Client
  id: string
  email: string
  /** What every request of theirs carries: their own address behind the pretend proxy. */
  headers: Record<string, string>
}

// Random start: with real Redis, per-IP sign-in counts outlive a test run.
let counter = Math.floor(Math.random() * 2 ** 24)

/** A signed-in person with their own (proxied) client IP, so sign-in throttles stay per person. */
export async function signedInPerson(server: TestServer, mail: MailCatcher, label = 'person'): Promise<Person> {
  const email = `${label}-${randomUUID().slice(0, 8)}@example.org`
  const client = new Client(server.url)
  const ip = `10.${(counter >> 16) & 255}.${(counter >> 8) & 255}.${counter++ & 255}`
  const request = client.request.bind(client)
  client.request = (method, path, body, options = {}) => request(method, path, body, { ...options, headers: { 'x-forwarded-for': ip, ...options.headers } })
  const user = await client.signIn(email, mail)
  return { client, id: user.id, email, headers: { 'x-forwarded-for': ip } }
}

/** Two people who have each other as contacts: a added b, and b accepted. */
export async function pairUp(a: Person, b: Person): Promise<string> {
  const opened = await a.client.post('/api/contacts', { email: b.email })
  if (opened.status !== 201) throw new Error(`contacts answered ${opened.status}: ${JSON.stringify(opened.body)}`)
  const accepted = await b.client.post(`/api/contacts/${a.id}/accept`)
  if (accepted.status !== 204) throw new Error(`accept answered ${accepted.status}: ${JSON.stringify(accepted.body)}`)
  return opened.body.conversationId
}
