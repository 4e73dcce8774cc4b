import { randomUUID } from 'node:crypto'
import type { Locator, Page } from '@playwright/test'
import { WebSocket } from 'ws'
import { expect, waitForHydration, type Person } from './fixtures'

/** Opens the chat list (or one chat) and waits until the socket is connected. */
export async function openChat(person: Person, withPerson?: Person, page: Page = person.page): Promise<Page> {
  await page.goto(withPerson ? `/?with=${withPerson.id}` : '/')
  await waitForHydration(page)
  await expect(page.getByTestId('connection-state')).toHaveAttribute('data-state', 'connected', { timeout: 15_000 })
  if (withPerson) await expect(page.getByTestId('chat-name')).toHaveText(withPerson.name)
  return page
}

/** Makes `b` a contact of `a` through the API, as the dialog does. */
export async function addContact(a: Person, b: Person): Promise<string> {
  const cookies = await a.context.cookies(a.origin)
  const token = cookies.find(cookie => cookie.name === 'natter_csrf')?.value ?? ''
  const answer = await a.context.request.post('/api/contacts', { data: { email: b.email }, headers: { 'x-csrf-token': token, 'origin': a.origin } })
  expect(answer.status()).toBe(201)
  return (await answer.json() as { conversationId: string }).conversationId
}

export function composer(page: Page): Locator {
  return page.getByRole('textbox', { name: 'Message' })
}

/** Types a message (each "\n" as Shift+Enter, a new line) and sends it with Enter. */
export async function write(page: Page, text: string): Promise<void> {
  const field = composer(page)
  await field.click()
  const lines = text.split('\n')
  for (const [index, line] of lines.entries()) {
    if (index > 0) await field.press('Shift+Enter')
    // One input event per line, as a paste or an IME makes: typing key by key is slow in a busy run.
    if (line) await page.keyboard.insertText(line)
  }
  await field.press('Enter')
  await expect(field).toHaveValue('')
}

export function messages(page: Page): Locator {
  return page.getByTestId('message')
}

/** The message bodies on screen, in order, as the reader sees them (line breaks kept). */
export async function history(page: Page): Promise<string[]> {
  return messages(page).getByTestId('message-body').evaluateAll(bodies => bodies.map(body => (body as HTMLElement).innerText))
}

/** The status mark of the message with this body (own messages only). */
export function statusOf(page: Page, body: string | RegExp): Locator {
  return messages(page).filter({ has: page.getByTestId('message-body').getByText(body, { exact: true }) }).getByTestId('message-status')
}

/** Waits until both people see exactly `expected`, in that order. */
export async function expectSameHistory(pages: Page[], expected: string[]): Promise<void> {
  for (const page of pages) await expect.poll(() => history(page), { timeout: 20_000 }).toEqual(expected)
}

/** Stored by the server: sent, or already read by the other person. */
export async function expectStored(page: Page, body: string): Promise<void> {
  await expect(statusOf(page, body)).toHaveAttribute('data-status', /^(sent|read)$/)
}

/** A chat socket of this person's browser session, open. */
export async function socketOf(person: Person): Promise<WebSocket> {
  const cookies = await person.context.cookies(person.origin)
  const cookie = cookies.map(item => `${item.name}=${item.value}`).join('; ')
  const socket = new WebSocket(`${person.origin.replace(/^http/, 'ws')}/ws`, { headers: { cookie, origin: person.origin } })
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject))
  return socket
}

/**
 * Sends one chat.send and waits for its ack; sent again after a pause when the server says it
 * is too fast (same clientId, stored once); any other refusal throws.
 */
export async function sendAcked(socket: WebSocket, target: { to: string } | { conversationId: string }, text: string): Promise<void> {
  const clientId = randomUUID()
  for (;;) {
    const answer = new Promise<string>((resolve) => {
      const onMessage = (data: Buffer) => {
        const frame = JSON.parse(data.toString()) as { type: string, clientId?: string, ref?: string, code?: string }
        if (frame.type === 'chat.ack' && frame.clientId === clientId) resolve('ack')
        else if (frame.type === 'error' && frame.ref === clientId) resolve(frame.code ?? 'error')
        else return
        socket.off('message', onMessage)
      }
      socket.on('message', onMessage)
    })
    socket.send(JSON.stringify({ type: 'chat.send', ...target, body: text, clientId }))
    const result = await answer
    if (result === 'ack') return
    if (result !== 'rate_limited') throw new Error(`refused: ${result}`)
    await new Promise(resolve => setTimeout(resolve, 250))
  }
}

/**
 * Writes `count` messages between two people straight over their sockets (alternating, `a`
 * first), each acknowledged before the next, so a spec can start with a long history.
 */
export async function seedMessages(a: Person, b: Person, count: number, body = (index: number) => `History ${String(index + 1).padStart(3, '0')}`): Promise<string[]> {
  const sockets = await Promise.all([a, b].map(socketOf))
  const bodies: string[] = []
  try {
    for (let index = 0; index < count; index += 1) {
      const text = body(index)
      await sendAcked(sockets[index % 2]!, { to: (index % 2 ? a : b).id }, text)
      bodies.push(text)
    }
  }
  finally {
    for (const socket of sockets) socket.close()
  }
  return bodies
}
