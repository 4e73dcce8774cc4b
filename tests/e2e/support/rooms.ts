import type { Locator, Page } from '@playwright/test'
import { expect, type Person } from './fixtures'

/** Makes a room through the "New room" dialog, as its owner; resolves to its id (from the address). */
export async function createRoom(page: Page, room: { name: string, topic?: string, visibility: 'public' | 'private', invite?: string[], membersCanInvite?: boolean }): Promise<string> {
  await page.getByTestId('new-room').click()
  const dialog = page.getByTestId('create-room-dialog')
  // The name field takes the focus once the dialog shows: typing elsewhere before that may land there.
  await expect(dialog.getByLabel('Name')).toBeFocused()
  await dialog.getByLabel('Name').fill(room.name)
  if (room.topic) await dialog.getByLabel('Topic (optional)').fill(room.topic)
  await dialog.getByTestId(`room-${room.visibility}`).getByRole('radio').check()
  if (room.invite?.length) await dialog.getByLabel('Invite people (email addresses)').fill(room.invite.join(', '))
  if (room.membersCanInvite === false) await dialog.getByLabel('Members can invite people').uncheck()
  await dialog.getByTestId('create-room-submit').click()
  await expect(dialog).toBeHidden()
  await expect(page).toHaveURL(/\/\?c=[\da-f-]{36}$/)
  await expect(page.getByTestId('chat-name')).toHaveText(room.name)
  return new URL(page.url()).searchParams.get('c')!
}

export function roomRow(page: Page, name: string | RegExp): Locator {
  return page.getByTestId('room-row').filter({ has: page.getByTestId('contact-name').getByText(name, { exact: true }) })
}

/** What the conversation shows, in order: each message's body and each room change's line, with its seq. */
export async function timeline(page: Page): Promise<Array<{ seq: number, text: string }>> {
  return page.locator('[data-testid="message"][data-seq], [data-testid="room-line"]').evaluateAll(elements => elements.map(element => ({
    seq: Number((element as HTMLElement).dataset.seq),
    text: ((element.querySelector('[data-testid="message-body"]') ?? element) as HTMLElement).innerText.trim()
  })))
}

export async function lines(page: Page): Promise<string[]> {
  return page.getByTestId('room-line').evaluateAll(elements => elements.map(element => (element as HTMLElement).innerText.trim()))
}

/** The conversation's seqs as the server has them (GET …/events): what a page must end up showing. */
export async function serverSeqs(person: Person, conversationId: string): Promise<number[]> {
  const answer = await person.context.request.get(`/api/conversations/${conversationId}/events?after=0&limit=500`)
  expect(answer.status()).toBe(200)
  const { events } = await answer.json() as { events: Array<{ seq: number }> }
  return events.map(event => event.seq)
}

/** Opens the room's settings from its menu (owner and admins), once its name field has the focus. */
export async function settings(page: Page): Promise<Locator> {
  await page.getByTestId('room-menu').click()
  await page.getByTestId('room-settings').click()
  const dialog = page.getByTestId('room-settings-dialog')
  await expect(dialog.getByLabel('Name')).toBeFocused()
  return dialog
}

/** Opens the room's member list from its header. */
export async function openMembers(page: Page): Promise<Locator> {
  await page.getByTestId('member-count').click()
  const list = page.getByTestId('member-list')
  await expect(list).toBeVisible()
  return list
}

export function member(list: Locator, name: string): Locator {
  return list.getByTestId('member-row').filter({ has: list.page().getByTestId('member-name').getByText(name, { exact: true }) })
}
