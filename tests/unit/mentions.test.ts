import { describe, expect, it } from 'vitest'
import { fromTokens, mentionQuery, splitMentions, toTokens } from '../../utils/mentions'

const ADA = '00000000-0000-4000-8000-00000000000a'
const BOB = '00000000-0000-4000-8000-00000000000b'
const names: Record<string, string> = { [ADA]: 'Ada', [BOB]: 'Ada Lovelace' }

describe('mentions in a message body', () => {
  it('cuts a body into text, people and @room', () => {
    expect(splitMentions(`hi <@${ADA}>, see @room and mail@room.org`)).toEqual([
      { text: 'hi ' }, { userId: ADA }, { text: ', see ' }, { room: true }, { text: ' and mail@room.org' }
    ])
    expect(splitMentions('plain')).toEqual([{ text: 'plain' }])
    expect(splitMentions('<@not-a-uuid>')).toEqual([{ text: '<@not-a-uuid>' }])
  })

  it('turns the composer\'s @Name back into tokens, the longer name first', () => {
    const inserted = [{ userId: ADA, name: 'Ada' }, { userId: BOB, name: 'Ada Lovelace' }]
    expect(toTokens('@Ada Lovelace and @Ada, not @Adam or x@Ada', inserted)).toBe(`<@${BOB}> and <@${ADA}>, not @Adam or x@Ada`)
  })

  it('shows tokens as names for editing, and sends them back unchanged', () => {
    const body = `<@${ADA}> and <@${BOB}> @room`
    const { text, inserted } = fromTokens(body, id => names[id]!)
    expect(text).toBe('@Ada and @Ada Lovelace @room')
    expect(toTokens(text, inserted)).toBe(body)
  })

  it('finds the @word being typed before the caret', () => {
    expect(mentionQuery('hello @Ad', 9)).toEqual({ start: 6, query: 'Ad' })
    expect(mentionQuery('@', 1)).toEqual({ start: 0, query: '' })
    expect(mentionQuery('mail@ex', 7)).toBeNull()
    expect(mentionQuery('@Ada done', 9)).toBeNull()
  })
})
