import { describe, expect, it } from 'vitest'
import { acceptingSends, MAX_WAIT_MS, sendSettled, sendWaiting } from '../../server/utils/backpressure'
import { instanceId } from '../../server/utils/sockets'

// The module keeps one instance's state: the cases run in order, each settling what it added.
describe('backpressure on chat.send', () => {
  const socket = `${instanceId}:7`
  const t = Date.now()

  it('refuses once the sends waiting would take more than 2 s at the pace deliveries come back', () => {
    for (let i = 0; i < 3000; i++) sendWaiting(socket, `burst-${i}`, t)
    // Nothing has come back yet: at most 1,000 may wait.
    expect(acceptingSends(t)).toBe(false)
    for (let i = 0; i < 2000; i++) sendSettled(socket, `burst-${i}`)
    // 2,000 came back in about 1.5 s: about 1,300 a second, so 2 s is about 2,600 waiting; 1,000 are.
    expect(acceptingSends(t + 1500)).toBe(true)
    for (let i = 2000; i < 3000; i++) sendSettled(socket, `burst-${i}`)
  })

  const t0 = t + 2000

  it('refuses once more than 100 sends are 5 s late (a stuck pipeline), accepts again as they settle', () => {
    for (let i = 0; i < 101; i++) sendWaiting(socket, `late-${i}`, t0)
    // Younger than the limit: the pipeline is busy, not stuck.
    expect(acceptingSends(t0 + MAX_WAIT_MS - 1)).toBe(true)
    expect(acceptingSends(t0 + MAX_WAIT_MS)).toBe(false)
    sendSettled(socket, 'late-0')
    expect(acceptingSends(t0 + MAX_WAIT_MS)).toBe(true)
    for (let i = 1; i < 101; i++) sendSettled(socket, `late-${i}`)
  })

  it('ignores a few stragglers (a message the persister dropped has no delivery)', () => {
    for (let i = 0; i < 10; i++) sendWaiting(socket, `straggler-${i}`, t0)
    expect(acceptingSends(t0 + 20_000)).toBe(true)
  })

  it('forgets sends whose delivery never came after 30 s, so a lost delivery cannot hold sends back', () => {
    for (let i = 0; i < 200; i++) sendWaiting(socket, `lost-${i}`, t0)
    expect(acceptingSends(t0 + 10_000)).toBe(false)
    expect(acceptingSends(t0 + 30_000)).toBe(true)
  })

  it('forgets sends older than one that came back more than 5 s after them: their delivery was lost', () => {
    const t2 = t0 + 35_000
    for (let i = 0; i < 150; i++) sendWaiting(socket, `dropped-${i}`, t2)
    sendWaiting(socket, 'newer', t2 + MAX_WAIT_MS + 1)
    expect(acceptingSends(t2 + MAX_WAIT_MS + 1)).toBe(false)
    sendSettled(socket, 'newer')
    expect(acceptingSends(t2 + MAX_WAIT_MS + 1)).toBe(true)
  })

  it('settles only its own instance\'s sends', () => {
    const t1 = t0 + 50_000
    for (let i = 0; i < 101; i++) sendWaiting(socket, `mine-${i}`, t1)
    for (let i = 0; i < 101; i++) sendSettled(`another:7`, `mine-${i}`)
    expect(acceptingSends(t1 + MAX_WAIT_MS)).toBe(false)
    for (let i = 0; i < 101; i++) sendSettled(socket, `mine-${i}`)
    expect(acceptingSends(t1 + MAX_WAIT_MS)).toBe(true)
  })
})
