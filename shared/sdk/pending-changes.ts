import type { ChangeEntry } from './outbox'

/** What of a message one of my unconfirmed changes touches. */
export type PendingChange = 'edit' | 'delete' | 'react'

interface Shown {
  id: string | null
  clientId: string | null
  body: string
  deleted: boolean
  reactions: Array<{ emoji: string, count: number, mine: boolean, users: string[] }>
}

/**
 * A message as I will see it once the server confirms my changes of it: the edit's text, the
 * deletion, my reactions toggled, and which change is still on its way, so the page says so
 * instead of showing the old state until the round trip ends. Failed changes are left out: they
 * wait, shown as failed, for the person to retry or drop them.
 */
export function withMyChanges<T extends Shown>(item: T, changes: readonly ChangeEntry[], me: string): T & { pending: PendingChange | null } {
  let shown: T & { pending: PendingChange | null } = { ...item, pending: null }
  for (const entry of changes) {
    if (entry.state === 'failed') continue
    if (entry.messageId !== item.id && entry.messageId !== item.clientId) continue
    const { change } = entry
    if (change.kind === 'edit') shown = { ...shown, body: change.body, pending: 'edit' }
    else if (change.kind === 'delete') shown = { ...shown, deleted: true, body: '', reactions: [], pending: 'delete' }
    else shown = { ...shown, reactions: toggled(shown.reactions, change.emoji, change.on, me), pending: shown.pending ?? 'react' }
  }
  return shown
}

function toggled(reactions: Shown['reactions'], emoji: string, on: boolean, me: string): Shown['reactions'] {
  const current = reactions.find(reaction => reaction.emoji === emoji)
  if (on) {
    if (current?.mine) return reactions
    if (current) return reactions.map(reaction => reaction === current ? { ...reaction, count: reaction.count + 1, mine: true, users: [...reaction.users, me] } : reaction)
    return [...reactions, { emoji, count: 1, mine: true, users: [me] }]
  }
  if (!current?.mine) return reactions
  if (current.count <= 1) return reactions.filter(reaction => reaction !== current)
  return reactions.map(reaction => reaction === current ? { ...reaction, count: reaction.count - 1, mine: false, users: reaction.users.filter(user => user !== me) } : reaction)
}
