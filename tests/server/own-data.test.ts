import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Device } from '#shared/types/me'
import { useChatServer } from '../support/chat-server'
import { Client } from '../support/client'
import type { Person } from '../support/people'
import { TestSocket } from '../support/socket'

// A one-second resend window: a person signs in on a second device within a test.
const chat = useChatServer({ NATTER_CODE_RESEND_SECONDS: '1' })
const sockets: TestSocket[] = []
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.close()
})

/** The same person signed in again from another browser (its own user agent), once the resend window allows. */
async function anotherDevice(person: Person, userAgent = 'Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0'): Promise<Client> {
  const client = new Client(chat.server.url)
  const request = client.request.bind(client)
  client.request = (method, path, body, options = {}) => request(method, path, body, { ...options, headers: { ...person.headers, 'user-agent': userAgent, ...options.headers } })
  await vi.waitFor(async () => {
    const before = chat.mail.mails.length
    const asked = await client.post('/api/auth/request-otp', { email: person.email })
    if (asked.status !== 202) throw new Error(`request-otp answered ${asked.status}`)
    const otp = await chat.mail.codeFor(person.email, before)
    const verified = await client.post('/api/auth/verify-otp', { email: person.email, otp })
    expect(verified.status).toBe(200)
  }, { timeout: 10_000, interval: 300 })
  return client
}

async function open(client: Client) {
  const socket = await TestSocket.open(client)
  sockets.push(socket)
  await socket.roundTrip()
  return socket
}

const devicesOf = async (client: Client): Promise<Device[]> => {
  const listed = await client.get('/api/me/sessions')
  expect(listed.status, JSON.stringify(listed.body)).toBe(200)
  return listed.body.sessions
}

describe('devices', () => {
  it('lists my signed-in devices with this one marked, and ends another one at once, its socket too', async () => {
    const ada = await chat.person('ada')
    const laptop = await anotherDevice(ada)
    const devices = await devicesOf(ada.client)
    expect(devices).toHaveLength(2)
    const [here, there] = [devices.find(device => device.current)!, devices.find(device => !device.current)!]
    expect(here).toMatchObject({ address: ada.headers['x-forwarded-for'], createdAt: expect.any(String), lastActiveAt: expect.any(String) })
    expect(there).toMatchObject({ device: 'Firefox on Linux', address: ada.headers['x-forwarded-for'], current: false })
    expect(here.id).toMatch(/^[\w-]{22}$/)
    // The other browser sees the same two, with itself as the current one.
    expect((await devicesOf(laptop)).find(device => device.current)!.id).toBe(there.id)

    const socket = await open(laptop)
    const ended = await ada.client.request('DELETE', `/api/me/sessions/${there.id}`)
    expect(ended.status).toBe(204)
    expect(await socket.closedWith()).toMatchObject({ code: 4401 })
    expect((await laptop.get('/api/me')).status).toBe(401)
    expect((await ada.client.get('/api/me')).status).toBe(200)
    expect((await devicesOf(ada.client)).map(device => device.id)).toEqual([here.id])
    // Ended is ended: a second time it is not found.
    expect((await ada.client.request('DELETE', `/api/me/sessions/${there.id}`)).status).toBe(404)
  })

  it('ending this device signs this browser out', async () => {
    const ada = await chat.person('ada')
    const [here] = await devicesOf(ada.client)
    expect((await ada.client.request('DELETE', `/api/me/sessions/${here!.id}`)).status).toBe(204)
    expect((await ada.client.get('/api/me')).status).toBe(401)
  })

  it('refuses someone else\'s device (404, as for one that never was), made-up ids, strangers and requests without the CSRF token', async () => {
    const [ada, eve] = await Promise.all([chat.person('ada'), chat.person('eve')])
    const [adas] = await devicesOf(ada.client)
    expect((await eve.client.request('DELETE', `/api/me/sessions/${adas!.id}`)).status).toBe(404)
    expect((await eve.client.request('DELETE', `/api/me/sessions/${'A'.repeat(22)}`)).status).toBe(404)
    expect((await eve.client.request('DELETE', '/api/me/sessions/not-a-device')).status).toBe(400)
    expect((await ada.client.request('DELETE', `/api/me/sessions/${adas!.id}`, undefined, { csrf: false })).status).toBe(403)
    const stranger = new Client(chat.server.url)
    expect((await stranger.get('/api/me/sessions')).status).toBe(401)
    expect((await stranger.request('DELETE', `/api/me/sessions/${adas!.id}`)).status).toBe(401)
    // Nothing of Ada's changed.
    expect((await ada.client.get('/api/me')).status).toBe(200)
    expect(await devicesOf(ada.client)).toHaveLength(1)
  })
})
