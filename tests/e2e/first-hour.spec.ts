import { addContact, expectStored, openChat, write } from './support/chat'
import { expect, ORIGIN, test, waitForHydration } from './support/fixtures'

// What a newcomer met in their first hour: each was seen in a browser, so each is checked in one.
test.describe.configure({ timeout: 120_000 })

test.describe('while the page is offline', () => {
  // Offline, the browser refuses requests, and Nuxt reports its app manifest check that could not be made.
  test.use({ expectedConsoleErrors: /net::ERR_INTERNET_DISCONNECTED|NUXT_E5002/ })

  test('presence shows as unknown, and a message that came meanwhile is read once it is on screen', async ({ people }) => {
    const ada = await people.signIn('ada', { name: 'Ada Away' })
    const bob = await people.signIn('bob', { name: 'Bob Here' })
    await addContact(ada, bob)
    await addContact(bob, ada)
    const bobPage = await openChat(bob, ada)
    const adaPage = await openChat(ada, bob)
    const dot = adaPage.getByTestId('contact-row').filter({ hasText: 'Bob Here' }).getByTestId('presence-dot')
    await expect(dot).toHaveAttribute('data-status', 'online')
    await expect(adaPage.getByTestId('chat-presence')).toHaveText('online')

    await ada.context.setOffline(true)
    await expect(adaPage.getByTestId('connection-state')).toHaveAttribute('data-state', 'offline')
    // Bob is still online, but Ada's page cannot vouch for it.
    await expect(dot).toHaveAttribute('data-status', 'unknown')
    await expect(dot).toHaveAttribute('title', 'status unknown while you are offline')
    await expect(adaPage.getByTestId('chat-presence')).toHaveText('status unknown while you are offline')

    await write(bobPage, 'Sent while you were away')
    await expectStored(bobPage, 'Sent while you were away')
    await ada.context.setOffline(false)
    await expect(adaPage.getByTestId('connection-state')).toHaveAttribute('data-state', 'connected', { timeout: 15_000 })
    await expect(adaPage.getByTestId('message').filter({ hasText: 'Sent while you were away' })).toBeVisible()
    await expect(dot).toHaveAttribute('data-status', 'online')
    // On screen in the open chat: no badge, no "(1)" in the tab's title, and the server agrees.
    await expect(adaPage.getByTestId('contact-row').filter({ hasText: 'Bob Here' }).getByTestId('unread-badge')).toHaveCount(0)
    await expect(adaPage).toHaveTitle('Natter')
    await expect.poll(async () => {
      const list = await (await ada.context.request.get('/api/conversations')).json() as Array<{ peer: { user: { id: string } } | null, unread: number }>
      return list.find(conversation => conversation.peer?.user.id === bob.id)?.unread
    }).toBe(0)
    await adaPage.reload()
    await waitForHydration(adaPage)
    await expect(adaPage).toHaveTitle('Natter')
  })
})

test('someone who is added sees the request at once, before any message', async ({ people }) => {
  const ada = await people.signIn('ada', { name: 'Ada Adder' })
  const bob = await people.signIn('bob', { name: 'Bob Added' })
  const bobPage = await openChat(bob)
  await expect(bobPage.getByTestId('contact-row').filter({ hasText: 'Ada Adder' })).toHaveCount(0)
  await addContact(ada, bob)
  const row = bobPage.getByTestId('contact-row').filter({ hasText: 'Ada Adder' })
  await expect(row).toBeVisible()
  await expect(row).toContainText('Wants to chat with you')
})

test('an avatar never shows a symbol, and times follow the locale', async ({ people }) => {
  const ada = await people.signIn('ada', { name: '<Ada> Symbol' })
  const bob = await people.signIn('bob', { name: 'Bob Clock' })
  await addContact(bob, ada)
  await addContact(ada, bob)
  const bobPage = await openChat(bob, ada)
  await expect(bobPage.getByTestId('contact-row').filter({ hasText: '<Ada> Symbol' }).locator('.v-avatar').first()).toHaveText('AS')
  await write(bobPage, 'What time is it?')
  await expectStored(bobPage, 'What time is it?')
  // Playwright's Chromium speaks en-US: "3:53 AM", never "03:53 AM".
  const time = bobPage.getByTestId('message').filter({ hasText: 'What time is it?' }).getByTestId('message-time')
  await expect(time).toHaveText(/^([1-9]|1[0-2]):[0-5]\d\s?[AP]M$/u)
})

test.describe('the theme', () => {
  test('follows the system’s dark setting before any choice, live, and the sign-in page can switch it', async ({ browser }) => {
    const context = await browser.newContext({ baseURL: ORIGIN, colorScheme: 'dark' })
    const page = await context.newPage()
    await page.goto('/login')
    await waitForHydration(page)
    const app = page.locator('.v-application')
    await expect(app).toHaveClass(/v-theme--dark/)
    await page.emulateMedia({ colorScheme: 'light' })
    await expect(app).toHaveClass(/v-theme--light/)
    await page.emulateMedia({ colorScheme: 'dark' })
    await expect(app).toHaveClass(/v-theme--dark/)
    // A choice made on the sign-in page wins over the system's, and is there on the next load.
    await page.getByTestId('theme-toggle').click()
    await expect(app).toHaveClass(/v-theme--light/)
    await page.reload()
    await waitForHydration(page)
    await expect(app).toHaveClass(/v-theme--light/)
    await context.close()
  })
})
