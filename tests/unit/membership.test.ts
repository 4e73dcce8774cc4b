import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { migrateToLatest } from '../../server/database/migrate'
import type { DatabaseHandle } from '../../server/utils/database'
import { applyMembership, directConversationOf, forgetMemberships, loadMemberships, localMembers, membershipOf, refreshMembership, type Membership } from '../../server/utils/realtime/membership'
import { realServices, testDatabase, uniqueName } from '../support/backends'

const ROOM: Membership = { kind: 'room', peer: null, open: true, incoming: false }

// The per-instance index of who is in what, against the database it is read from.
describe(`membership index (${realServices ? 'postgres' : 'pglite'})`, () => {
  let database: DatabaseHandle
  beforeAll(async () => {
    database = await testDatabase()
    await migrateToLatest(database.db)
  })
  afterAll(() => database.close())

  async function people(count: number): Promise<string[]> {
    const rows = await database.db.insertInto('users')
      .values(Array.from({ length: count }, () => ({ email: `${uniqueName('member')}@example.org`, display_name: 'M' })))
      .returning('id').execute()
    return rows.map(row => row.id)
  }

  async function room(...members: string[]): Promise<string> {
    const { id } = await database.db.insertInto('conversations').values({ kind: 'room', name: 'R', visibility: 'private', member_count: members.length }).returning('id').executeTakeFirstOrThrow()
    if (members.length) await database.db.insertInto('conversation_members').values(members.map(user_id => ({ conversation_id: id, user_id }))).execute()
    return id
  }

  async function direct(a: string, b: string): Promise<string> {
    const { id } = await database.db.insertInto('conversations').values({ kind: 'direct', direct_key: `${a}:${b}`, member_count: 2 }).returning('id').executeTakeFirstOrThrow()
    await database.db.insertInto('conversation_members').values([{ conversation_id: id, user_id: a }, { conversation_id: id, user_id: b }]).execute()
    return id
  }

  const isLocalMember = (conversationId: string, userId: string) => [...localMembers(conversationId)].includes(userId)

  it('reads a person\'s rooms and direct conversations once their first socket opens', async () => {
    const [ada, bob] = await people(2)
    const [kept, chat] = [await room(ada!, bob!), await direct(ada!, bob!)]
    await loadMemberships(database.db, ada!)
    expect(membershipOf(ada!, kept)).toEqual(ROOM)
    expect(membershipOf(ada!, chat)).toEqual({ kind: 'direct', peer: bob, open: true, incoming: false })
    expect(directConversationOf(ada!, bob!)).toBe(chat)
    expect(isLocalMember(kept, ada!)).toBe(true)
    // Bob has no socket here: nothing of his is kept, and what is heard about him is not either.
    applyMembership({ conversationId: kept, userId: bob!, membership: null })
    expect(membershipOf(bob!, kept)).toBeUndefined()
    expect(isLocalMember(kept, bob!)).toBe(false)
    forgetMemberships(ada!)
    expect(membershipOf(ada!, kept)).toBeUndefined()
    expect(isLocalMember(kept, ada!)).toBe(false)
  })

  it('applies the changes heard while a person\'s memberships are being loaded on top of what was read', async () => {
    const [ada, bob] = await people(2)
    const [left, stays, flips] = [await room(ada!, bob!), await room(ada!), await room(ada!)]
    const chat = await direct(ada!, bob!)
    const added = await room(bob!)
    const loading = loadMemberships(database.db, ada!)
    // Heard from the broadcast while the read is on its way: the database still says otherwise.
    applyMembership({ conversationId: left, userId: ada!, membership: null })
    applyMembership({ conversationId: added, userId: ada!, membership: ROOM })
    applyMembership({ conversationId: chat, userId: ada!, membership: { kind: 'direct', peer: bob!, open: false, incoming: false } })
    // In the order heard: removed, then added again.
    applyMembership({ conversationId: flips, userId: ada!, membership: null })
    applyMembership({ conversationId: flips, userId: ada!, membership: ROOM })
    // A second socket of hers opening meanwhile waits for the same read.
    await Promise.all([loading, loadMemberships(database.db, ada!)])

    expect(membershipOf(ada!, left)).toBeUndefined()
    expect(isLocalMember(left, ada!)).toBe(false)
    expect(membershipOf(ada!, stays)).toEqual(ROOM)
    expect(membershipOf(ada!, added)).toEqual(ROOM)
    expect(isLocalMember(added, ada!)).toBe(true)
    expect(membershipOf(ada!, flips)).toEqual(ROOM)
    expect(membershipOf(ada!, chat)).toMatchObject({ peer: bob, open: false })
    expect(directConversationOf(ada!, bob!)).toBe(chat)
    forgetMemberships(ada!)
  })

  it('keeps nothing of a person whose last socket closed while their memberships were being read', async () => {
    const [ada] = await people(1)
    const kept = await room(ada!)
    const loading = loadMemberships(database.db, ada!)
    forgetMemberships(ada!)
    await loading
    expect(membershipOf(ada!, kept)).toBeUndefined()
    expect(isLocalMember(kept, ada!)).toBe(false)
    // A socket opening again reads afresh.
    await loadMemberships(database.db, ada!)
    expect(membershipOf(ada!, kept)).toEqual(ROOM)
    forgetMemberships(ada!)
  })

  it('still keeps a person whose socket closed during the read if another one opened meanwhile', async () => {
    const [ada] = await people(1)
    const kept = await room(ada!)
    const first = loadMemberships(database.db, ada!)
    forgetMemberships(ada!)
    const second = loadMemberships(database.db, ada!)
    await Promise.all([first, second])
    expect(membershipOf(ada!, kept)).toEqual(ROOM)
    forgetMemberships(ada!)
  })

  it('lets a removal heard while one membership is read again win over what was read', async () => {
    const [ada] = await people(1)
    await loadMemberships(database.db, ada!)
    // She was added after her memberships were read; the "added" is still on its way here.
    const late = await room(ada!)
    const reading = refreshMembership(database.db, ada!, late)
    // Meanwhile the added and then her removal arrive, before the read's answer does.
    applyMembership({ conversationId: late, userId: ada!, membership: ROOM })
    applyMembership({ conversationId: late, userId: ada!, membership: null })
    expect(await reading).toBeUndefined()
    expect(membershipOf(ada!, late)).toBeUndefined()
    expect(isLocalMember(late, ada!)).toBe(false)
    // With nothing heard meanwhile, what was read is kept.
    expect(await refreshMembership(database.db, ada!, late)).toEqual(ROOM)
    expect(membershipOf(ada!, late)).toEqual(ROOM)
    forgetMemberships(ada!)
  })
})
