import { randomUUID } from 'node:crypto'
import { describe, expect, it, vi } from 'vitest'
import { useChatServer } from '../support/chat-server'

const chat = useChatServer({ NATTER_METRICS_TOKEN: 'scrape-token-0123456789' })

function value(text: string, name: string): number {
  const line = text.split('\n').find(l => l.startsWith(name + ' ') || l.startsWith(name + '{'))
  return line ? Number(line.split(' ').at(-1)) : Number.NaN
}

describe('/metrics', () => {
  it('serves Prometheus text to a loopback scraper, counting the pipeline', async () => {
    const { a, b } = await chat.pair()
    const [sa, sb] = [await chat.open(a), await chat.open(b)]
    const before = await (await fetch(`${chat.server.url}/metrics`)).text()
    sa.send({ type: 'chat.send', to: b.id, body: 'counted', clientId: randomUUID() })
    await sb.next(f => f.type === 'chat.receive')
    await sa.next(f => f.type === 'chat.ack')
    const response = await fetch(`${chat.server.url}/metrics`)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/text\/plain/)
    const text = await response.text()
    expect(value(text, 'natter_open_sockets')).toBe(2)
    for (const name of ['natter_messages_accepted_total', 'natter_messages_persisted_total', 'natter_messages_delivered_total']) {
      expect(value(text, name) - (value(before, name) || 0)).toBe(1)
    }
    expect(value(text, 'natter_signin_codes_sent_total')).toBeGreaterThanOrEqual(2)
    expect(text).toContain('natter_send_to_deliver_seconds_bucket')
    expect(text).toContain('natter_http_request_duration_seconds_bucket{le="0.001",route="/api/auth/verify-otp"')
    expect(text).toContain('process_resident_memory_bytes')
    // The ack goes out before the offset commit, so the lag drains a moment after it.
    await vi.waitFor(async () => expect(value(await (await fetch(`${chat.server.url}/metrics`)).text(), 'natter_bus_consumer_lag')).toBe(0), { timeout: 10_000 })
  })

  it('refuses a request that came through the proxy, unless it carries the token', async () => {
    const proxied = await fetch(`${chat.server.url}/metrics`, { headers: { 'x-forwarded-for': '203.0.113.9' } })
    expect(proxied.status).toBe(403)
    expect((await proxied.json()).data.code).toBe('forbidden')
    const wrong = await fetch(`${chat.server.url}/metrics`, { headers: { 'x-forwarded-for': '203.0.113.9', 'authorization': 'Bearer nope' } })
    expect(wrong.status).toBe(403)
    const token = await fetch(`${chat.server.url}/metrics`, { headers: { 'x-forwarded-for': '203.0.113.9', 'authorization': 'Bearer scrape-token-0123456789' } })
    expect(token.status).toBe(200)
  })
})
