import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_SEARCH_DEPTH, SearchAnswer, type SearchAnswerBody, type SearchResult } from '#shared/types/search'
import { createPGliteDatabase, createPostgresDatabase } from '../../server/utils/database'
import { ensureMessagePartitions } from '../../server/utils/retention/partitions'
import { realServices, serviceUrls } from '../support/backends'
import { Client, type Answer } from '../support/client'
import { startMailCatcher, type MailCatcher } from '../support/mail-catcher'
import { natterOf, roundTrip, type Tab } from '../support/natter'
import { pairUp, signedInPerson, type Person } from '../support/people'
import { startServer, type TestServer } from '../support/server'

const DAY = 86_400_000
/** Said in the room by Bob, one per language; what each search below finds. */
const languages = {
  en: 'The quarterly budget review is on Thursday',
  de: 'Die Straße ist gesperrt, wir müssen über die Brücke fahren',
  fr: 'Le café près de l\'église ouvre à huit heures',
  es: '¿Dónde está la estación de tren? Mañana salimos temprano',
  ru: 'Встреча перенесена на пятницу, проверьте календарь',
  zh: '我们明天在北京开会讨论预算',
  ja: '東京タワーの近くで待ち合わせしましょう'
}

// Both ways the database may read: a person's own messages one by one (what a person with few
// messages gets), and the word and trigram indexes first (past NATTER_SEARCH_SCAN_UP_TO).
describe.each([
  ['reading the person\'s messages', '20000'],
  ['through the indexes', '0']
])('search, %s', (_, scanUpTo) => {
  // Backdated rows are written while the server is stopped (the embedded database is one
  // process's), as in retention.test.ts, so this runs the same on PGlite and PostgreSQL.
  const cwd = mkdtempSync(join(tmpdir(), 'natter-search-'))
  let server: TestServer
  let mail: MailCatcher
  let ada: Person, bob: Person, cy: Person, eve: Person
  let direct: string
  let room: string
  const tabs: Tab[] = []
  // Bob's tab, open for the whole block.
  let b: Tab

  async function open(person: Person) {
    const tab = natterOf(person, { pingEveryMs: 60_000 })
    tabs.push(tab)
    await tab.open()
    await roundTrip(tab)
    return tab
  }

  async function say(tab: Tab, conversationId: string, body: string) {
    const entry = tab.client.sendMessage(conversationId, body)
    return tab.next('chat.ack', frame => frame.clientId === entry.clientId)
  }

  /** A search as the box sends it; waits out the per-person limit as a client must (Retry-After). */
  async function searchAs(person: Person, query: Record<string, string | number>): Promise<Answer> {
    const path = `/api/search?${new URLSearchParams(Object.entries(query).map(([name, value]) => [name, String(value)]))}`
    for (;;) {
      const answer = await person.client.get(path)
      if (answer.status !== 429) return answer
      await new Promise(resolve => setTimeout(resolve, Number(answer.headers.get('retry-after')) * 1000))
    }
  }

  async function found(person: Person, query: Record<string, string | number>): Promise<SearchAnswerBody> {
    const answer = await searchAs(person, query)
    expect(answer.status, JSON.stringify(answer.body)).toBe(200)
    return SearchAnswer.parse(answer.body)
  }

  /** The same person on the restarted server (a new port): the session outlives the restart. */
  function onRestarted(person: Person): Person {
    const client = new Client(server.url)
    for (const [name, value] of person.client.cookies) client.cookies.set(name, value)
    const request = client.request.bind(client)
    client.request = (method, path, body, options = {}) => request(method, path, body, { ...options, headers: { ...person.headers, ...options.headers } })
    return { ...person, client }
  }

  const bodies = async (person: Person, q: string, more: Record<string, string | number> = {}) => (await found(person, { q, ...more })).results.map(result => result.message.body)
  const marked = (result: SearchResult) => result.highlights.map(({ start, length }) => result.snippet.slice(start, start + length))

  // Two server starts, four sign-ins and ten messages: slow when the machine is shared.
  beforeAll(async () => {
    mail = await startMailCatcher()
    server = await startServer({ SMTP_URL: mail.url, NATTER_TRUST_PROXY: '1', NATTER_SEARCH_SCAN_UP_TO: scanUpTo }, { cwd })
    ;[ada, bob, cy, eve] = await Promise.all([signedInPerson(server, mail, 'ada'), signedInPerson(server, mail, 'bob'), signedInPerson(server, mail, 'cy'), signedInPerson(server, mail, 'eve')])
    direct = await pairUp(ada, bob)
    const created = await ada.client.post('/api/rooms', { name: 'Design', visibility: 'private', members: [bob.email, cy.email] })
    expect(created.status, JSON.stringify(created.body)).toBe(201)
    room = created.body.conversation.id
    await server.stop()

    // Eleven days ago, past the seven of retention: stored, but never to be found.
    const database = realServices ? createPostgresDatabase(serviceUrls.DATABASE_URL, 2) : await createPGliteDatabase(join(cwd, '.data/db'))
    try {
      await ensureMessagePartitions(database.db, { fromDaysAgo: 11 })
      const at = new Date(Date.now() - 11 * DAY)
      await database.db.insertInto('messages').values({ id: randomUUID(), conversation_id: direct, seq: 1, sender_id: bob.id, client_id: randomUUID(), body: 'the ancient zeppelin', created_at: at }).execute()
      await database.db.updateTable('conversations').set({ last_seq: 1, last_message_at: at }).where('id', '=', direct).execute()
    }
    finally {
      await database.close()
    }
    server = await startServer({ SMTP_URL: mail.url, NATTER_TRUST_PROXY: '1', NATTER_SEARCH_SCAN_UP_TO: scanUpTo }, { cwd })
    ada = onRestarted(ada)
    bob = onRestarted(bob)
    cy = onRestarted(cy)
    eve = onRestarted(eve)

    const [a, bobs] = await Promise.all([open(ada), open(bob)])
    b = bobs
    for (const body of Object.values(languages)) await say(b, room, body)
    await say(b, direct, 'a brand new zeppelin')
    await say(a, direct, 'the budget spreadsheet is at https://example.org/budget')
    await say(a, room, 'budget is fine by me')
  }, 180_000)

  afterAll(async () => {
    for (const tab of tabs.splice(0)) tab.close()
    await server?.stop()
    await mail?.close()
    rmSync(cwd, { recursive: true, force: true })
  })

  describe('languages', () => {
    it.each([
      ['English', 'budget review', languages.en, ['budget', 'review']],
      ['German, ß', 'Straße', languages.de, ['Straße']],
      ['German, umlauts, in any case', 'ÜBER brücke', languages.de, ['über', 'Brücke']],
      ['French, accents', 'café église', languages.fr, ['café', 'église']],
      ['Spanish', 'mañana estación', languages.es, ['estación', 'Mañana']],
      ['Russian', 'встреча пятницу', languages.ru, ['Встреча', 'пятницу']],
      ['Chinese, a substring', '北京', languages.zh, ['北京']],
      ['Chinese, two substrings', '预算 明天', languages.zh, ['明天', '预算']],
      ['Japanese katakana, a substring', 'タワー', languages.ja, ['タワー']],
      ['Japanese kanji and hiragana', '東京 しましょう', languages.ja, ['東京', 'しましょう']]
    ])('finds %s', async (_, q, body, words) => {
      const { results } = await found(bob, { q, conversationId: room })
      expect(results.map(result => result.message.body)).toEqual([body])
      expect(marked(results[0]!)).toEqual(words)
      expect(results[0]!.snippet).toBe(body)
      expect(results[0]!.conversation).toEqual({ id: room, kind: 'room', name: 'Design' })
    })

    it('does not stem: a word is found as written, not by a relative', async () => {
      expect(await bodies(bob, 'budgets', { conversationId: room })).toEqual([])
      expect(await bodies(bob, 'reviewed', { conversationId: room })).toEqual([])
    })

    it('matches the last word as a prefix, the one being typed, in any script with spaces', async () => {
      expect(await bodies(bob, 'quart', { conversationId: room })).toEqual([languages.en])
      expect(await bodies(bob, 'budget rev', { conversationId: room })).toEqual([languages.en])
      expect(await bodies(bob, 'Brü', { conversationId: room })).toEqual([languages.de])
      expect(await bodies(bob, 'календ', { conversationId: room })).toEqual([languages.ru])
      const { results } = await found(bob, { q: 'quart', conversationId: room })
      expect(marked(results[0]!)).toEqual(['quarterly'])
      // Only the last word: the others are whole words.
      expect(await bodies(bob, 'quart budget', { conversationId: room })).toEqual([])
    })

    it('understands quotes, -word and or', async () => {
      expect(await bodies(bob, '"budget review"', { conversationId: room })).toEqual([languages.en])
      expect(await bodies(bob, '"review budget"', { conversationId: room })).toEqual([])
      expect(await bodies(bob, 'budget -thursday', { conversationId: room })).toEqual(['budget is fine by me'])
      expect((await bodies(bob, 'пятницу or quarterly', { conversationId: room })).sort()).toEqual([languages.en, languages.ru].sort())
      expect(await bodies(bob, '東京 -タワー', { conversationId: room })).toEqual([])
    })

    it('ranks the better match first, newer first among equals, across conversations', async () => {
      const { results } = await found(ada, { q: 'budget' })
      expect(results.map(result => result.message.body)).toEqual(['budget is fine by me', 'the budget spreadsheet is at https://example.org/budget', languages.en])
      const spreadsheet = results[1]!
      expect(spreadsheet.conversation).toEqual({ id: direct, kind: 'direct', name: null })
      expect(spreadsheet.message).toMatchObject({ from: ada.id, to: bob.id, conversationId: direct, reactions: [], replyPreview: null })
      // The parser takes a link as one token ("example.org/budget"): its parts are not words.
      expect(marked(spreadsheet)).toEqual(['budget'])
      expect(spreadsheet.snippet).toBe('the budget spreadsheet is at https://example.org/budget')
    })
  })

  describe('snippets', () => {
    it('are the message\'s own text, tag-shaped words included, with the found words marked', async () => {
      const c = await open(cy)
      const body = 'Remember the quokka budget, <b>bold</b> and <script>alert(1)</script> quokka'
      await say(c, room, body)
      const { results } = await found(bob, { q: 'quokka', from: cy.id })
      expect(results[0]!.snippet).toBe(body)
      expect(marked(results[0]!)).toEqual(['quokka', 'quokka'])
      const { results: typed } = await found(bob, { q: 'quokka "bold" budg', from: cy.id })
      expect(marked(typed[0]!)).toEqual(['quokka', 'budget', 'bold', 'quokka'])
    })
  })

  describe('what a person may find', () => {
    it('never finds a conversation the person is not in', async () => {
      expect(await bodies(eve, 'budget')).toEqual([])
      expect(await bodies(eve, '北京')).toEqual([])
      expect(await bodies(eve, 'budget', { conversationId: room })).toEqual([])
    })

    it('stops finding a room\'s messages the moment its member leaves', async () => {
      expect(await bodies(cy, 'quarterly')).toEqual([languages.en])
      expect((await cy.client.post(`/api/rooms/${room}/leave`)).status).toBe(204)
      expect(await bodies(cy, 'quarterly')).toEqual([])
      expect(await bodies(cy, '東京')).toEqual([])
    })

    it('leaves a message request out until it is accepted', async () => {
      const dan = await signedInPerson(server, mail, 'dan')
      const opened = await dan.client.post('/api/contacts', { email: ada.email })
      expect(opened.status, JSON.stringify(opened.body)).toBe(201)
      await say(await open(dan), opened.body.conversationId, 'unsolicited lottery winnings')
      expect(await bodies(dan, 'lottery')).toEqual(['unsolicited lottery winnings'])
      expect(await bodies(ada, 'lottery')).toEqual([])
      expect((await ada.client.post(`/api/contacts/${dan.id}/accept`)).status).toBe(204)
      expect(await bodies(ada, 'lottery')).toEqual(['unsolicited lottery winnings'])
    })

    it('never finds a message older than retention, though it is still stored', async () => {
      expect(await bodies(ada, 'zeppelin')).toEqual(['a brand new zeppelin'])
      expect(await bodies(ada, 'ancient')).toEqual([])
    })

    it('never finds a deleted message, and finds an edited one by its new words only', async () => {
      const secret = await say(b, direct, 'the launch code is swordfish')
      const draft = await say(b, direct, 'meet me at the harbour')
      expect(await bodies(ada, 'swordfish')).toEqual(['the launch code is swordfish'])

      const removal = b.client.remove(secret.id)
      await b.next('change.ack', ack => ack.changeId === removal.changeId)
      const edit = b.client.edit(draft.id, 'meet me at the lighthouse')
      await b.next('change.ack', ack => ack.changeId === edit.changeId)

      expect(await bodies(ada, 'swordfish')).toEqual([])
      expect(await bodies(ada, 'harbour')).toEqual([])
      const { results } = await found(ada, { q: 'lighthouse' })
      expect(results.map(result => [result.message.id, result.message.body, !!result.message.editedAt])).toEqual([[draft.id, 'meet me at the lighthouse', true]])
    })
  })

  describe('filters', () => {
    it('narrows by conversation, sender, time and links; nothing has a file yet', async () => {
      expect(await bodies(ada, 'budget', { conversationId: direct })).toEqual(['the budget spreadsheet is at https://example.org/budget'])
      expect(await bodies(ada, 'budget', { from: bob.id })).toEqual([languages.en])
      expect(await bodies(ada, 'budget', { has: 'link' })).toEqual(['the budget spreadsheet is at https://example.org/budget'])
      expect(await bodies(ada, 'budget', { has: 'file' })).toEqual([])
      const english = await found(ada, { q: 'quarterly' })
      const at = english.results[0]!.message.timestamp
      expect(await bodies(ada, 'quarterly', { before: at })).toEqual([])
      expect(await bodies(ada, 'quarterly', { after: new Date(Date.parse(at) - 1).toISOString() })).toEqual([languages.en])
      expect(await bodies(ada, 'quarterly', { after: at })).toEqual([])
    })

    it('lists by filters alone, newest first, and refuses a search of nothing', async () => {
      const { results } = await found(ada, { from: ada.id })
      expect(results.map(result => result.message.body)).toEqual(['budget is fine by me', 'the budget spreadsheet is at https://example.org/budget'])
      expect(results[0]!.highlights).toEqual([])
      for (const q of ['', '   ']) {
        const answer = await searchAs(ada, { q })
        expect(answer.status).toBe(400)
        expect(answer.body.message).toBe('Type something to search for.')
      }
    })
  })

  describe('paging', () => {
    it('pages with an opaque cursor to the end, and refuses one it did not give', async () => {
      for (let i = 1; i <= 7; i++) await say(b, room, `pagination sample ${i}`)
      const seen: string[] = []
      let cursor: string | null = null
      let pages = 0
      do {
        const page: SearchAnswerBody = await found(bob, { q: 'pagination', limit: 3, ...(cursor && { cursor }) })
        seen.push(...page.results.map(result => result.message.body))
        cursor = page.next
        pages++
      } while (cursor)
      expect(pages).toBe(3)
      // Equal ranks: newest first.
      expect(seen).toEqual([7, 6, 5, 4, 3, 2, 1].map(i => `pagination sample ${i}`))

      for (const bad of ['nonsense', Buffer.from('o-3').toString('base64url'), Buffer.from(`o${MAX_SEARCH_DEPTH}`).toString('base64url'), 'x'.repeat(101)]) {
        expect((await searchAs(bob, { q: 'pagination', cursor: bad })).status).toBe(400)
      }
    })
  })

  describe('hostile searches', () => {
    it('answers 400 or an empty list to every operator and malformed query, quickly, never 500', async () => {
      const queries = [
        '!&|():*<->\'"\\', '"unbalanced', 'budget"', '((((budget', 'budget))))', '\'', ':*', '<->', '!', '&&&', '|||',
        'a:*b', '\'; drop table messages; --', '\u0000', 'budget\u0000', '%', '_', '\\', '-', '""', 'or', '-budget -or',
        '東京%_\\', '%東京_', '*:* & !a', 'a <2> b', 'budget:A', '\uD800', '🙂 budget', '"東京 タワー', 'x'.repeat(200),
        '!&|():*<->\'"\\'.repeat(15), 'a '.repeat(100)
      ]
      for (const q of queries) {
        const started = Date.now()
        const answer = await searchAs(ada, { q })
        expect([200, 400], `${JSON.stringify(q)}: ${JSON.stringify(answer.body)}`).toContain(answer.status)
        if (answer.status === 200) SearchAnswer.parse(answer.body)
        expect(Date.now() - started).toBeLessThan(3000)
      }
    })

    it('refuses 10,000 characters with 400', async () => {
      const answer = await searchAs(ada, { q: 'budget '.repeat(1500).slice(0, 10_000) })
      expect(answer.status).toBe(400)
      expect(answer.body.message).toMatch(/at most 200 characters/)
    })

    it('refuses malformed filters with 400', async () => {
      const malformed: Array<Record<string, string | number>> = [{ q: 'x', limit: 0 }, { q: 'x', limit: 51 }, { q: 'x', from: 'bob' }, { q: 'x', after: 'yesterday' }, { q: 'x', has: 'image' }, { q: 'x', conversationId: '1 or 1=1' }]
      for (const query of malformed) {
        expect((await searchAs(ada, query)).status, JSON.stringify(query)).toBe(400)
      }
      expect((await ada.client.get('/api/search?q=a&q=b')).status).toBe(400)
    })

    it('answers 401 to someone signed out', async () => {
      const answer = await new Client(server.url).get('/api/search?q=budget')
      expect(answer.status).toBe(401)
    })

    it('limits each person to 10 searches a second', async () => {
      const answers = await Promise.all(Array.from({ length: 25 }, () => eve.client.get('/api/search?q=budget')))
      const refused = answers.filter(answer => answer.status === 429)
      // 503: more searches at once than one instance runs (MAX_CONCURRENT_SEARCHES).
      expect(answers.filter(answer => ![200, 429, 503].includes(answer.status))).toEqual([])
      // A fixed window: a burst that straddles two of them gets at most twice the limit through.
      expect(answers.filter(answer => answer.status === 200).length).toBeLessThanOrEqual(20)
      expect(refused.length).toBeGreaterThanOrEqual(5)
      expect(Number(refused[0]!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    })
  })
})
