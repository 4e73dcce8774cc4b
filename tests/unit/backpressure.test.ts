import { describe, expect, it } from 'vitest'
import { acceptingSends, MAX_WAIT_MS, sendSettled, sendWaiting } from '../../server/utils/messages/backpressure'
import { instanceId } from '../../server/utils/realtime/sockets'

// The module keeps one instance's state: the cases run in order, each settling what it added.
describe('backpressure on chat.send', () => {
  const socket = `${instanceId}:7`
  const t = Date.now()

  it('refuses once the sends waiting would take more than 2 s at the pace deliveries come back', () => {
    for (let i = 0; i < 3000; i++) sendWaiting(socket, `burst-${i}`, t)
    // Nothing has come back yet: at most 1,000 may wait.
    expect(acceptingSends(t)).toBe(false)
    for (let i = 0; i < 2000; i++) sendSettled(socket, `burst-${i}`, t + 1500)
    // 2,000 came back in about 1.5 s: about 1,300 a second, so 2 s is about 2,600 waiting; 1,000 are.
    expect(acceptingSends(t + 1500)).toBe(true)
    for (let i = 2000; i < 3000; i++) sendSettled(socket, `burst-${i}`, t + 1500)
  })

  const t0 = t + 2000

  it('refuses when sends have waited 5 s and nothing at all came back meanwhile (a stuck pipeline)', () => {
    sendWaiting(socket, 'stuck', t0)
    // Younger than the limit: the pipeline is busy, not stuck.
    expect(acceptingSends(t0 + MAX_WAIT_MS - 1)).toBe(true)
    // Nothing has come back since t0 + 1500 - and the send is 5 s old: stuck.
    expect(acceptingSends(t0 + MAX_WAIT_MS + 1000)).toBe(false)
    sendSettled(socket, 'stuck', t0 + MAX_WAIT_MS + 1000)
    expect(acceptingSends(t0 + MAX_WAIT_MS + 1000)).toBe(true)
  })

  it('is not stuck because some sends are late while others keep coming back', () => {
    const t1 = t0 + 10_000
    // One person's 150 sends that never settle (their deliveries lost, say)…
    for (let i = 0; i < 150; i++) sendWaiting(socket, `late-${i}`, t1)
    // …while everyone else's keep coming back: the pipeline is moving.
    for (let second = 1; second <= 8; second++) {
      sendWaiting(socket, `moving-${second}`, t1 + second * 1000)
      sendSettled(socket, `moving-${second}`, t1 + second * 1000 + 20)
      expect(acceptingSends(t1 + second * 1000 + 20)).toBe(true)
    }
  })

  it('forgets sends whose delivery never came after 30 s, so a lost delivery cannot hold sends back', () => {
    const t2 = t0 + 50_000
    for (let i = 0; i < 200; i++) sendWaiting(socket, `lost-${i}`, t2)
    expect(acceptingSends(t2 + 10_000)).toBe(false)
    expect(acceptingSends(t2 + 30_000)).toBe(true)
  })

  it('forgets sends older than one that came back more than 5 s after them: their delivery was lost', () => {
    const t3 = t0 + 90_000
    for (let i = 0; i < 150; i++) sendWaiting(socket, `dropped-${i}`, t3)
    sendWaiting(socket, 'newer', t3 + MAX_WAIT_MS + 1)
    expect(acceptingSends(t3 + MAX_WAIT_MS + 5000)).toBe(false)
    sendSettled(socket, 'newer', t3 + MAX_WAIT_MS + 5000)
    expect(acceptingSends(t3 + MAX_WAIT_MS + 5000)).toBe(true)
  })

  it('settles only its own instance\'s sends', () => {
    const t4 = t0 + 130_000
    sendWaiting(socket, 'mine', t4)
    sendSettled('another:7', 'mine', t4 + MAX_WAIT_MS + 1000)
    expect(acceptingSends(t4 + MAX_WAIT_MS + 1000)).toBe(false)
    sendSettled(socket, 'mine', t4 + MAX_WAIT_MS + 1000)
    expect(acceptingSends(t4 + MAX_WAIT_MS + 1000)).toBe(true)
  })
})
