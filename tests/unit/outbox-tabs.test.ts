import { describe, expect, it } from 'vitest'
import type { ClientFrame } from '#shared/types/frames'
import { Outbox, type OutboxEntry, type OutboxStorage } from '#shared/sdk/outbox'

/** One localStorage key shared by two tabs: each tab's Outbox reads and writes it. */
function sharedStorage(): OutboxStorage & { saves: number } {
  let kept = '[]'
  return {
    saves: 0,
    load: () => JSON.parse(kept) as OutboxEntry[],
    save(entries) {
      this.saves += 1
      kept = JSON.stringify(entries)
    }
  }
}

function tab(storage: OutboxStorage, online: boolean) {
  const sent: ClientFrame[] = []
  let seen: readonly OutboxEntry[] = []
  const outbox = new Outbox({ storage, send: frame => online && !!sent.push(frame), onChange: (entries) => {
    seen = entries
  } })
  if (online) outbox.resume()
  return { outbox, sent, seen: () => seen }
}

describe('two tabs of one person', () => {
  it('see each other’s unsent messages, and what one tab settles leaves the other', () => {
    const storage = sharedStorage()
    const offline = tab(storage, false)
    const written = offline.outbox.enqueue({ conversationId: crypto.randomUUID(), body: 'from the first tab', afterSeq: 0 })

    // The second tab hears of it (the storage event), shows it and sends it: it has a socket.
    const online = tab(storage, true)
    online.outbox.reload()
    expect(online.seen().map(entry => entry.body)).toEqual(['from the first tab'])
    expect(online.sent).toMatchObject([{ type: 'chat.send', clientId: written.clientId, body: 'from the first tab' }])

    // Its ack settles it there; the first tab, told again, no longer holds it.
    online.outbox.acknowledge(written.clientId)
    offline.outbox.reload()
    expect(offline.seen()).toEqual([])
  })

  it('does not write back what it took from the other tab', () => {
    const storage = sharedStorage()
    tab(storage, false).outbox.enqueue({ conversationId: crypto.randomUUID(), body: 'once', afterSeq: 0 })
    const saves = storage.saves
    tab(storage, false).outbox.reload()
    expect(storage.saves).toBe(saves)
  })
})
