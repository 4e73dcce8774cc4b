import { randomUUID } from 'node:crypto'
import type { Locator, Page } from '@playwright/test'
import { WebSocket } from 'ws'
import { addContact, composer, expectSameHistory, expectStored, messages, openChat, seedMessages, statusOf, write } from './support/chat'
import { expect, test, type Person } from './support/fixtures'
import { createRoom, roomRow } from './support/rooms'

// Two browser contexts, a build and a busy machine: more room than one page needs.
test.describe.configure({ timeout: 180_000 })

/** One message as a page shows it: its body (or that it was deleted), "edited", its reactions. */
interface Shown {
  id: string
  body: string | null
  deleted: boolean
  edited: boolean
  reactions: string[]
}

async function shown(page: Page): Promise<Shown[]> {
  return page.locator('[data-testid="message"][data-id]').evaluateAll(elements => elements.map((element) => {
    const node = element as HTMLElement
    return {
      id: node.dataset.id!,
      body: (node.querySelector('[data-testid="message-body"]') as HTMLElement | null)?.innerText.trim() ?? null,
      deleted: node.dataset.deleted !== undefined,
      edited: !!node.querySelector('[data-testid="message-edited"]'),
      reactions: [...node.querySelectorAll<HTMLElement>('[data-testid="reaction"]')].map(chip => `${chip.dataset.emoji} ${chip.dataset.count}`).sort()
    }
  }))
}

/** The same, as the server has it for this person (history in its current state). */
async function stored(person: Person, conversationId: string, names: Record<string, string>): Promise<Shown[]> {
  const answer = await person.context.request.get(`/api/conversations/${conversationId}/messages?after=0&limit=200`)
  expect(answer.status()).toBe(200)
  const { messages: list } = await answer.json() as { messages: Array<{ id: string, body: string, deleted?: boolean, editedAt?: string | null, reactions?: Array<{ emoji: string, count: number }> }> }
  return list.map(message => ({
    id: message.id,
    body: message.deleted ? null : message.body.replace(/<@([0-9a-f-]{36})>/g, (_, id: string) => `@${names[id]}`),
    deleted: !!message.deleted,
    edited: !message.deleted && !!message.editedAt,
    reactions: (message.reactions ?? []).map(reaction => `${reaction.emoji} ${reaction.count}`).sort()
  }))
}

function message(page: Page, text: string | RegExp): Locator {
  return messages(page).filter({ has: page.getByTestId('message-body').getByText(text, { exact: true }) })
}

/** Opens a message's menu by hovering it and picks an action. */
async function act(page: Page, target: Locator, action: 'react' | 'reply' | 'edit' | 'delete') {
  await target.hover()
  await target.getByTestId('message-menu').click()
  await page.getByTestId(`message-${action}`).click()
}

async function react(page: Page, target: Locator, emoji: string) {
  await act(page, target, 'react')
  await page.getByTestId('reaction-palette').locator(`[data-testid="reaction-option"][data-emoji="${emoji}"]`).first().click()
  await expect(page.getByTestId('reaction-palette')).toBeHidden()
}

function chip(target: Locator, emoji: string): Locator {
  return target.locator(`[data-testid="reaction"][data-emoji="${emoji}"]`)
}

test.describe('message changes between two people in a room', () => {
  // Requests cut off by the offline switch may be logged by the browser.
  test.use({ expectedConsoleErrors: /net::ERR_INTERNET_DISCONNECTED/ })

  test('edit, delete, react, reply and mention, and an outage ends in the server\'s state', async ({ people }) => {
    const ada = await people.signIn('ada', { name: 'Ada' })
    const bob = await people.signIn('bob', { name: 'Bob' })
    const names = { [ada.id]: 'Ada', [bob.id]: 'Bob' }
    const [adaPage, bobPage] = await Promise.all([openChat(ada), openChat(bob)])
    const roomId = await createRoom(adaPage, { name: 'Changes', visibility: 'private', invite: [bob.email] })
    await roomRow(bobPage, 'Changes').click()
    await expect(bobPage.getByTestId('chat-name')).toHaveText('Changes')

    // Edit: Up in the empty composer takes Ada's last message; Enter saves; both see "edited".
    await write(adaPage, 'First draft')
    await expectSameHistory([bobPage], ['First draft'])
    await composer(adaPage).click()
    await composer(adaPage).press('ArrowUp')
    await expect(adaPage.getByTestId('composer-editing')).toBeVisible()
    await expect(composer(adaPage)).toHaveValue('First draft')
    await composer(adaPage).fill('Final text')
    await composer(adaPage).press('Enter')
    await expect(adaPage.getByTestId('composer-editing')).toBeHidden()
    await expect(composer(adaPage)).toHaveValue('')
    for (const page of [adaPage, bobPage]) {
      await expect(message(page, 'Final text').getByTestId('message-edited')).toHaveText('edited')
    }
    // From the menu, and Esc cancels: nothing changes.
    await act(adaPage, message(adaPage, 'Final text'), 'edit')
    await expect(composer(adaPage)).toHaveValue('Final text')
    await composer(adaPage).fill('Not this')
    await composer(adaPage).press('Escape')
    await expect(adaPage.getByTestId('composer-editing')).toBeHidden()
    await expect(composer(adaPage)).toHaveValue('')
    await expectSameHistory([adaPage, bobPage], ['Final text'])
    // Someone else's message has no Edit.
    await message(bobPage, 'Final text').hover()
    await message(bobPage, 'Final text').getByTestId('message-menu').click()
    await expect(bobPage.getByTestId('message-actions')).toBeVisible()
    await expect(bobPage.getByTestId('message-edit')).toHaveCount(0)
    await expect(bobPage.getByTestId('message-delete')).toHaveCount(0)
    await bobPage.keyboard.press('Escape')

    // Reactions: a common one from the palette, one found by search (the emoji set loads then),
    // counts for both, who reacted on hover, and clicking a chip toggles mine.
    await react(bobPage, message(bobPage, 'Final text'), '👍')
    await expect(chip(message(adaPage, 'Final text'), '👍')).toHaveAttribute('data-count', '1')
    await expect(chip(message(adaPage, 'Final text'), '👍')).toHaveAttribute('data-mine', 'false')
    await expect(chip(message(bobPage, 'Final text'), '👍')).toHaveAttribute('data-mine', 'true')
    await chip(message(adaPage, 'Final text'), '👍').hover()
    await expect(adaPage.getByTestId('reaction-people')).toHaveText('Bob')
    await act(adaPage, message(adaPage, 'Final text'), 'react')
    await adaPage.getByTestId('reaction-search').getByRole('textbox').fill('party popper')
    await adaPage.getByTestId('reaction-results').locator('[data-emoji="🎉"]').click()
    await chip(message(adaPage, 'Final text'), '👍').click()
    for (const page of [adaPage, bobPage]) {
      await expect(chip(message(page, 'Final text'), '👍')).toHaveAttribute('data-count', '2')
      await expect(chip(message(page, 'Final text'), '🎉')).toHaveAttribute('data-count', '1')
    }
    await chip(message(bobPage, 'Final text'), '👍').click()
    for (const page of [adaPage, bobPage]) await expect(chip(message(page, 'Final text'), '👍')).toHaveAttribute('data-count', '1')
    await expect(chip(message(bobPage, 'Final text'), '👍')).toHaveAttribute('data-mine', 'false')

    // Keyboard: a focused message opens its menu with Enter; arrows move in it; Esc closes it.
    await message(bobPage, 'Final text').focus()
    await bobPage.keyboard.press('Enter')
    await expect(bobPage.getByTestId('message-actions')).toBeVisible()
    await bobPage.keyboard.press('ArrowDown')
    await expect(bobPage.getByTestId('message-actions').locator(':focus')).toHaveCount(1)
    await bobPage.keyboard.press('Escape')
    await expect(bobPage.getByTestId('message-actions')).toBeHidden()

    // Reply: Bob quotes Ada's message; Esc would cancel, Enter sends; the quote leads to the original.
    await act(bobPage, message(bobPage, 'Final text'), 'reply')
    await expect(bobPage.getByTestId('composer-reply')).toContainText('Replying to Ada')
    await composer(bobPage).press('Escape')
    await expect(bobPage.getByTestId('composer-reply')).toBeHidden()
    await act(bobPage, message(bobPage, 'Final text'), 'reply')
    await write(bobPage, 'Agreed')
    const reply = message(adaPage, 'Agreed')
    await expect(reply.getByTestId('message-quote')).toContainText('Final text')
    // Her own message is quoted as hers ("You"); Bob sees her name.
    await expect(reply.getByTestId('message-quote')).toContainText('You')
    await expect(message(bobPage, 'Agreed').getByTestId('message-quote')).toContainText('Ada')
    await reply.getByTestId('message-quote').click()
    await expect(message(adaPage, 'Final text')).toBeFocused()

    // Mention: with the room not open, Ada gets a mention badge; opened, the message is highlighted.
    await adaPage.goto('/')
    await expect(adaPage.getByTestId('connection-state')).toHaveAttribute('data-state', 'connected', { timeout: 15_000 })
    await composer(bobPage).click()
    await bobPage.keyboard.insertText('Ping @Ad')
    await expect(bobPage.getByTestId('mention-list')).toBeVisible()
    await expect(bobPage.getByTestId('mention-option').first()).toContainText('@Ada')
    await expect(bobPage.locator('[data-testid="mention-option"]:not([data-user-id])')).toHaveCount(0)
    await composer(bobPage).press('Enter')
    await expect(composer(bobPage)).toHaveValue('Ping @Ada ')
    await bobPage.keyboard.insertText('please look')
    await composer(bobPage).press('Enter')
    await expect(statusOf(bobPage, 'Ping @Ada please look')).toHaveAttribute('data-status', 'sent')
    await expect(message(bobPage, 'Ping @Ada please look').getByTestId('mention')).toHaveAttribute('data-user-id', ada.id)
    await expect(roomRow(adaPage, 'Changes').getByTestId('mention-badge')).toBeVisible()
    await roomRow(adaPage, 'Changes').click()
    await expect(message(adaPage, 'Ping @Ada please look')).toHaveAttribute('data-mentioned', '')
    await expect(message(adaPage, 'Final text')).not.toHaveAttribute('data-mentioned', '')
    await expect(roomRow(adaPage, 'Changes').getByTestId('mention-badge')).toHaveCount(0)
    // @room is offered too.
    await composer(bobPage).click()
    await bobPage.keyboard.insertText('@ro')
    await expect(bobPage.locator('[data-testid="mention-option"]:not([data-user-id])')).toContainText('@room')
    await composer(bobPage).press('Escape')
    await expect(bobPage.getByTestId('mention-list')).toBeHidden()
    await composer(bobPage).fill('')

    // Delete: Ada deletes her own message (after confirming); Bob's reply quote says so.
    await act(adaPage, message(adaPage, 'Final text'), 'delete')
    await adaPage.getByTestId('delete-confirm').click()
    for (const page of [adaPage, bobPage]) {
      await expect(page.locator('[data-testid="message"][data-deleted]').first()).toContainText('This message was deleted')
      await expect(message(page, 'Agreed').getByTestId('message-quote')).toContainText('deleted message')
    }
    // The room's owner removes Bob's message: "Removed by Ada" for Bob.
    await act(adaPage, message(adaPage, 'Agreed'), 'delete')
    await adaPage.getByTestId('delete-confirm').click()
    await expect(bobPage.locator('[data-testid="message"][data-deleted]').last()).toContainText('Removed by Ada')
    await expect(adaPage.locator('[data-testid="message"][data-deleted]').last()).toContainText('Removed by you')

    // An outage: Bob goes offline; Ada edits, deletes and reacts; Bob reacts too (queued).
    await write(adaPage, 'To be edited')
    await write(adaPage, 'To be deleted')
    await write(adaPage, 'To be liked')
    await expectSameHistory([bobPage], ['Ping @Ada please look', 'To be edited', 'To be deleted', 'To be liked'])
    await bob.context.setOffline(true)
    await expect(bobPage.getByTestId('connection-state')).toHaveAttribute('data-state', 'offline')
    await act(adaPage, message(adaPage, 'To be edited'), 'edit')
    await composer(adaPage).fill('Edited while you were away')
    await composer(adaPage).press('Enter')
    await expect(message(adaPage, 'Edited while you were away').getByTestId('message-edited')).toBeVisible()
    await act(adaPage, message(adaPage, 'To be deleted'), 'delete')
    await adaPage.getByTestId('delete-confirm').click()
    await expect(message(adaPage, 'To be deleted')).toHaveCount(0)
    await react(adaPage, message(adaPage, 'To be liked'), '❤️')
    await expect(chip(message(adaPage, 'To be liked'), '❤️')).toHaveAttribute('data-count', '1')
    await react(bobPage, message(bobPage, 'Ping @Ada please look'), '😂')
    await expect(message(bobPage, 'To be edited')).toBeVisible()

    await bob.context.setOffline(false)
    await expect(bobPage.getByTestId('connection-state')).toHaveAttribute('data-state', 'connected', { timeout: 15_000 })
    await expect(chip(message(adaPage, 'Ping @Ada please look'), '😂')).toHaveAttribute('data-count', '1')
    const expected = await stored(bob, roomId, names)
    expect(expected.filter(item => item.deleted)).toHaveLength(3)
    for (const page of [adaPage, bobPage]) await expect.poll(() => shown(page)).toEqual(expected)
    // And after a reload, from history alone.
    await bobPage.reload()
    await expect(bobPage.getByTestId('chat-name')).toHaveText('Changes')
    await expect.poll(() => shown(bobPage)).toEqual(expected)
  })
})

/** Sends one message over the person's own socket, answering `replyTo`; resolves once acknowledged. */
async function sendReply(person: Person, conversationId: string, body: string, replyTo: string) {
  const cookies = await person.context.cookies(person.origin)
  const socket = new WebSocket(`${person.origin.replace(/^http/, 'ws')}/ws`, { headers: { cookie: cookies.map(item => `${item.name}=${item.value}`).join('; '), origin: person.origin } })
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject))
  const clientId = randomUUID()
  const answer = new Promise<{ type: string }>((resolve) => {
    socket.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString()) as { type: string, clientId?: string, ref?: string }
      if ((frame.type === 'chat.ack' && frame.clientId === clientId) || (frame.type === 'error' && frame.ref === clientId)) resolve(frame)
    })
  })
  socket.send(JSON.stringify({ type: 'chat.send', conversationId, body, clientId, replyTo }))
  expect((await answer).type).toBe('chat.ack')
  socket.close()
}

test('a quote jumps to an original older than the page; on a phone in dark mode a long-press opens every action', async ({ people }) => {
  const ada = await people.signIn('ada', { name: 'Ada' })
  const bob = await people.signIn('bob', { name: 'Bob' })
  const conversationId = await addContact(ada, bob)
  const written = await seedMessages(ada, bob, 70)
  const first = await ada.context.request.get(`/api/conversations/${conversationId}/messages?after=0&limit=1`)
  const [original] = (await first.json() as { messages: Array<{ id: string, body: string }> }).messages
  expect(original!.body).toBe(written[0])
  await sendReply(bob, conversationId, 'About the very first one', original!.id)

  // The newest page holds the reply, not what it quotes: the click loads older pages down to it.
  const page = await openChat(ada, bob)
  const reply = message(page, 'About the very first one')
  await expect(reply.getByTestId('message-quote')).toContainText(written[0]!)
  await expect(message(page, written[0]!)).toHaveCount(0)
  await reply.getByTestId('message-quote').click()
  await expect(message(page, written[0]!)).toBeFocused()
  await expect(message(page, written[0]!)).toBeInViewport()

  // A phone in dark mode: a long-press opens the sheet with the reactions and every action.
  await page.setViewportSize({ width: 360, height: 740 })
  await page.getByTestId('account-menu').click()
  await page.getByTestId('theme-toggle').click()
  await expect(page.locator('.v-application')).toHaveClass(/v-theme--dark/)
  await page.keyboard.press('Escape')
  const theirs = message(page, 'About the very first one')
  await theirs.scrollIntoViewIfNeeded()
  await theirs.dispatchEvent('pointerdown', { pointerType: 'touch', isPrimary: true })
  const sheet = page.getByTestId('message-sheet')
  await expect(sheet).toBeVisible()
  await expect(sheet.getByTestId('message-edit')).toHaveCount(0)
  await sheet.getByRole('button', { name: 'React with 👍' }).click()
  await expect(sheet).toBeHidden()
  await expect(chip(theirs, '👍')).toHaveAttribute('data-mine', 'true')
  const mine = message(page, written[68]!)
  await mine.dispatchEvent('pointerdown', { pointerType: 'touch', isPrimary: true })
  await expect(sheet.getByTestId('message-delete')).toBeVisible()
  await sheet.getByTestId('message-edit').click()
  await expect(page.getByTestId('composer-editing')).toBeVisible()
  await expect(composer(page)).toHaveValue(written[68]!)
  await composer(page).press('Escape')
  await expect(page.getByTestId('composer-editing')).toBeHidden()
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360)
})

test.describe('a change made offline', () => {
  test.use({ expectedConsoleErrors: /net::ERR_INTERNET_DISCONNECTED/ })

  test('shows as on its way, outlives closing the tab, and is applied once on the next visit', async ({ people }) => {
    const ada = await people.signIn('ada', { name: 'Ada' })
    const bob = await people.signIn('bob', { name: 'Bob' })
    const conversationId = await addContact(ada, bob)
    const adaPage = await openChat(ada, bob)
    await write(adaPage, 'See you at noun')
    await expectStored(adaPage, 'See you at noun')
    await write(adaPage, 'Bring the slides')
    await expectStored(adaPage, 'Bring the slides')

    await ada.context.setOffline(true)
    await expect(adaPage.getByTestId('connection-state')).toHaveAttribute('data-state', 'offline')
    await act(adaPage, message(adaPage, 'See you at noun'), 'edit')
    await composer(adaPage).fill('See you at noon')
    await composer(adaPage).press('Enter')
    // Shown as made, and said to be waiting: nothing pretends the server has it.
    const edited = message(adaPage, 'See you at noon')
    await expect(edited.getByTestId('message-pending')).toHaveAttribute('data-pending', 'edit')
    await expect(edited.getByTestId('message-edited')).toHaveCount(0)
    await react(adaPage, message(adaPage, 'Bring the slides'), '👍')
    await expect(chip(message(adaPage, 'Bring the slides'), '👍')).toHaveAttribute('data-mine', 'true')

    // The tab goes before the network comes back; the next visit sends what waited.
    await adaPage.close()
    await ada.context.setOffline(false)
    const again = await openChat(ada, bob, await ada.context.newPage())
    await expect(message(again, 'See you at noon').getByTestId('message-edited')).toBeVisible()
    await expect(chip(message(again, 'Bring the slides'), '👍')).toHaveAttribute('data-count', '1')
    await expect(again.getByTestId('message-pending')).toHaveCount(0)

    const bobPage = await openChat(bob, ada)
    await expect(message(bobPage, 'See you at noon').getByTestId('message-edited')).toBeVisible()
    await expect(chip(message(bobPage, 'Bring the slides'), '👍')).toHaveAttribute('data-count', '1')
    // Once: one edit and one reaction in the stream, whatever the reload resent.
    const events = await bob.context.request.get(`/api/conversations/${conversationId}/events?after=0`)
    expect(events.status()).toBe(200)
    const kinds = (await events.json() as { events: Array<{ type: string }> }).events.map(event => event.type)
    expect(kinds.filter(type => type === 'chat.update')).toHaveLength(2)
    expect(await again.evaluate(() => Object.keys(localStorage).filter(key => key.startsWith('natter_changes:')))).toEqual([])
  })
})
