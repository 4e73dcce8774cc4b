import { describe, expect, it } from 'vitest'
import { parseSearchText, resolveSearch, searchDay, searchTokenText, snippetParts, withSearchFilter, withoutSearchFilter, type SearchDirectory } from '../../utils/search'

const ME = { id: '00000000-0000-4000-8000-000000000001', name: 'Ada Lovelace', email: 'ada@example.com' }
const ALICE = { id: '00000000-0000-4000-8000-00000000000a', name: 'Alice Smith', email: 'alice@example.com' }
const ALINA = { id: '00000000-0000-4000-8000-00000000000b', name: 'Alina Petrova' }
const BOB = { id: '00000000-0000-4000-8000-00000000000c', name: 'Bob Marley', email: 'bob@example.org' }
const ZOE = { id: '00000000-0000-4000-8000-00000000000d', name: 'Zoë Ünal' }
const DESIGN = { id: '00000000-0000-4000-8000-0000000000d1', kind: 'room' as const, name: 'design' }
const DESIGN_OPS = { id: '00000000-0000-4000-8000-0000000000d2', kind: 'room' as const, name: 'design ops' }
const TEAM = { id: '00000000-0000-4000-8000-0000000000d3', kind: 'room' as const, name: 'team chat' }
const WITH_BOB = { id: '00000000-0000-4000-8000-0000000000e1', kind: 'direct' as const, name: 'Bob Marley', peer: BOB }

const directory: SearchDirectory = {
  me: ME,
  // Bob twice (a contact and a room member): one person, not an ambiguity.
  people: [ALICE, ALINA, BOB, { id: BOB.id, name: 'Bob Marley' }, ZOE],
  conversations: [DESIGN, DESIGN_OPS, TEAM, WITH_BOB]
}

const resolve = (text: string) => resolveSearch(parseSearchText(text), directory)

describe('parseSearchText', () => {
  it('takes the filters out and keeps the words, quotes and operators as written', () => {
    const parsed = parseSearchText('budget from:alice "final draft" -old in:#design or Has:LINK')
    expect(parsed.words).toBe('budget "final draft" -old or')
    expect(parsed.tokens.map(({ key, value }) => [key, value])).toEqual([['from', 'alice'], ['in', '#design'], ['has', 'LINK']])
  })

  it('knows where each filter stands in the text', () => {
    const text = 'x from:alice y'
    const [token] = parseSearchText(text).tokens
    expect(text.slice(token!.start, token!.end)).toBe('from:alice')
  })

  it('reads quoted values with spaces, and a phrase with a minus as one word', () => {
    const parsed = parseSearchText('from:"Alice Smith" in:#"team chat" -"not this" tail')
    expect(parsed.tokens.map(token => token.value)).toEqual(['Alice Smith', '#team chat'])
    expect(parsed.words).toBe('-"not this" tail')
  })

  it('leaves words that only look like filters alone', () => {
    const parsed = parseSearchText('https://example.com to:bob fromage "from:quoted"')
    expect(parsed.tokens).toEqual([])
    expect(parsed.words).toBe('https://example.com to:bob fromage "from:quoted"')
  })

  it('survives an unbalanced quote', () => {
    const parsed = parseSearchText('hello "world from:bob')
    expect(parsed.words).toBe('hello "world from:bob')
    expect(parsed.tokens).toEqual([])
  })

  it('keeps a filter being typed as an empty one', () => {
    expect(parseSearchText('plans from:').tokens).toEqual([{ key: 'from', value: '', start: 6, end: 11 }])
  })
})

describe('resolveSearch', () => {
  it('sends the words alone as q, one space between them (a trailing space asks nothing new)', () => {
    expect(resolve('  budget  review ').params).toEqual({ q: 'budget review' })
  })

  it('sends nothing for an empty box', () => {
    expect(resolve('   ').params).toBeNull()
  })

  it('finds a person by the start of their name or address, any case and accent', () => {
    expect(resolve('from:ALICE').params).toEqual({ q: '', from: ALICE.id })
    expect(resolve('from:bob@example.org').params?.from).toBe(BOB.id)
    expect(resolve('from:zoe').params?.from).toBe(ZOE.id)
    expect(resolve('from:"alice smith"').chips[0]!.label).toBe('From: Alice Smith')
  })

  it('finds a person by a later word of their name when nothing starts with it', () => {
    expect(resolve('from:marley').params?.from).toBe(BOB.id)
  })

  it('knows me', () => {
    const resolved = resolve('from:me plans')
    expect(resolved.params).toEqual({ q: 'plans', from: ME.id })
    expect(resolved.chips[0]!.label).toBe('From: you')
  })

  it('shows an unknown person as a chip in error and sends nothing', () => {
    const resolved = resolve('from:alicia budget')
    expect(resolved.params).toBeNull()
    expect(resolved.chips).toMatchObject([{ key: 'from', error: 'No one called alicia' }])
  })

  it('asks which one when a name fits several people', () => {
    const resolved = resolve('from:ali')
    expect(resolved.params).toBeNull()
    expect(resolved.chips[0]!.error).toBe('ali could be “Alice Smith” or “Alina Petrova”')
  })

  it('prefers an exact name to a longer one', () => {
    expect(resolve('in:#design').params?.conversationId).toBe(DESIGN.id)
    expect(resolve('in:#"design ops"').params?.conversationId).toBe(DESIGN_OPS.id)
    expect(resolve('in:#des').chips[0]!.error).toBe('#des could be “#design” or “#design ops”')
  })

  it('finds a direct conversation by the other person', () => {
    expect(resolve('in:@bob').params?.conversationId).toBe(WITH_BOB.id)
    expect(resolve('in:@bob').chips[0]!.label).toBe('In: Bob Marley')
    expect(resolve('in:team').params?.conversationId).toBe(TEAM.id)
    expect(resolve('in:#nowhere').chips[0]!.error).toBe('No room called #nowhere')
    expect(resolve('in:@alice').chips[0]!.error).toBe('No chat with alice')
  })

  it('turns days into the reader\'s local midnights: before the day, after including it', () => {
    const resolved = resolve('after:2026-10-01 before:2026-11-01')
    expect(resolved.params).toEqual({ q: '', after: new Date(2026, 9, 1).toISOString(), before: new Date(2026, 10, 1).toISOString() })
  })

  it('refuses what is no date, and a range that ends before it starts', () => {
    expect(resolve('before:2026-02-30').chips[0]!.error).toMatch(/is not a date/)
    expect(resolve('before:yesterday').params).toBeNull()
    expect(resolve('after:2026-11-01 before:2026-11-01').chips[1]!.error).toBe('before: must be later than after:')
    expect(searchDay('2028-02-29')).toEqual(new Date(2028, 1, 29))
  })

  it('knows has:link and has:file only', () => {
    expect(resolve('has:link').params).toEqual({ q: '', has: 'link' })
    expect(resolve('has:files').params).toEqual({ q: '', has: 'file' })
    expect(resolve('has:video').chips[0]!.error).toBe('has: is link or file')
  })

  it('refuses a second filter of one kind rather than dropping one', () => {
    expect(resolve('from:alice from:bob').chips[1]!.error).toBe('Only one from: at a time')
    expect(resolve('has:link has:file').params).toBeNull()
  })

  it('shows a filter being typed without an error and searches the rest', () => {
    const resolved = resolve('plans from:')
    expect(resolved.chips).toMatchObject([{ key: 'from', pending: true, error: null }])
    expect(resolved.params).toEqual({ q: 'plans' })
    expect(resolve('plans in:#').params).toEqual({ q: 'plans' })
  })

  it('refuses words longer than the server takes', () => {
    const resolved = resolveSearch(parseSearchText('a'.repeat(201)), directory)
    expect(resolved.params).toBeNull()
    expect(resolved.error).toBe('A search is at most 200 characters.')
  })

  it('treats a hostile name as a name', () => {
    const resolved = resolve('from:<img/src=x> in:#"\u202Eevil"')
    expect(resolved.params).toBeNull()
    expect(resolved.chips.map(chip => chip.error)).toEqual(['No one called <img/src=x>', 'No room called #\u202Eevil'])
  })
})

describe('picking and removing filters in the text', () => {
  it('writes a picked filter in front, quoted when it has spaces', () => {
    expect(withSearchFilter('budget', 'from', 'Alice Smith')).toBe('from:"Alice Smith" budget')
    expect(withSearchFilter('', 'has', 'link')).toBe('has:link ')
    expect(searchTokenText('in', '#team chat')).toBe('in:#"team chat"')
  })

  it('replaces the filter of that kind already there', () => {
    expect(withSearchFilter('x from:bob y', 'from', 'alice@example.com')).toBe('x from:alice@example.com y')
  })

  it('removes a filter and the space it leaves', () => {
    const text = 'budget from:alice review'
    const [token] = parseSearchText(text).tokens
    expect(withoutSearchFilter(text, token!.start, token!.end)).toBe('budget review')
    expect(withoutSearchFilter('from:alice', 0, 10)).toBe('')
  })

  it('round-trips what it writes', () => {
    const text = withSearchFilter(withSearchFilter('q', 'in', '#team chat'), 'from', 'Alice Smith')
    expect(resolveSearch(parseSearchText(text), directory).params).toEqual({ q: 'q', from: ALICE.id, conversationId: TEAM.id })
  })
})

describe('snippetParts', () => {
  it('marks the highlighted words and keeps the rest as text', () => {
    expect(snippetParts('the budget is final', [{ start: 4, length: 6 }])).toEqual([
      { text: 'the ', mark: false },
      { text: 'budget', mark: true },
      { text: ' is final', mark: false }
    ])
  })

  it('keeps markup as text', () => {
    const parts = snippetParts('<b>bold</b>', [{ start: 3, length: 4 }])
    expect(parts.map(part => part.text).join('')).toBe('<b>bold</b>')
    expect(parts[1]).toEqual({ text: 'bold', mark: true })
  })

  it('counts in UTF-16 as the server does', () => {
    expect(snippetParts('😀 café', [{ start: 3, length: 4 }])).toEqual([{ text: '😀 ', mark: false }, { text: 'café', mark: true }])
  })

  it('clamps, orders and merges offsets it cannot trust', () => {
    expect(snippetParts('abcdef', [{ start: 4, length: 10 }, { start: 0, length: 2 }, { start: 1, length: 2 }, { start: 99, length: 1 }])).toEqual([
      { text: 'abc', mark: true },
      { text: 'd', mark: false },
      { text: 'ef', mark: true }
    ])
  })
})
