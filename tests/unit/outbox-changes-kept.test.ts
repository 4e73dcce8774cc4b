import { describe, expect, it } from 'vitest'
import type { ClientFrame } from '#shared/types/frames'
import { Outbox, memoryStorage, type OutboxStorage } from '#shared/sdk/outbox'
import { withMyChanges } from '#shared/sdk/pending-changes'

/** A page of one person: its Outbox on the storage the browser keeps across reloads and tabs. */
function page(storage: OutboxStorage, online: boolean) {
  const sent: ClientFrame[] = []
  const outbox = new Outbox({ storage, send: frame => online && !!sent.push(frame) })
  if (online) outbox.resume()
  return { outbox, sent }
}

describe('changes kept across a reload', () => {
  it('an edit made offline goes out after the reload, once, with its changeId', () => {
    const storage = memoryStorage()
    const before = page(storage, false)
    const edit = before.outbox.enqueueChange('11111111-1111-4111-8111-111111111111', { kind: 'edit', body: 'fixed while away' })
    expect(before.sent).toEqual([])

    const after = page(storage, true)
    expect(after.outbox.changes.map(change => change.changeId)).toEqual([edit.changeId])
    expect(after.sent).toMatchObject([{ type: 'chat.edit', changeId: edit.changeId, body: 'fixed while away' }])
    after.outbox.acknowledgeChange(edit.changeId)
    expect(storage.loadChanges!()).toEqual([])
  })

  it('what was on its way when the page went goes again (the server applies a changeId once)', () => {
    const storage = memoryStorage()
    const before = page(storage, true)
    const removal = before.outbox.enqueueChange('11111111-1111-4111-8111-111111111111', { kind: 'delete' })
    expect(before.sent).toHaveLength(1)
    expect(storage.loadChanges!()[0]!.state).toBe('sending')

    const after = page(storage, true)
    expect(after.sent).toMatchObject([{ type: 'chat.delete', changeId: removal.changeId }])
  })

  it('a change waiting for an unsent message stays with it, and goes once the message is acknowledged', () => {
    const storage = memoryStorage()
    const before = page(storage, false)
    const message = before.outbox.enqueue({ conversationId: 'c', body: 'tpyo', afterSeq: 0 })
    before.outbox.enqueueChange(message.clientId, { kind: 'edit', body: 'typo' })

    const after = page(storage, true)
    expect(after.sent.map(frame => frame.type)).toEqual(['chat.send'])
    after.outbox.acknowledge(message.clientId, '22222222-2222-4222-8222-222222222222')
    expect(after.sent).toMatchObject([{ type: 'chat.send' }, { type: 'chat.edit', messageId: '22222222-2222-4222-8222-222222222222', body: 'typo' }])
  })

  it('a change waiting for a message that was given up is dropped with it', () => {
    const storage = memoryStorage()
    const before = page(storage, false)
    const message = before.outbox.enqueue({ conversationId: 'c', body: 'never mind', afterSeq: 0 })
    before.outbox.enqueueChange(message.clientId, { kind: 'delete' })
    // Another tab discarded the message and saved only the messages half.
    storage.save([])
    const after = page(storage, true)
    expect(after.outbox.changes).toEqual([])
    expect(after.sent).toEqual([])
  })

  it('another tab\'s change on its way is not sent a second time by this one', () => {
    const storage = memoryStorage()
    const sender = page(storage, true)
    const watcher = page(storage, true)
    sender.outbox.enqueueChange('11111111-1111-4111-8111-111111111111', { kind: 'react', emoji: '👍', on: true })
    watcher.outbox.reload()
    expect(watcher.outbox.changes).toHaveLength(1)
    expect(watcher.sent).toEqual([])
  })
})

describe('a message with my unconfirmed changes', () => {
  const message = { id: 'm', clientId: null, body: 'before', deleted: false, reactions: [{ emoji: '👍', count: 2, mine: false, users: ['b', 'c'] }] }
  const entry = (change: Parameters<Outbox['enqueueChange']>[1], state: 'queued' | 'sending' | 'failed' = 'sending') => ({ changeId: crypto.randomUUID(), messageId: 'm', waiting: false, change, state, attempts: 1 })

  it('shows the edit, the deletion and my reactions as made, and says which is on its way', () => {
    expect(withMyChanges(message, [entry({ kind: 'edit', body: 'after' })], 'me')).toMatchObject({ body: 'after', pending: 'edit' })
    expect(withMyChanges(message, [entry({ kind: 'delete' })], 'me')).toMatchObject({ deleted: true, body: '', pending: 'delete' })
    expect(withMyChanges(message, [entry({ kind: 'react', emoji: '👍', on: true }), entry({ kind: 'react', emoji: '🎉', on: true })], 'me')).toMatchObject({
      reactions: [{ emoji: '👍', count: 3, mine: true, users: ['b', 'c', 'me'] }, { emoji: '🎉', count: 1, mine: true }],
      pending: 'react'
    })
  })

  it('leaves failed changes and other messages\' changes out', () => {
    expect(withMyChanges(message, [entry({ kind: 'edit', body: 'after' }, 'failed')], 'me')).toMatchObject({ body: 'before', pending: null })
    expect(withMyChanges({ ...message, id: 'other' }, [entry({ kind: 'delete' })], 'me')).toMatchObject({ deleted: false, pending: null })
  })

  it('takes a reaction off without going below zero', () => {
    const mine = { ...message, reactions: [{ emoji: '👍', count: 1, mine: true, users: ['me'] }] }
    expect(withMyChanges(mine, [entry({ kind: 'react', emoji: '👍', on: false })], 'me').reactions).toEqual([])
    expect(withMyChanges(message, [entry({ kind: 'react', emoji: '👍', on: false })], 'me').reactions).toEqual(message.reactions)
  })
})
