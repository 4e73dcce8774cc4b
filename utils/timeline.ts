import type { OutboxEntry } from '#shared/sdk/outbox'
import type { ChatMessage } from '#shared/types/messages'

/**
 * Inserts items by seq, each seq once (the newer copy wins: a message confirmed by its ack, then
 * delivered again by a resync, is the same message); returns how many were new.
 */
export function mergeBySeq<T extends { seq: number }>(into: T[], incoming: readonly T[]): number {
  let added = 0
  for (const item of incoming) {
    let index = into.length
    while (index > 0 && into[index - 1]!.seq > item.seq) index -= 1
    if (index > 0 && into[index - 1]!.seq === item.seq) {
      into.splice(index - 1, 1, item)
      continue
    }
    into.splice(index, 0, item)
    added += 1
  }
  return added
}

/**
 * The outbox entries still to show beside the stored messages. An entry that went out at least
 * once may be stored while its ack was lost with the connection: when the server's copy shows up
 * (a resync, a reload) it stands in for the entry until the ack comes, so the message shows once.
 * A copy is mine, after the entry was written, with the same body, and not acknowledged here.
 */
export function unsentShown(entries: readonly OutboxEntry[], stored: readonly ChatMessage[], acknowledged: ReadonlySet<string>, myId: string): OutboxEntry[] {
  const stoodIn = new Set<string>()
  return entries.filter((entry) => {
    if (entry.attempts === 0 || (entry.errorCode && entry.errorCode !== 'timeout')) return true
    const copy = stored.find(message => message.from === myId && message.seq > entry.afterSeq && message.body === entry.body
      && !acknowledged.has(message.id) && !stoodIn.has(message.id))
    if (!copy) return true
    stoodIn.add(copy.id)
    return false
  })
}

export interface Reader {
  userId: string
  name: string
  /** Their read watermark, null when they or I keep receipts private. */
  readSeq: number | null
}

/** "Seen by": the members other than me who have read up to `seq`, by name. */
export function seenBy(readers: readonly Reader[], myId: string, seq: number): string[] {
  return readers.filter(reader => reader.userId !== myId && reader.readSeq !== null && reader.readSeq >= seq).map(reader => reader.name)
}
