import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPGliteDatabase, createPostgresDatabase, type DatabaseHandle } from '../../server/utils/database'
import { ensureMessagePartitions } from '../../server/utils/retention/partitions'
import { backendEnv, realServices, serviceUrls } from '../support/backends'
import { Client } from '../support/client'
import { startMailCatcher, type MailCatcher } from '../support/mail-catcher'
import { root } from '../support/paths'
import { pairUp, signedInPerson, type Person } from '../support/people'
import { startServer, type TestServer } from '../support/server'

const DAY = 86_400_000
// The server's embedded database is one process's: rows are backdated while it is stopped, so
// this runs the same on PGlite and on PostgreSQL.
const cwd = mkdtempSync(join(tmpdir(), 'natter-retention-'))
const env = { NATTER_TRUST_PROXY: '1', NATTER_CODE_RESEND_SECONDS: '0' }
let server: TestServer
let mail: MailCatcher
let a: Person, b: Person
let conversationId: string
// Ada's client since the last restart.
let ada: Client
// Bob and Ada take turns, Bob first; three of the five are past the seven days.
const sent = [
  { daysAgo: 10, body: 'ten days ago' },
  { daysAgo: 9, body: 'nine days ago' },
  { daysAgo: 8, body: 'eight days ago' },
  { daysAgo: 6, body: 'six days ago' },
  { daysAgo: 1 / 24, body: 'an hour ago' }
]
const kept = ['six days ago', 'an hour ago']

async function openDatabase(): Promise<DatabaseHandle> {
  return realServices ? createPostgresDatabase(serviceUrls.DATABASE_URL, 2) : createPGliteDatabase(join(cwd, '.data/db'))
}

async function start() {
  server = await startServer({ SMTP_URL: mail.url, ...env }, { cwd })
}

/** The same person after a restart: Redis, or the embedded store's key file, keeps the session. */
async function signInAgain(person: Person): Promise<Client> {
  const client = new Client(server.url)
  for (const [name, value] of person.client.cookies) client.cookies.set(name, value)
  return client
}

beforeAll(async () => {
  mail = await startMailCatcher()
  await start()
  a = await signedInPerson(server, mail, 'ada')
  b = await signedInPerson(server, mail, 'bob')
  conversationId = await pairUp(a, b)
  await server.stop()

  // Backdated messages, as a week of chatting would have left them.
  const database = await openDatabase()
  try {
    await ensureMessagePartitions(database.db, { fromDaysAgo: 10 })
    const now = Date.now()
    const rows = sent.map(({ daysAgo, body }, i) => ({
      id: randomUUID(),
      conversation_id: conversationId,
      seq: i + 1,
      sender_id: i % 2 ? a.id : b.id,
      client_id: randomUUID(),
      body,
      created_at: new Date(now - daysAgo * DAY)
    }))
    await database.db.insertInto('messages').values(rows).execute()
    await database.db.updateTable('conversations').set({ last_seq: rows.length, last_message_at: rows.at(-1)!.created_at }).where('id', '=', conversationId).execute()
  }
  finally {
    await database.close()
  }
  await start()
  ada = await signInAgain(a)
})

afterAll(async () => {
  await server?.stop()
  await mail?.close()
  rmSync(cwd, { recursive: true, force: true })
})

async function whatAdaSees(client: Client) {
  const bySeq = await client.get(`/api/conversations/${conversationId}/messages?after=0`)
  const byTime = await client.get(`/api/messages/${b.id}`)
  const contacts = await client.get('/api/contacts')
  expect([bySeq.status, byTime.status, contacts.status]).toEqual([200, 200, 200])
  const contact = contacts.body.find((row: any) => row.conversationId === conversationId)
  return {
    bySeq: bySeq.body.messages.map((m: any) => m.body),
    byTime: byTime.body.messages.map((m: any) => m.body),
    lastMessage: contact.lastMessage?.body,
    unread: contact.unread
  }
}

describe('retention through the server', () => {
  it('shows no expired message in history, resync or the contact list, before any purge', async () => {
    expect(await whatAdaSees(ada)).toEqual({
      bySeq: kept,
      byTime: kept,
      lastMessage: kept.at(-1),
      // Bob sent seq 1, 3 and 5; only 5 (an hour ago) is still there to be unread.
      unread: 1
    })
  })

  it('`npm run retention:run` purges them, and nobody sees a difference', async () => {
    const before = await whatAdaSees(ada)
    // The embedded database is one process's: stop the server for the script, as docs/retention.md says.
    if (!realServices) await server.stop()
    const { stdout } = await promisify(execFile)(join(root, 'node_modules/.bin/tsx'), ['scripts/retention-run.ts'], {
      cwd: root,
      env: { PATH: process.env.PATH, NATTER_DATA_DIR: join(cwd, '.data'), NATTER_LOG_LEVEL: 'warn', ...backendEnv() }
    })
    const summary = JSON.parse(stdout)
    expect(summary).toMatchObject({ database: realServices ? 'postgres' : 'pglite', retentionDays: 7 })
    expect(summary.skipped).toBeUndefined()
    if (!realServices) {
      // Alone on its database, the script's counts are this file's: three days dropped.
      expect(summary.partitionsDropped).toHaveLength(3)
      await start()
      ada = await signInAgain(a)
    }
    else {
      // The shared database may have had its purge from another file already: look at the rows.
      const database = await openDatabase()
      const left = await database.db.selectFrom('messages').select('body').where('conversation_id', '=', conversationId).orderBy('seq').execute()
      await database.close()
      expect(left.map(row => row.body)).toEqual(kept)
    }
    expect(await whatAdaSees(ada)).toEqual(before)
  }, 90_000)
})
