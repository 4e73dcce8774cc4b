import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startMailCatcher, type MailCatcher } from '../support/mail-catcher'
import { pairUp, signedInPerson } from '../support/people'
import { startServer, type TestServer } from '../support/server'
import { TestSocket } from '../support/socket'

let server: TestServer
let mail: MailCatcher

beforeAll(async () => {
  mail = await startMailCatcher()
  server = await startServer({ SMTP_URL: mail.url, NATTER_TRUST_PROXY: '1', NATTER_METRICS_TOKEN: 'scrape-token-0123456789' })
})
afterAll(async () => {
  await server.stop()
  await mail.close()
})

function value(text: string, name: string): number {
  const line = text.split('\n').find(l => l.startsWith(name + ' ') || l.startsWith(name + '{'))
  return line ? Number(line.split(' ').at(-1)) : Number.NaN
}

describe('/metrics', () => {
  it('serves Prometheus text to a loopback scraper, counting the pipeline', async () => {
    const a = await signedInPerson(server, mail, 'ada')
    const b = await signedInPerson(server, mail, 'bob')
    await pairUp(a, b)
    const [sa, sb] = [await TestSocket.open(a.client), await TestSocket.open(b.client)]
    const before = await (await fetch(`${server.url}/metrics`)).text()
    sa.send({ type: 'chat.send', to: b.id, body: 'counted', clientId: randomUUID() })
    await sb.next(f => f.type === 'chat.receive')
    await sa.next(f => f.type === 'chat.ack')
    const response = await fetch(`${server.url}/metrics`)
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
    sa.close()
    sb.close()
  })

  it('refuses a request that came through the proxy, unless it carries the token', async () => {
    const proxied = await fetch(`${server.url}/metrics`, { headers: { 'x-forwarded-for': '203.0.113.9' } })
    expect(proxied.status).toBe(403)
    expect((await proxied.json()).data.code).toBe('forbidden')
    const wrong = await fetch(`${server.url}/metrics`, { headers: { 'x-forwarded-for': '203.0.113.9', 'authorization': 'Bearer nope' } })
    expect(wrong.status).toBe(403)
    const token = await fetch(`${server.url}/metrics`, { headers: { 'x-forwarded-for': '203.0.113.9', 'authorization': 'Bearer scrape-token-0123456789' } })
    expect(token.status).toBe(200)
  })
})
