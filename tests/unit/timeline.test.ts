import { describe, expect, it } from 'vitest'
import type { RoomUpdate } from '#shared/types/conversations'
import type { ChatMessage } from '#shared/types/messages'
import type { OutboxEntry } from '#shared/sdk/outbox'
import { phraseText, roomLine, typingLine } from '../../utils/phrases'
import { mergeBySeq, seenBy, unsentShown } from '../../utils/timeline'

const ADA = '00000000-0000-4000-8000-00000000000a'
const BOB = '00000000-0000-4000-8000-00000000000b'
const CY = '00000000-0000-4000-8000-00000000000c'
const names = { [ADA]: 'Ada', [BOB]: 'Bob', [CY]: 'Cy' }

function update(change: Partial<RoomUpdate> & Pick<RoomUpdate, 'change'>): RoomUpdate {
  return { type: 'room.update', conversationId: crypto.randomUUID(), seq: 1, names, timestamp: new Date().toISOString(), ...change }
}

const line = (change: Partial<RoomUpdate> & Pick<RoomUpdate, 'change'>, previousName?: string | null) => phraseText(roomLine(update(change), previousName))

describe('the timeline line of a room change', () => {
  it('says who did what, with the names the frame carries', () => {
    expect(line({ change: 'created', by: ADA, userId: ADA, name: 'Design' })).toBe('Ada created the room')
    expect(line({ change: 'added', by: ADA, userId: BOB })).toBe('Ada added Bob')
    expect(line({ change: 'joined', userId: BOB })).toBe('Bob joined')
    expect(line({ change: 'left', userId: CY })).toBe('Cy left')
    expect(line({ change: 'removed', by: ADA, userId: CY })).toBe('Ada removed Cy')
    expect(line({ change: 'renamed', by: ADA, name: 'Design team', topic: '' })).toBe('Ada renamed the room to Design team')
    expect(line({ change: 'role', by: ADA, userId: BOB, role: 'admin' })).toBe('Ada made Bob an admin')
    expect(line({ change: 'role', by: ADA, userId: BOB, role: 'member' })).toBe('Ada made Bob a member')
    // An owner who leaves hands the room on; nobody did that to the heir.
    expect(line({ change: 'role', userId: BOB, role: 'owner' })).toBe('Bob is now the owner')
  })

  it('tells a topic change from a rename when the name before is known', () => {
    expect(line({ change: 'renamed', by: ADA, name: 'Design', topic: 'Pixels' }, 'Design')).toBe('Ada changed the topic to Pixels')
    expect(line({ change: 'renamed', by: ADA, name: 'Design', topic: '' }, 'Design')).toBe('Ada removed the topic')
    expect(line({ change: 'renamed', by: ADA, name: 'Craft', topic: '' }, 'Design')).toBe('Ada renamed the room to Craft')
  })

  it('keeps every name apart from the words, and says "Someone" for a name it lacks', () => {
    const phrase = roomLine(update({ change: 'added', by: ADA, userId: crypto.randomUUID() }))
    expect(phrase).toEqual([{ name: 'Ada' }, ' added ', { name: 'Someone' }])
    expect(roomLine(update({ change: 'renamed', by: ADA, name: '\u202Eevil', topic: '' }))).toContainEqual({ name: '\u202Eevil' })
  })
})

describe('the typing line', () => {
  it('names one or two typists, and no more than two', () => {
    expect(typingLine([])).toEqual([])
    expect(phraseText(typingLine(['Ada']))).toBe('Ada is typing…')
    expect(phraseText(typingLine(['Ada', 'Bob']))).toBe('Ada and Bob are typing…')
    expect(phraseText(typingLine(['Ada', 'Bob', 'Cy']))).toBe('Several people are typing…')
    expect(phraseText(typingLine(Array.from({ length: 40 }, (_, index) => `Person ${index}`)))).toBe('Several people are typing…')
  })
})

describe('"Seen by"', () => {
  const readers = [
    { userId: ADA, name: 'Ada', readSeq: 9 },
    { userId: BOB, name: 'Bob', readSeq: 7 },
    { userId: CY, name: 'Cy', readSeq: 6 },
    { userId: crypto.randomUUID(), name: 'Dee', readSeq: null }
  ]

  it('counts the others whose watermark reached the message, never me, never a private reader', () => {
    expect(seenBy(readers, ADA, 7)).toEqual(['Bob'])
    expect(seenBy(readers, ADA, 6)).toEqual(['Bob', 'Cy'])
    expect(seenBy(readers, ADA, 8)).toEqual([])
    expect(seenBy(readers, BOB, 6)).toEqual(['Ada', 'Cy'])
  })
})

function message(seq: number, from: string, body: string): ChatMessage {
  return { id: crypto.randomUUID(), conversationId: '', seq, from, to: null, body, timestamp: '', replyTo: null, attachments: [], mentions: [] }
}

function entry(body: string, afterSeq: number, attempts: number, extra: Partial<OutboxEntry> = {}): OutboxEntry {
  return { clientId: crypto.randomUUID(), conversationId: '', body, createdAt: '', afterSeq, state: 'sending', attempts, ...extra }
}

describe('merging a conversation by seq', () => {
  it('keeps seq order and each seq once, whatever order the pages and frames come in', () => {
    const held: Array<{ seq: number, from: string }> = []
    expect(mergeBySeq(held, [{ seq: 5, from: 'page' }, { seq: 6, from: 'page' }])).toBe(2)
    expect(mergeBySeq(held, [{ seq: 8, from: 'frame' }, { seq: 7, from: 'frame' }])).toBe(2)
    expect(mergeBySeq(held, [{ seq: 1, from: 'older' }, { seq: 6, from: 'resync' }])).toBe(1)
    expect(held).toEqual([{ seq: 1, from: 'older' }, { seq: 5, from: 'page' }, { seq: 6, from: 'resync' }, { seq: 7, from: 'frame' }, { seq: 8, from: 'frame' }])
  })
})

describe('an unsent message beside the stored ones', () => {
  it('shows once: its stored copy stands in for it when the ack was lost', () => {
    const sent = entry('hello', 3, 1)
    const stored = [message(4, ADA, 'hello')]
    expect(unsentShown([sent], stored, new Set(), ADA)).toEqual([])
    // A copy stored before the entry was written is another message with the same words.
    expect(unsentShown([entry('hello', 4, 1)], stored, new Set(), ADA)).toHaveLength(1)
    // Never sent, or refused: nothing on the server can be it.
    expect(unsentShown([entry('hello', 3, 0, { state: 'queued' })], stored, new Set(), ADA)).toHaveLength(1)
    expect(unsentShown([entry('hello', 3, 1, { state: 'failed', errorCode: 'forbidden' })], stored, new Set(), ADA)).toHaveLength(1)
    // A copy acknowledged here belongs to its own entry; someone else's words are not mine.
    expect(unsentShown([sent], stored, new Set([stored[0]!.id]), ADA)).toHaveLength(1)
    expect(unsentShown([sent], [message(4, BOB, 'hello')], new Set(), ADA)).toHaveLength(1)
  })

  it('pairs two equal messages with two copies, one each', () => {
    const twice = [entry('ok', 1, 1), entry('ok', 1, 1)]
    expect(unsentShown(twice, [message(2, ADA, 'ok')], new Set(), ADA)).toEqual([twice[1]])
    expect(unsentShown(twice, [message(2, ADA, 'ok'), message(3, ADA, 'ok')], new Set(), ADA)).toEqual([])
  })
})
