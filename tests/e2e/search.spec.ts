import type { Locator, Page } from '@playwright/test'
import { addContact, history, messages, openChat, seedMessages, sendAcked, socketOf, write } from './support/chat'
import { expect, test, type Person } from './support/fixtures'
import { serverSeqs, timeline } from './support/rooms'

// Two browser contexts, 120 seeded messages and a build on a busy machine.
test.describe.configure({ timeout: 180_000 })

const TARGET = 3
const WORD = 'quokka'
const body = (index: number) => index === TARGET - 1 ? `Remember the ${WORD} budget for Friday` : `History ${String(index + 1).padStart(3, '0')}`

function field(page: Page): Locator {
  return page.getByRole('combobox', { name: 'Search messages' })
}

function results(page: Page): Locator {
  return page.getByTestId('search-result')
}

/** A state-changing API call as the page makes it (the CSRF cookie echoed). */
async function call(person: Person, method: 'POST' | 'PATCH', path: string, data: unknown) {
  const token = (await person.context.cookies(person.origin)).find(cookie => cookie.name === 'natter_csrf')?.value ?? ''
  const answer = await person.context.request.fetch(path, { method, data, headers: { 'x-csrf-token': token, 'origin': person.origin } })
  expect(answer.ok()).toBe(true)
  return answer.json() as Promise<{ conversation: { id: string } }>
}

/** Writes into a room over one socket, each message acknowledged before the next. */
async function say(person: Person, conversationId: string, bodies: string[]) {
  const socket = await socketOf(person)
  try {
    for (const text of bodies) await sendAcked(socket, { conversationId }, text)
  }
  finally {
    socket.close()
  }
}

/** The bodies shown, and whether they are one unbroken run of `all` (no gap, nothing out of place). */
async function contiguousIn(page: Page, all: string[]): Promise<boolean> {
  const shown = await history(page)
  const start = all.indexOf(shown[0]!)
  return start >= 0 && shown.every((text, index) => all[start + index] === text)
}

test('a word from an old message is found, opened in context around it and highlighted; filters narrow it', async ({ people }) => {
  const ada = await people.signIn('ada', { name: 'Ada' })
  const bob = await people.signIn('bob', { name: 'Bob' })
  await addContact(ada, bob)
  // 120 messages: the one with the word is far older than the newest page (50).
  const written = await seedMessages(ada, bob, 120, body)
  const page = await openChat(ada)

  // `/` outside a text field opens the search; Esc closes it and the focus goes back.
  const opener = page.getByTestId('search-open')
  await opener.focus()
  await page.keyboard.press('/')
  await expect(field(page)).toBeFocused()
  await page.keyboard.press('Escape')
  await expect(field(page)).toBeHidden()
  await expect(opener).toBeFocused()

  // Ctrl+K; typing searches by itself.
  await page.locator('body').click({ position: { x: 5, y: 300 } })
  await page.keyboard.press('Control+k')
  await expect(field(page)).toBeFocused()
  await page.keyboard.type(WORD.slice(0, 5))
  const found = results(page)
  await expect(found).toHaveCount(1)
  await expect(page.getByTestId('search-group-name')).toHaveText(['Bob'])
  await expect(found.getByTestId('search-result-sender')).toHaveText('You')
  // The match is marked, as text.
  await expect(found.getByTestId('search-highlight').first()).toContainText(WORD.slice(0, 5))
  await page.keyboard.type(WORD.slice(5))
  await expect(found.getByTestId('search-highlight')).toHaveText([WORD])
  await expect(found.getByTestId('search-snippet')).toContainText(written[TARGET - 1]!)

  // A filter naming nobody is a chip in error, and nothing is asked.
  await field(page).fill(`from:nobody ${WORD}`)
  const chip = page.getByTestId('search-chip')
  await expect(chip).toHaveAttribute('data-error', '')
  await expect(chip).toContainText('No one called nobody')
  await expect(field(page)).toHaveAttribute('aria-invalid', 'true')
  await expect(results(page)).toHaveCount(0)
  // Picked from the chips instead: Bob never said it; Ada did.
  await chip.getByRole('button', { name: /Remove/ }).click()
  await expect(field(page)).toHaveValue(WORD)
  await page.locator('[data-testid="search-add-filter"][data-key="from"]').click()
  await page.getByTestId('search-pick').filter({ hasText: 'Bob' }).click()
  await expect(field(page)).toHaveValue(`from:${bob.email} ${WORD}`)
  await expect(chip).toHaveText('From: Bob')
  await expect(page.getByTestId('search-empty')).toHaveText('No messages found')
  await field(page).fill(`from:me ${WORD}`)
  await expect(chip).toHaveText('From: you')
  await expect(results(page)).toHaveCount(1)
  // In the chat with Bob, by the start of his name; then only messages with a link: none.
  await field(page).fill(`in:@bo ${WORD}`)
  await expect(chip).toHaveText('In: Bob')
  await expect(results(page)).toHaveCount(1)
  await page.locator('[data-testid="search-add-filter"][data-key="has-link"]').click()
  await expect(field(page)).toHaveValue(`has:link in:@bo ${WORD}`)
  await expect(page.getByTestId('search-empty')).toBeVisible()
  await field(page).fill(WORD)
  await expect(results(page)).toHaveCount(1)

  // Down, then Enter: the conversation opens around the message (it is older than a page).
  await field(page).focus()
  await page.keyboard.press('ArrowDown')
  const first = results(page).first()
  await expect(first).toHaveAttribute('aria-selected', 'true')
  await expect(field(page)).toHaveAttribute('aria-activedescendant', (await first.getAttribute('id'))!)
  const around = page.waitForRequest(request => /\/messages\?around=\d+/.test(request.url()))
  await page.keyboard.press('Enter')
  await around
  await expect(page.getByTestId('search-panel')).toBeHidden()
  await expect(page.getByTestId('chat-name')).toHaveText('Bob')
  const target = messages(page).filter({ hasText: written[TARGET - 1]! })
  await expect(target).toHaveAttribute('data-found', '')
  await expect(target).toBeFocused()
  await expect(target).toBeInViewport()
  // In context: the ones around it, one unbroken run, and not the newest.
  await expect(messages(page).filter({ hasText: written[TARGET] })).toHaveCount(1)
  expect(await contiguousIn(page, written)).toBe(true)
  await expect(messages(page).filter({ hasText: written[119]! })).toHaveCount(0)
  // The mark fades after a few seconds.
  await expect(target).not.toHaveAttribute('data-found', '', { timeout: 8_000 })

  // Bob writes meanwhile: his message is not put right under the old ones.
  const bobPage = await openChat(bob, ada)
  await write(bobPage, 'Live while Ada reads old things')
  const all = [...written, 'Live while Ada reads old things']
  await expect(page.getByTestId('jump-to-latest')).toHaveAttribute('aria-label', 'New messages: jump to the latest')
  await expect(messages(page).filter({ hasText: 'Live while Ada reads old things' })).toHaveCount(0)

  // Scrolling down loads the newer pages until the newest, which then includes Bob's message.
  const list = page.getByTestId('message-list')
  await expect.poll(async () => {
    await list.evaluate((element) => {
      element.scrollTop = element.scrollHeight
    })
    return messages(page).filter({ hasText: 'Live while Ada reads old things' }).count()
  }, { timeout: 30_000 }).toBe(1)
  expect(await contiguousIn(page, all)).toBe(true)
  // And up to the start: everything, once, in order.
  await expect.poll(async () => {
    await list.evaluate((element) => {
      element.scrollTop = 0
    })
    return page.getByTestId('history-start').count()
  }, { timeout: 30_000 }).toBe(1)
  expect(await history(page)).toEqual(all)
  // Live messages join again at the bottom now.
  await write(bobPage, 'And one more')
  await expect.poll(() => history(page)).toEqual([...all, 'And one more'])
})

test('on a phone in dark mode the search is a full-screen sheet; opening a result jumps to the newest again with Jump to latest', async ({ people }) => {
  const ada = await people.signIn('ada', { name: 'Ada' })
  const bob = await people.signIn('bob', { name: 'Bob' })
  await addContact(ada, bob)
  const written = await seedMessages(ada, bob, 80, body)
  const page = await openChat(ada)
  await page.setViewportSize({ width: 360, height: 740 })
  await page.getByTestId('account-menu').click()
  await page.getByTestId('theme-toggle').click()
  await expect(page.locator('.v-application')).toHaveClass(/v-theme--dark/)
  await page.keyboard.press('Escape')

  await page.getByTestId('search-open').click()
  const panel = page.getByTestId('search-panel')
  await expect(panel).toBeVisible()
  // The full width once the dialog's opening transition (it grows from smaller) has ended.
  await expect.poll(async () => (await panel.boundingBox())?.width ?? 0).toBeGreaterThanOrEqual(359)
  // A common word: a page of 20, then More results.
  await field(page).fill('history')
  await expect(results(page)).toHaveCount(20)
  await expect(page.getByTestId('search-status')).toHaveText('20+ messages')
  await page.getByTestId('search-more').click()
  await expect(results(page)).toHaveCount(40)
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360)
  await field(page).fill(WORD)
  await expect(results(page)).toHaveCount(1)
  await results(page).first().click()
  const target = messages(page).filter({ hasText: written[TARGET - 1]! })
  await expect(target).toHaveAttribute('data-found', '')
  await expect(target).toBeInViewport()

  // Jump to latest leaves the old page for the newest one.
  await page.getByTestId('jump-to-latest').click()
  await expect(messages(page).filter({ hasText: written[79]! })).toBeInViewport()
  await expect(target).toHaveCount(0)
  await page.getByTestId('back-to-chats').click()
  // The phone's back button in the search sheet closes it.
  await page.getByTestId('search-open').click()
  await page.getByTestId('search-close').click()
  await expect(panel).toBeHidden()
})

test.describe('when the search fails', () => {
  // The refused and cut-off requests below are logged by the browser.
  test.use({ expectedConsoleErrors: /Failed to load resource/ })

  test('a network failure offers Try again, a throttle waits and asks again by itself', async ({ people }) => {
    const ada = await people.signIn('ada', { name: 'Ada' })
    const bob = await people.signIn('bob', { name: 'Bob' })
    await addContact(ada, bob)
    await seedMessages(ada, bob, 4, body)
    const page = await openChat(ada)
    await page.getByTestId('search-open').click()

    await page.route('**/api/search?*', route => route.abort('internetdisconnected'))
    await field(page).fill(WORD)
    const error = page.getByTestId('search-error')
    await expect(error).toHaveAttribute('data-kind', 'network')
    await expect(error).toContainText('Natter can’t be reached')
    await page.unroute('**/api/search?*')
    await page.getByTestId('search-retry').click()
    await expect(results(page)).toHaveCount(1)

    // 429 with Retry-After: said, then asked again without a key pressed.
    let refused = 0
    await page.route('**/api/search?*', async (route) => {
      if (refused++) return route.continue()
      await route.fulfill({ status: 429, headers: { 'retry-after': '1' }, contentType: 'application/json', body: JSON.stringify({ message: 'Too many searches at once: wait a moment.', data: { code: 'throttled' } }) })
    })
    await field(page).fill(`${WORD} budget`)
    await expect(error).toHaveAttribute('data-kind', 'throttled')
    await expect(error).toContainText('Natter asks again in 1 s')
    await expect(results(page)).toHaveCount(1)
    await expect(error).toBeHidden()
  })
})

test('in a room: in:#name finds it, the sender is named, and around it the room\'s own lines stay where they happened', async ({ people }) => {
  const ada = await people.signIn('ada', { name: 'Ada' })
  const bob = await people.signIn('bob', { name: 'Bob' })
  const { conversation } = await call(ada, 'POST', '/api/rooms', { name: 'Plans', visibility: 'private', members: [bob.email] })
  const roomBody = (index: number) => index === 19 ? `The ${WORD} enclosure opens in spring` : `Room ${String(index + 1).padStart(3, '0')}`
  await say(bob, conversation.id, Array.from({ length: 30 }, (_, index) => roomBody(index)))
  await call(ada, 'PATCH', `/api/conversations/${conversation.id}`, { name: 'Plans 2026' })
  await say(bob, conversation.id, Array.from({ length: 60 }, (_, index) => roomBody(index + 30)))

  const page = await openChat(ada)
  await page.getByTestId('search-open').click()
  await field(page).fill(`in:#plans ${WORD}`)
  await expect(page.getByTestId('search-chip')).toHaveText('In: #Plans 2026')
  await expect(results(page)).toHaveCount(1)
  await expect(page.getByTestId('search-group-name')).toHaveText('#Plans 2026')
  // Ada never opened the room: its members are fetched to name the sender.
  await expect(results(page).getByTestId('search-result-sender')).toHaveText('Bob')
  await field(page).press('Enter')
  const target = messages(page).filter({ hasText: roomBody(19) })
  await expect(target).toHaveAttribute('data-found', '')

  // Around it: the rename between Room 030 and Room 031, every position in the server's order.
  const shown = await timeline(page)
  const renamed = shown.findIndex(item => /renamed the room/.test(item.text))
  expect(renamed).toBeGreaterThan(0)
  expect(shown[renamed - 1]!.text).toBe('Room 030')
  expect(shown[renamed + 1]!.text).toBe('Room 031')
  const all = await serverSeqs(ada, conversation.id)
  expect(shown.map(item => item.seq)).toEqual(all.filter(seq => seq >= shown[0]!.seq && seq <= shown.at(-1)!.seq))

  // Down to the newest and up to the start: every position once, in order.
  const list = page.getByTestId('message-list')
  await expect.poll(async () => {
    await list.evaluate((element) => {
      element.scrollTop = element.scrollHeight
    })
    return messages(page).filter({ hasText: 'Room 090' }).count()
  }, { timeout: 30_000 }).toBe(1)
  await expect.poll(async () => {
    await list.evaluate((element) => {
      element.scrollTop = 0
    })
    return page.getByTestId('history-start').count()
  }, { timeout: 30_000 }).toBe(1)
  expect((await timeline(page)).map(item => item.seq)).toEqual(all)
})
