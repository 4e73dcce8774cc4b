import type { RoomUpdate } from '#shared/types/conversations'

/**
 * A sentence about people, with their names (and room names) kept apart from the words: each
 * is shown in its own isolate (<bdi>), so a name with a bidi override cannot reorder the sentence.
 */
export type Phrase = Array<string | { name: string }>

const SOMEONE = 'Someone'

/** The sentence as plain text (a tooltip, an aria-label, a test). */
export function phraseText(phrase: Phrase): string {
  return phrase.map(part => typeof part === 'string' ? part : part.name).join('')
}

/**
 * The timeline line of a room change: "Ada added Bob", "Cy left", "Ada renamed the room to …".
 * `previousName` is the room's name before a rename, when the timeline knows it: a change that
 * kept the name changed the topic.
 */
export function roomLine(update: RoomUpdate, previousName?: string | null): Phrase {
  const who = (id?: string) => ({ name: (id && update.names?.[id]) || SOMEONE })
  const by = who(update.by)
  const user = who(update.userId)
  switch (update.change) {
    case 'created':
      return [by, ' created the room']
    case 'added':
      return update.by ? [by, ' added ', user] : [user, ' was added']
    case 'joined':
      return [user, ' joined']
    case 'left':
      return [user, ' left']
    case 'removed':
      return update.by ? [by, ' removed ', user] : [user, ' was removed']
    case 'renamed':
      if (previousName !== undefined && previousName === update.name) {
        return update.topic ? [by, ' changed the topic to ', { name: update.topic }] : [by, ' removed the topic']
      }
      return [by, ' renamed the room to ', { name: update.name ?? '' }]
    case 'role':
      if (update.role === 'owner') return [user, ' is now the owner']
      return [by, ' made ', user, update.role === 'admin' ? ' an admin' : ' a member']
  }
}

/** Who is typing, bounded: "Ada is typing…", "Ada and Bob are typing…", "Several people are typing…". */
export function typingLine(names: string[]): Phrase {
  if (!names.length) return []
  if (names.length === 1) return [{ name: names[0]! }, ' is typing…']
  if (names.length === 2) return [{ name: names[0]! }, ' and ', { name: names[1]! }, ' are typing…']
  return ['Several people are typing…']
}
