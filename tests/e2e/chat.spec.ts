import { addContact, composer, expectSameHistory, expectStored, history, messages, openChat, seedMessages, statusOf, write } from './support/chat'
import { expect, test } from './support/fixtures'
import { AppServer, freePort, startRedis } from './support/servers'

// Two or three browser contexts and a server on a small CI machine: more room than one page needs.
test.describe.configure({ timeout: 120_000 })

const HTML_LOOKING = '<b>bold?</b> <img src=x onerror="document.title=\'owned\'"> <script>document.title="owned"</script> javascript:alert(1)'

test.describe('chatting', () => {
  // Adding one's own address is a 400 answer, which the browser logs.
  test.use({ expectedConsoleErrors: /the server responded with a status of 400\b/ })

  test('one adds the other by email, the other accepts, they chat live both ways and find the same history after a reload', async ({ people }) => {
    const ada = await people.signIn('ada', { name: 'Ada Lovelace' })
    const bob = await people.signIn('bob', { name: 'Bob Babbage' })
    const adaPage = await openChat(ada)
    const bobPage = await openChat(bob)

    await expect(adaPage.getByTestId('contacts-empty')).toContainText('Add a contact by email to start chatting.')
    await expect(adaPage.getByTestId('signed-in-as')).toHaveText('Signed in as Ada Lovelace')

    // Her own address: the server's own words, and the dialog stays open. (An address without an
    // account is answered like any other: it gets an invitation.)
    await adaPage.getByTestId('add-contact').click()
    const email = adaPage.getByLabel('Their email address')
    await email.fill(ada.email)
    await email.press('Enter')
    await expect(adaPage.getByTestId('add-contact-error')).toHaveText('That is your own address.')
    await email.fill(bob.email)
    await adaPage.getByTestId('add-contact-submit').click()
    await expect(adaPage).toHaveURL(/\/\?c=[\da-f-]{36}$/)
    await expect(adaPage.getByTestId('chat-name')).toHaveText('Bob Babbage')
    await expect(adaPage.getByTestId('conversation-empty')).toContainText('Say hello to Bob Babbage')
    // Until Bob accepts, Ada sees nothing of his presence.
    await expect(adaPage.getByTestId('chat-presence')).toHaveText('Waiting for Bob Babbage to accept')
    await expect(adaPage.getByTestId('chat-header').getByTestId('presence-dot')).toHaveCount(0)

    // Ada writes two lines; Bob, on his list, sees a new row with the unread count, then opens it.
    await write(adaPage, 'Hello Bob!\nThis is a second line.')
    await expect(messages(adaPage)).toHaveCount(1)
    await expect(messages(adaPage).first().getByTestId('message-status')).toHaveAttribute('data-status', 'sent')
    const adaRow = bobPage.getByTestId('contact-row').filter({ hasText: 'Ada Lovelace' })
    await expect(adaRow.getByTestId('unread-badge')).toHaveText('1')
    await expect(adaRow.getByTestId('contact-preview')).toHaveText('Hello Bob! This is a second line.')
    await adaRow.click()
    await expect(bobPage).toHaveURL(new RegExp(`/\\?c=${await adaRow.getAttribute('data-conversation-id')}$`))
    await expect.poll(() => history(bobPage)).toEqual(['Hello Bob!\nThis is a second line.'])
    await expect(adaRow.getByTestId('unread-badge')).toHaveCount(0)
    // A request: Ada learns nothing of his reading until he accepts; then she does.
    await expect(bobPage.getByTestId('request-banner')).toContainText('Ada Lovelace wants to chat with you')
    await expect(messages(adaPage).first().getByTestId('message-status')).toHaveAttribute('data-status', 'sent')
    await bobPage.getByTestId('request-accept').click()
    await expect(bobPage.getByTestId('request-banner')).toHaveCount(0)
    await expect(messages(adaPage).first().getByTestId('message-status')).toHaveAttribute('data-status', 'read')
    await expect(adaPage.getByTestId('chat-presence')).toHaveText('online')

    // Bob answers with a link and with text that looks like HTML: shown as text, never run.
    await write(bobPage, 'See https://example.org/docs?page=2 (the second page).')
    await write(bobPage, HTML_LOOKING)
    await expectSameHistory([adaPage, bobPage], [
      'Hello Bob!\nThis is a second line.',
      'See https://example.org/docs?page=2 (the second page).',
      HTML_LOOKING
    ])
    const link = messages(adaPage).nth(1).getByRole('link')
    await expect(link).toHaveText('https://example.org/docs?page=2')
    await expect(link).toHaveAttribute('href', 'https://example.org/docs?page=2')
    await expect(link).toHaveAttribute('target', '_blank')
    await expect(link).toHaveAttribute('rel', /noopener/)
    const htmlMessage = messages(adaPage).nth(2).getByTestId('message-body')
    await expect(htmlMessage.locator('b, img, script, a')).toHaveCount(0)
    expect(await adaPage.title()).not.toBe('owned')
    await expect(messages(adaPage).nth(2)).toHaveAttribute('data-mine', 'false')
    await expect(messages(bobPage).nth(2)).toHaveAttribute('data-mine', 'true')

    // Day separators, and Ada's reply in the list preview for Bob.
    await expect(adaPage.getByTestId('day-separator')).toHaveText(['Today'])
    await write(adaPage, 'Got it, thanks.')
    await expect(adaRow.getByTestId('contact-preview')).toHaveText('Got it, thanks.')

    const expected = await history(adaPage)
    expect(expected).toHaveLength(4)
    await adaPage.reload()
    await bobPage.reload()
    await expectSameHistory([adaPage, bobPage], expected)
    await expect(composer(adaPage)).toBeEditable()
  })
})

test('a long history loads page by page while scrolling up, and the view stays where it was', async ({ people }) => {
  const ada = await people.signIn('ada', { name: 'Ada Reader' })
  const bob = await people.signIn('bob', { name: 'Bob Writer' })
  await addContact(ada, bob)
  const written = await seedMessages(ada, bob, 120)
  const page = await openChat(ada, bob)
  const list = page.getByTestId('message-list')

  // The newest page, scrolled to its end.
  await expect(messages(page)).toHaveCount(50)
  await expect.poll(() => history(page)).toEqual(written.slice(-50))
  await expect(messages(page).last()).toBeInViewport()
  expect(await list.evaluate(element => element.scrollHeight - element.scrollTop - element.clientHeight)).toBeLessThan(2)

  // Up to the top: the page before arrives above, and the message that was first stays put.
  for (const [shown, firstBody] of [[100, written[70]!], [120, written[20]!]] as const) {
    const first = messages(page).filter({ hasText: firstBody })
    await list.evaluate((element) => {
      element.scrollTop = 0
    })
    const top = await first.evaluate(element => element.getBoundingClientRect().top)
    await expect(messages(page)).toHaveCount(shown)
    expect(Math.abs(await first.evaluate(element => element.getBoundingClientRect().top) - top)).toBeLessThan(2)
  }
  await expect.poll(() => history(page)).toEqual(written)
  await list.evaluate((element) => {
    element.scrollTop = 0
  })
  await expect(page.getByTestId('history-start')).toHaveText('This is the start of your conversation with Bob Writer.')
  await expect(page.getByTestId('jump-to-latest')).toBeVisible()
  await page.getByTestId('jump-to-latest').click()
  await expect(messages(page).last()).toBeInViewport()
})

test.describe('a phone', () => {
  test('shows the list and the chat as separate views', async ({ people }) => {
    const ada = await people.signIn('ada', { name: 'Ada Phone' })
    const bob = await people.signIn('bob', { name: 'Bob Phone' })
    await addContact(ada, bob)
    await ada.page.setViewportSize({ width: 360, height: 740 })
    const page = await openChat(ada)
    const row = page.getByTestId('contact-row')
    await expect(row).toHaveText(/Bob Phone/)
    await expect(page.getByTestId('chat-panel')).toHaveCount(0)
    await row.click()
    await expect(page.getByTestId('chat-panel')).toBeVisible()
    await expect(row).toBeHidden()
    await write(page, 'Typed on a phone')
    await expectStored(page, 'Typed on a phone')
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360)
    await page.getByTestId('back-to-chats').click()
    await expect(row).toBeVisible()
    await expect(row.getByTestId('contact-preview')).toHaveText('You: Typed on a phone')
    await expect(page.getByTestId('chat-panel')).toHaveCount(0)
  })
})

test.describe('a bad connection', () => {
  // Requests cut off by the offline switch may be logged by the browser.
  test.use({ expectedConsoleErrors: /net::ERR_INTERNET_DISCONNECTED/ })

  test('messages written offline wait in the outbox, then both people see the same ordered history', async ({ people }) => {
    const ada = await people.signIn('ada', { name: 'Ada Tunnel' })
    const bob = await people.signIn('bob', { name: 'Bob Surface' })
    await addContact(ada, bob)
    const adaPage = await openChat(ada, bob)
    const bobPage = await openChat(bob, ada)
    await write(adaPage, 'Before the tunnel')
    await expectSameHistory([adaPage, bobPage], ['Before the tunnel'])

    await ada.context.setOffline(true)
    const state = adaPage.getByTestId('connection-state')
    await expect(state).toHaveAttribute('data-state', 'offline')
    await expect(state).toHaveText('Offline')
    await expect(adaPage.getByTestId('composer-hint')).toHaveText('Offline — will send when back')
    await write(adaPage, 'Written in the tunnel, 1')
    await write(adaPage, 'Written in the tunnel, 2')
    await expect(statusOf(adaPage, 'Written in the tunnel, 1')).toHaveAttribute('data-status', 'queued')
    await expect(statusOf(adaPage, 'Written in the tunnel, 2')).toHaveAttribute('data-status', 'queued')
    await expect(statusOf(adaPage, 'Written in the tunnel, 2')).toHaveAttribute('title', 'Waiting for the network')

    // Bob writes meanwhile: his message is stored first, so it comes first for both.
    await write(bobPage, 'Are you in the tunnel?')
    await expectStored(bobPage, 'Are you in the tunnel?')

    await ada.context.setOffline(false)
    await expect(state).toHaveAttribute('data-state', 'connected', { timeout: 15_000 })
    await expectStored(adaPage, 'Written in the tunnel, 1')
    await expectStored(adaPage, 'Written in the tunnel, 2')
    await expect(adaPage.getByTestId('composer-hint')).toHaveText('')
    const expected = ['Before the tunnel', 'Are you in the tunnel?', 'Written in the tunnel, 1', 'Written in the tunnel, 2']
    await expectSameHistory([adaPage, bobPage], expected)
    await adaPage.reload()
    await expectSameHistory([adaPage], expected)
  })

  test('a message whose acknowledgement was lost goes out again after a reload and is stored once', async ({ people }) => {
    const ada = await people.signIn('ada', { name: 'Ada Unlucky' })
    const bob = await people.signIn('bob', { name: 'Bob Patient' })
    await addContact(ada, bob)
    const bobPage = await openChat(bob, ada)

    // This tab's socket reaches the server, but every chat.ack on the way back is dropped.
    const tab = await ada.context.newPage()
    await tab.routeWebSocket(/\/ws$/, (socket) => {
      const server = socket.connectToServer()
      server.onMessage((message) => {
        if (typeof message === 'string' && message.includes('"chat.ack"')) return
        socket.send(message)
      })
    })
    await openChat(ada, bob, tab)
    await write(tab, 'Did this arrive?')
    await expect(statusOf(tab, 'Did this arrive?')).toHaveAttribute('data-status', 'sending')
    // It did: the server stored it and Bob has it.
    await expectSameHistory([bobPage], ['Did this arrive?'])
    await tab.close()

    // The outbox is kept by the browser: the next page sends it again with the same clientId.
    const page = await openChat(ada, bob)
    await expectStored(page, 'Did this arrive?')
    await expectSameHistory([page, bobPage], ['Did this arrive?'])
    expect(await page.evaluate(() => Object.keys(localStorage).filter(key => key.startsWith('natter_outbox:')).map(key => localStorage.getItem(key)))).toEqual([])
    await write(bobPage, 'It did, once.')
    await expectSameHistory([page, bobPage], ['Did this arrive?', 'It did, once.'])
  })
})

test('a message lost on its way to the reader is noticed by the next one and fetched', async ({ people }) => {
  const ada = await people.signIn('ada', { name: 'Ada Sender' })
  const bob = await people.signIn('bob', { name: 'Bob Gappy' })
  await addContact(ada, bob)
  const adaPage = await openChat(ada, bob)
  // Bob's socket loses the first chat.receive that mentions "lost" (as if an instance died with it).
  let dropped = 0
  await bob.page.routeWebSocket(/\/ws$/, (socket) => {
    const server = socket.connectToServer()
    server.onMessage((message) => {
      if (!dropped && typeof message === 'string' && message.includes('"chat.receive"') && message.includes('lost')) {
        dropped += 1
        return
      }
      socket.send(message)
    })
  })
  const bobPage = await openChat(bob, ada)
  await write(adaPage, 'First')
  await write(adaPage, 'This one gets lost')
  await expectStored(adaPage, 'This one gets lost')
  await expectSameHistory([bobPage], ['First'])
  expect(dropped).toBe(1)
  // seq jumps from 1 to 3: Bob's page asks for what it missed.
  await write(adaPage, 'Third')
  await expectSameHistory([adaPage, bobPage], ['First', 'This one gets lost', 'Third'])
})

test.describe('a server restart', () => {
  // While the server is down the browser logs the refused connections; a request in flight when
  // it is killed is reset, and if that was Nuxt's app manifest, Nuxt logs NUXT_E5002 (it fetches
  // the manifest again next time).
  test.use({ expectedConsoleErrors: /net::ERR_CONNECTION_(REFUSED|RESET)|WebSocket connection to .* failed|\[NUXT_E5002\]/ })

  test('a server killed mid-conversation loses nothing acknowledged, and the UI reconnects on its own', async ({ people }) => {
    test.setTimeout(240_000)
    // Sessions live in the store: with the embedded one they die with the process, so this
    // server keeps them in a Redis of its own (the database is the embedded one, on disk).
    const redis = await startRedis()
    test.skip(!redis, 'needs redis-server on the PATH')
    const server = new AppServer(await freePort(), { REDIS_URL: redis!.url })
    try {
      await server.start()
      const ada = await people.signIn('ada', { name: 'Ada Restart', origin: server.origin })
      const bob = await people.signIn('bob', { name: 'Bob Restart', origin: server.origin })
      await addContact(ada, bob)
      const adaPage = await openChat(ada, bob)
      const bobPage = await openChat(bob, ada)
      const before = ['One', 'Two', 'Three', 'Four']
      for (const [index, body] of before.entries()) {
        await write(index % 2 ? bobPage : adaPage, body)
        await expectStored(index % 2 ? bobPage : adaPage, body)
      }
      await expectSameHistory([adaPage, bobPage], before)

      await server.kill()
      for (const page of [adaPage, bobPage]) {
        await expect(page.getByTestId('connection-state')).toHaveAttribute('data-state', /reconnecting|connecting/)
        await expect(page.getByTestId('connection-state')).toHaveText(/Reconnecting in \d+ s|Connecting…/)
      }
      await expect(adaPage.getByTestId('connection-state')).toHaveText(/Reconnecting in \d+ s/)
      await write(adaPage, 'Written while the server was down')
      await expect(statusOf(adaPage, 'Written while the server was down')).toHaveAttribute('data-status', 'queued')
      await expect(adaPage.getByTestId('composer-hint')).toHaveText('Not connected — will send when back')

      await server.start()
      for (const page of [adaPage, bobPage]) {
        await expect(page.getByTestId('connection-state')).toHaveAttribute('data-state', 'connected', { timeout: 45_000 })
      }
      await expectStored(adaPage, 'Written while the server was down')
      await write(bobPage, 'Welcome back')
      const after = [...before, 'Written while the server was down', 'Welcome back']
      await expectSameHistory([adaPage, bobPage], after)
      await adaPage.reload()
      await expectSameHistory([adaPage], after)
    }
    finally {
      await server.stop()
      await redis?.stop()
    }
  })
})
