import { afterEach, describe, expect, it, vi } from 'vitest'
import type { ClientFrame } from '#shared/types/frames'
import { Outbox } from '#shared/sdk/outbox'

afterEach(() => {
  vi.useRealTimers()
})

function outboxOnline() {
  const sent: ClientFrame[] = []
  let open = true
  let id = 0
  const outbox = new Outbox({ send: frame => open && !!sent.push(frame), newId: () => `00000000-0000-4000-8000-${String(++id).padStart(12, '0')}` })
  outbox.resume()
  return { outbox, sent, close: () => {
    open = false
    outbox.pause()
  }, reopen: () => {
    open = true
    outbox.resume()
  } }
}

const summary = (frames: ClientFrame[]) => frames.map(frame => 'messageId' in frame ? `${frame.type} ${frame.messageId}` : frame.type)

describe('changes in the outbox', () => {
  it('hold an edit and a deletion of an unsent message until its ack, then send them once, by the server\'s id, in order', () => {
    const { outbox, sent, close, reopen } = outboxOnline()
    close()
    const message = outbox.enqueue({ conversationId: 'c', body: 'tpyo', afterSeq: 0 })
    const edit = outbox.enqueueChange(message.clientId, { kind: 'edit', body: 'typo' })
    const removal = outbox.enqueueChange(message.clientId, { kind: 'delete' })
    expect(sent).toEqual([])
    reopen()
    expect(summary(sent)).toEqual(['chat.send'])
    outbox.acknowledge(message.clientId, 'server-id')
    // One change of a message at a time: the deletion waits for the edit's answer.
    expect(summary(sent)).toEqual(['chat.send', 'chat.edit server-id'])
    expect(sent[1]).toMatchObject({ changeId: edit.changeId, body: 'typo' })
    outbox.acknowledgeChange(edit.changeId)
    expect(summary(sent)).toEqual(['chat.send', 'chat.edit server-id', 'chat.delete server-id'])
    outbox.acknowledgeChange(removal.changeId)
    expect(outbox.changes).toEqual([])
  })

  it('sends a change on its way again after a reconnect with the same changeId, and drops changes of a discarded message', () => {
    const { outbox, sent, close, reopen } = outboxOnline()
    const react = outbox.enqueueChange('known-id', { kind: 'react', emoji: '👍', on: true })
    expect(sent).toEqual([{ type: 'chat.react', messageId: 'known-id', changeId: react.changeId, emoji: '👍', on: true }])
    close()
    reopen()
    expect(sent.map(frame => 'changeId' in frame && frame.changeId)).toEqual([react.changeId, react.changeId])

    close()
    const message = outbox.enqueue({ conversationId: 'c', body: 'never mind', afterSeq: 0 })
    outbox.enqueueChange(message.clientId, { kind: 'edit', body: 'never' })
    outbox.discard(message.clientId)
    expect(outbox.changes.map(change => change.changeId)).toEqual([react.changeId])
  })

  it('keeps a refused change for the person to retry or discard, and retries one refused for a passing reason by itself', () => {
    vi.useFakeTimers()
    const { outbox, sent } = outboxOnline()
    const edit = outbox.enqueueChange('m', { kind: 'edit', body: 'x' })
    outbox.rejectChange(edit.changeId, 'gone', 'This message was deleted.')
    expect(outbox.changes[0]).toMatchObject({ state: 'failed', errorCode: 'gone' })
    vi.advanceTimersByTime(60_000)
    expect(sent).toHaveLength(1)
    outbox.discardChange(edit.changeId)

    const react = outbox.enqueueChange('m', { kind: 'react', emoji: '👍', on: true })
    outbox.rejectChange(react.changeId, 'rate_limited', 'Wait.', 1500)
    vi.advanceTimersByTime(1499)
    expect(sent).toHaveLength(2)
    vi.advanceTimersByTime(1)
    expect(sent).toHaveLength(3)
  })
})
