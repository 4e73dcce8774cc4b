import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { migrateToLatest } from '../../server/database/migrate'
import type { DatabaseHandle } from '../../server/utils/database'
import { EXPORT_PAGE, exportOf } from '../../server/utils/own-data/export'
import { realServices, testDatabase } from '../support/backends'

describe(`export of my data (${realServices ? 'postgres' : 'pglite'})`, () => {
  let database: DatabaseHandle
  beforeAll(async () => {
    database = await testDatabase()
    await migrateToLatest(database.db)
  })
  afterAll(() => database.close())

  it('pages through more messages than a page holds, each once and in order, messages sharing a time too', async () => {
    const db = database.db
    const [me, other] = await db.insertInto('users')
      .values([{ email: `me-${randomUUID()}@example.org`, display_name: 'Me' }, { email: `other-${randomUUID()}@example.org`, display_name: 'Other' }])
      .returning('id').execute()
    const conversation = await db.insertInto('conversations').values({ kind: 'room', name: 'Big room' }).returning('id').executeTakeFirstOrThrow()
    await db.insertInto('conversation_members').values([
      { conversation_id: conversation.id, user_id: me!.id },
      { conversation_id: conversation.id, user_id: other!.id }
    ]).execute()
    const total = 2 * EXPORT_PAGE + 7
    const start = Date.now() - 3600_000
    // Three messages a microsecond: the keyset must break ties by id, or a page boundary loses or
    // repeats some; and times to the microsecond, finer than a JavaScript Date, so a cursor kept
    // as a Date would repeat the last message of every page.
    const at = (i: number) => `${new Date(start + Math.floor(i / 3)).toISOString().slice(0, -1)}${String((Math.floor(i / 3) * 7) % 1000).padStart(3, '0')}Z`
    const rows = Array.from({ length: total + 50 }, (_, i) => ({
      id: randomUUID(),
      conversation_id: conversation.id,
      seq: i + 1,
      sender_id: i < total ? me!.id : other!.id,
      client_id: randomUUID(),
      body: `message ${i}`,
      created_at: at(i)
    }))
    for (let i = 0; i < rows.length; i += 200) await db.insertInto('messages').values(rows.slice(i, i + 200)).execute()

    let text = ''
    for await (const chunk of exportOf(db, me!.id)) text += chunk
    const lines = text.trim().split('\n').map(line => JSON.parse(line))
    expect(lines[0]).toMatchObject({ type: 'profile', id: me!.id })
    expect(lines.filter(line => line.type === 'conversation')).toEqual([expect.objectContaining({ id: conversation.id, name: 'Big room', kind: 'room' })])
    const messages = lines.filter(line => line.type === 'message')
    expect(messages).toHaveLength(total)
    expect(new Set(messages.map(line => line.id)).size).toBe(total)
    expect(messages.every(line => line.body.startsWith('message ') && Number(line.body.slice(8)) < total)).toBe(true)
    const times = messages.map(line => Date.parse(line.createdAt))
    expect(times).toEqual([...times].sort((a, b) => a - b))
    expect(lines.at(-1)).toEqual({ type: 'end', conversations: 1, messages: total })
  })
})
