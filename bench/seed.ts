import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { createApi, isApiError } from '#shared/sdk/api'
import { NodeTransport } from '#shared/sdk/node'
import type { MailCatcher } from './support/mail'

/** One seeded person: the cookie a browser would hold after signing in, and their direct conversation. */
export interface BenchUser {
  id: string
  email: string
  /** `natter_session=…`, as the WebSocket upgrade expects it. */
  cookie: string
  /** The address the person's requests come from (X-Forwarded-For; the bench servers trust it). */
  ip: string
  partner: number
  conversationId: string
}

/** A conversation of the run: members are indices into the users; lastSeq is where its stream stands (-1: not known). */
export interface BenchConversation {
  id: string
  kind: 'direct' | 'room'
  members: number[]
  lastSeq: number
}

/** A room to make: its name and its members (indices into the users; the first one owns it). */
export interface RoomPlan {
  name: string
  members: number[]
}

export interface Seeded {
  users: BenchUser[]
  /** The direct conversations (one per pair), then the rooms in the order planned. */
  conversations: BenchConversation[]
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
const ipOf = (index: number) => `10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}`
const newUsers = (label: string, count: number): BenchUser[] => Array.from({ length: count }, (_, index) => ({ id: '', email: emailOf(label, index), cookie: '', ip: ipOf(index), partner: index ^ 1, conversationId: '' }))

function directConversations(users: BenchUser[]): BenchConversation[] {
  return users.flatMap((user, index) => index % 2 === 0 ? [{ id: user.conversationId, kind: 'direct' as const, members: [index, user.partner], lastSeq: 0 }] : [])
}

/**
 * Real services: people, their direct conversations (both sides accepted) and a session each,
 * made through the app's own services (findOrCreateUser, openDirectConversation, setDirectState,
 * createSession) on the PostgreSQL and Redis the server uses; rooms are rows written directly
 * (the room and its member rows; no room.update events, so their streams start at seq 1).
 * Users 2k and 2k+1 are each other's contact.
 */
export async function seedDirect(urls: ServiceUrls, count: number, label: string, rooms: RoomPlan[] = []): Promise<Seeded> {
  if (count % 2) throw new Error('an even number of users: they are paired')
  process.env.NATTER_LOG_LEVEL ??= 'warn'
  const started = performance.now()
  const { loadConfig } = await import('../server/utils/config')
  const { createBackends } = await import('../server/utils/backends')
  const { migrateToLatest } = await import('../server/database/migrate')
  const { findOrCreateUser } = await import('../server/utils/users')
  const { openDirectConversation, setDirectState } = await import('../server/utils/conversations/direct')
  const { createSession } = await import('../server/utils/sessions')
  // No KAFKA_BROKERS: seeding publishes nothing, so the in-process bus is enough here.
  const config = loadConfig({ ...urls, NATTER_SESSION_SECRET: 'seed-only-secret-that-is-long-enough-0123456789' }, false)
  const backends = await createBackends(config)
  const db = backends.database.db
  try {
    await migrateToLatest(db)
    const users = newUsers(label, count)
    await eachLimited(users, 8, async (user) => {
      user.id = (await findOrCreateUser(db, user.email)).user.id
      user.cookie = `natter_session=${(await createSession(backends.store, user.id)).token}`
    })
    await eachLimited(users.filter((_, index) => index % 2 === 0), 8, async (user) => {
      const partner = users[user.partner]!
      user.conversationId = partner.conversationId = await openDirectConversation(db, user.id, partner.id)
      // Opening leaves the partner 'invited' (a contact request): their sends would be refused.
      await setDirectState(db, user.conversationId, partner.id, 'active')
    })
    const conversations = directConversations(users)
    for (const room of rooms) {
      const id = await db.transaction().execute(async (trx) => {
        const { id } = await trx.insertInto('conversations')
          .values({ kind: 'room', name: room.name, topic: '', visibility: 'private', member_count: room.members.length, created_by: users[room.members[0]!]!.id })
          .returning('id')
          .executeTakeFirstOrThrow()
        await trx.insertInto('conversation_members')
          .values(room.members.map((member, rank) => ({ conversation_id: id, user_id: users[member]!.id, role: rank === 0 ? 'owner' as const : 'member' as const })))
          .execute()
        return id
      })
      conversations.push({ id, kind: 'room', members: room.members, lastSeq: 0 })
    }
    return { users, conversations, method: 'direct', seconds: (performance.now() - started) / 1000 }
  }
  finally {
    await backends.store.close()
    await backends.database.close()
    await backends.mailer.close()
  }
}

/** One person's REST client: the protocol client's own API over a Node transport, from their own address. */
function apiOf(base: string, ip: string, cookies = new Map<string, string>()) {
  const transport = new NodeTransport(base, { headers: { 'x-forwarded-for': ip }, cookies })
  return { transport, api: createApi(transport) }
}

async function call<T>(what: string, request: Promise<T>): Promise<T> {
  try {
    return await request
  }
  catch (error) {
    throw new Error(`${what}: ${isApiError(error) ? `${error.status} ${error.code}: ${error.message}` : String(error)}`, { cause: error })
  }
}

// POST /api/rooms names at most this many members at once; the rest join the (public) room.
const MEMBERS_AT_CREATION = 99

/**
 * Embedded backends: the sessions live inside the server process, so people sign in the real
 * way (request-otp, the code from the mail catcher, verify-otp), add each other through
 * POST /api/contacts and accept, and make rooms through POST /api/rooms and .../join. The server
 * runs with NATTER_TRUST_PROXY=1 and every person comes from their own X-Forwarded-For address,
 * so the per-IP limits hold per person.
 */
export async function seedViaHttp(base: string, mail: MailCatcher, count: number, label: string, rooms: RoomPlan[] = [], concurrency = 24): Promise<Seeded> {
  if (count % 2) throw new Error('an even number of users: they are paired')
  const started = performance.now()
  const users = newUsers(label, count)
  const apis: Array<ReturnType<typeof apiOf>['api']> = []
  await eachLimited(users, concurrency, async (user, index) => {
    const { transport, api } = apiOf(base, user.ip)
    apis[index] = api
    await call('request-otp', api('POST', '/api/auth/request-otp', { email: user.email }))
    const otp = await mail.codeFor(user.email)
    const verified = await call('verify-otp', api<{ user: { id: string } }>('POST', '/api/auth/verify-otp', { email: user.email, otp }))
    user.id = verified.user.id
    user.cookie = `natter_session=${transport.cookies.get('natter_session')}`
  })
  await eachLimited(users.filter((_, index) => index % 2 === 0), concurrency, async (user) => {
    const partner = users[user.partner]!
    const opened = await call('contacts', apis[users.indexOf(user)]!<{ conversationId: string }>('POST', '/api/contacts', { email: partner.email }))
    user.conversationId = partner.conversationId = opened.conversationId
    // The partner is 'invited' until they accept: their sends would be refused.
    await call('accept', apis[user.partner]!('POST', `/api/contacts/${user.id}/accept`))
  })
  const conversations = directConversations(users)
  for (const room of rooms) {
    const [owner, ...rest] = room.members
    const created = await call('rooms', apis[owner!]!<{ conversation: { id: string } }>('POST', '/api/rooms', { name: room.name, visibility: 'public', members: rest.slice(0, MEMBERS_AT_CREATION).map(member => users[member]!.email) }))
    const id = created.conversation.id
    await eachLimited(rest.slice(MEMBERS_AT_CREATION), concurrency, async (member) => {
      await call('join', apis[member]!('POST', `/api/rooms/${id}/join`))
    })
    const { conversation } = await call('room detail', apis[owner!]!<{ conversation: { lastSeq: number, memberCount: number } }>('GET', `/api/conversations/${id}`))
    if (conversation.memberCount !== room.members.length) throw new Error(`room ${room.name} has ${conversation.memberCount} members, not ${room.members.length}`)
    // The room's created/added/joined events took the first seqs: the stream goes on after them.
    conversations.push({ id, kind: 'room', members: room.members, lastSeq: conversation.lastSeq })
  }
  return { users, conversations, method: 'http', seconds: (performance.now() - started) / 1000 }
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
