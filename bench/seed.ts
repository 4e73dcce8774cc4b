import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import type { MailCatcher } from './support/mail'

/** One seeded person: the cookie a browser would hold after signing in, and their one contact. */
export interface BenchUser {
  id: string
  email: string
  /** `natter_session=…`, as the WebSocket upgrade expects it. */
  cookie: string
  partner: number
  conversationId: string
}

export interface Seeded {
  users: BenchUser[]
  method: 'direct' | 'http'
  seconds: number
}

export interface ServiceUrls {
  DATABASE_URL: string
  REDIS_URL: string
}

async function eachLimited<T>(items: T[], limit: number, work: (item: T, index: number) => Promise<void>) {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++
      await work(items[index]!, index)
    }
  }))
}

const emailOf = (label: string, index: number) => `${label}-${index}@bench.example.org`

/**
 * Real services: people, their direct conversations and a session each, made through the app's
 * own services (findOrCreateUser, openDirectConversation, createSession) on the PostgreSQL and
 * Redis the server uses. Users 2k and 2k+1 are each other's contact.
 */
export async function seedDirect(urls: ServiceUrls, count: number, label: string): Promise<Seeded> {
  if (count % 2) throw new Error('an even number of users: they are paired')
  process.env.NATTER_LOG_LEVEL ??= 'warn'
  const started = performance.now()
  const { loadConfig } = await import('../server/utils/config')
  const { createBackends } = await import('../server/utils/backends')
  const { migrateToLatest } = await import('../server/database/migrate')
  const { findOrCreateUser } = await import('../server/utils/users')
  const { openDirectConversation } = await import('../server/utils/conversations/direct')
  const { createSession } = await import('../server/utils/sessions')
  // No KAFKA_BROKERS: seeding publishes nothing, so the in-process bus is enough here.
  const config = loadConfig({ ...urls, NATTER_SESSION_SECRET: 'seed-only-secret-that-is-long-enough-0123456789' }, false)
  const backends = await createBackends(config)
  try {
    await migrateToLatest(backends.database.db)
    const users = Array.from({ length: count }, (_, index) => ({ id: '', email: emailOf(label, index), cookie: '', partner: index ^ 1, conversationId: '' }))
    await eachLimited(users, 8, async (user) => {
      user.id = (await findOrCreateUser(backends.database.db, user.email)).user.id
      user.cookie = `natter_session=${(await createSession(backends.store, user.id)).token}`
    })
    await eachLimited(users.filter((_, index) => index % 2 === 0), 8, async (user) => {
      const partner = users[user.partner]!
      user.conversationId = partner.conversationId = await openDirectConversation(backends.database.db, user.id, partner.id)
    })
    return { users, method: 'direct', seconds: (performance.now() - started) / 1000 }
  }
  finally {
    await backends.store.close()
    await backends.database.close()
    await backends.mailer.close()
  }
}

/** A browser-like client for the sign-in endpoints: a cookie jar, our Origin, its own address. */
class SignInClient {
  readonly cookies = new Map<string, string>()
  constructor(readonly base: string, readonly ip: string) {}

  cookieHeader() {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
  }

  async request(method: string, path: string, body?: unknown): Promise<{ status: number, body: any }> {
    const headers: Record<string, string> = { 'origin': this.base, 'x-forwarded-for': this.ip }
    if (this.cookies.size) headers.cookie = this.cookieHeader()
    if (method !== 'GET') headers['x-csrf-token'] = this.cookies.get('natter_csrf') ?? ''
    if (body !== undefined) headers['content-type'] = 'application/json'
    const response = await fetch(this.base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
    for (const cookie of response.headers.getSetCookie()) {
      const [pair] = cookie.split(';')
      const at = pair!.indexOf('=')
      this.cookies.set(pair!.slice(0, at).trim(), pair!.slice(at + 1))
    }
    const text = await response.text()
    return { status: response.status, body: text ? JSON.parse(text) : null }
  }
}

/**
 * Embedded backends: the sessions live inside the server process, so people sign in the real
 * way (request-otp, the code from the mail catcher, verify-otp) and add each other through
 * POST /api/contacts. The server runs with NATTER_TRUST_PROXY=1 and every person comes from their
 * own X-Forwarded-For address, so the per-IP code limit (20/hour) holds per person.
 */
export async function seedViaHttp(base: string, mail: MailCatcher, count: number, label: string, concurrency = 24): Promise<Seeded> {
  if (count % 2) throw new Error('an even number of users: they are paired')
  const started = performance.now()
  const users = Array.from({ length: count }, (_, index) => ({ id: '', email: emailOf(label, index), cookie: '', partner: index ^ 1, conversationId: '' }))
  const clients: SignInClient[] = []
  await eachLimited(users, concurrency, async (user, index) => {
    const client = new SignInClient(base, `10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}`)
    clients[index] = client
    const csrf = await client.request('GET', '/api/auth/csrf')
    if (csrf.status !== 200) throw new Error(`csrf answered ${csrf.status}`)
    const requested = await client.request('POST', '/api/auth/request-otp', { email: user.email })
    if (requested.status !== 202) throw new Error(`request-otp answered ${requested.status}: ${JSON.stringify(requested.body)}`)
    const otp = await mail.codeFor(user.email)
    const verified = await client.request('POST', '/api/auth/verify-otp', { email: user.email, otp })
    if (verified.status !== 200) throw new Error(`verify-otp answered ${verified.status}: ${JSON.stringify(verified.body)}`)
    user.id = verified.body.user.id
    user.cookie = `natter_session=${client.cookies.get('natter_session')}`
  })
  await eachLimited(users.filter((_, index) => index % 2 === 0), concurrency, async (user) => {
    const partner = users[user.partner]!
    const opened = await clients[users.indexOf(user)]!.request('POST', '/api/contacts', { email: partner.email })
    if (opened.status !== 201) throw new Error(`contacts answered ${opened.status}: ${JSON.stringify(opened.body)}`)
    user.conversationId = partner.conversationId = opened.body.conversationId
  })
  return { users, method: 'http', seconds: (performance.now() - started) / 1000 }
}

// `npm run bench:seed -- --users N`: seeds real services directly and writes the sessions to a file,
// for driving a server started by hand.
async function main() {
  const { values } = parseArgs({
    options: {
      users: { type: 'string', default: '100' },
      database: { type: 'string', default: process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/natter_bench_load' },
      redis: { type: 'string', default: process.env.REDIS_URL || 'redis://127.0.0.1:6379' }
    }
  })
  const count = Number(values.users)
  if (!Number.isInteger(count) || count < 2 || count > 200_000) throw new Error('--users: an even number from 2 to 200000')
  const { ensureDatabase } = await import('./support/servers')
  await ensureDatabase(values.database)
  const label = `seed-${Date.now().toString(36)}`
  const seeded = await seedDirect({ DATABASE_URL: values.database, REDIS_URL: values.redis }, count, label)
  const dir = join(import.meta.dirname, 'results')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `${label}.json`)
  writeFileSync(file, JSON.stringify(seeded, null, 2))
  console.log(`seeded ${count} users in ${count / 2} conversations with a session each in ${seeded.seconds.toFixed(1)} s: ${file}`)
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error) => {
    console.error(error)
    process.exit(1)
  })
}
