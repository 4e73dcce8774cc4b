import { addContact, composer, expectStored, openChat, statusOf, write } from './support/chat'
import { expect, test } from './support/fixtures'

// Two or three browser contexts and a server on a small CI machine: more room than one page needs.
test.describe.configure({ timeout: 120_000 })

test('the other person’s presence, typing and reading show up live', async ({ people }) => {
  const ada = await people.signIn('ada', { name: 'Ada Watcher' })
  const bob = await people.signIn('bob', { name: 'Bob Busy' })
  await addContact(ada, bob)
  await addContact(bob, ada)

  const adaPage = await openChat(ada)
  const bobRow = adaPage.getByTestId('contact-row').filter({ hasText: 'Bob Busy' })
  const dot = bobRow.getByTestId('presence-dot')
  await expect(dot).toHaveAttribute('data-status', 'offline')

  // Bob opens the app: green. Ada opens the chat: the header says so too.
  const bobPage = await openChat(bob)
  await expect(dot).toHaveAttribute('data-status', 'online')
  expect(await dot.evaluate(element => getComputedStyle(element).backgroundColor)).toBe('rgb(43, 138, 62)')
  await bobRow.click()
  const header = adaPage.getByTestId('chat-presence')
  await expect(header).toHaveText('online')

  // Ada writes while Bob looks at his list: sent, not read, and an unread badge for Bob.
  await write(adaPage, 'Are you there?')
  await expect(statusOf(adaPage, 'Are you there?')).toHaveAttribute('data-status', 'sent')
  const adaRow = bobPage.getByTestId('contact-row').filter({ hasText: 'Ada Watcher' })
  await expect(adaRow.getByTestId('unread-badge')).toHaveText('1')

  // Bob opens the chat: the tick turns to read, with the time on hover.
  await adaRow.click()
  await expect(statusOf(adaPage, 'Are you there?')).toHaveAttribute('data-status', 'read')
  await expect(statusOf(adaPage, 'Are you there?')).toHaveAttribute('title', /^Read today at /)
  await expect(adaRow.getByTestId('unread-badge')).toHaveCount(0)

  // Bob types: "typing…" in Ada's header and in her list; it clears when he empties the field.
  const bobComposer = composer(bobPage)
  await bobComposer.pressSequentially('Yes, I')
  await expect(adaPage.getByTestId('chat-header').getByTestId('typing')).toHaveText('typing…')
  await expect(bobRow.getByTestId('typing')).toHaveText('typing…')
  await bobComposer.fill('')
  await expect(adaPage.getByTestId('chat-header').getByTestId('typing')).toHaveCount(0)
  await expect(header).toHaveText('online')

  // Typing again, then sending: the message replaces "typing…".
  await bobComposer.pressSequentially('Yes, I am here')
  await expect(adaPage.getByTestId('chat-header').getByTestId('typing')).toBeVisible()
  await bobComposer.press('Enter')
  await expect(adaPage.getByTestId('chat-header').getByTestId('typing')).toHaveCount(0)
  await expect(bobRow.getByTestId('contact-preview')).toHaveText('Yes, I am here')

  // Bob closes his page: grey, and "last seen" instead of "online".
  await bobPage.close()
  await expect(dot).toHaveAttribute('data-status', 'offline', { timeout: 30_000 })
  await expect(header).toHaveText(/^last seen (just now|1 min ago)$/)
})

test('with read receipts off, nobody sees reads, and the reader’s own badges still clear', async ({ people }) => {
  const ada = await people.signIn('ada', { name: 'Ada Sender' })
  const bob = await people.signIn('bob', { name: 'Bob Private' })
  const conversationId = await addContact(ada, bob)
  await addContact(bob, ada)

  const bobPage = await openChat(bob)
  await bobPage.getByTestId('account-menu').click()
  const toggle = bobPage.getByTestId('read-receipts-toggle')
  await expect(toggle).toContainText('Others see when you’ve read')
  await toggle.click()
  await expect(toggle).toContainText('Off: no one sees reads')
  await expect(bobPage.getByTestId('retention-note')).toHaveText('Messages are kept for 7 days.')
  await bobPage.keyboard.press('Escape')

  const adaPage = await openChat(ada, bob)
  await write(adaPage, 'Read this quietly')
  await expectStored(adaPage, 'Read this quietly')
  const adaRow = bobPage.getByTestId('contact-row').filter({ hasText: 'Ada Sender' })
  await expect(adaRow.getByTestId('unread-badge')).toHaveText('1')
  await adaRow.click()
  await expect(adaRow.getByTestId('unread-badge')).toHaveCount(0)

  // The server took Bob's read (his unread count is 0 there too) and told Ada nothing.
  await expect.poll(async () => {
    const contacts = await (await bob.context.request.get('/api/contacts')).json() as Array<{ conversationId: string, unread: number }>
    return contacts.find(contact => contact.conversationId === conversationId)?.unread
  }).toBe(0)
  await expect(statusOf(adaPage, 'Read this quietly')).toHaveAttribute('data-status', 'sent')
  await adaPage.reload()
  await expect(statusOf(adaPage, 'Read this quietly')).toHaveAttribute('data-status', 'sent')
})
