import { addContact, composer, expectSameHistory, history, messages, openChat, statusOf, write } from './support/chat'
import { expect, test, uniqueAddress } from './support/fixtures'
import { createRoom, lines, member, openMembers, roomRow, serverSeqs, settings, timeline } from './support/rooms'

// Three browser contexts and a server on a small CI machine: more room than one page needs.
test.describe.configure({ timeout: 180_000 })

test.describe('a room of three', () => {
  // Requests cut off by the offline switch may be logged by the browser.
  test.use({ expectedConsoleErrors: /net::ERR_INTERNET_DISCONNECTED/ })

  test('is made, joined from the sidebar and by browsing, chatted in, read, left, and caught up after an outage', async ({ people }) => {
    const ada = await people.signIn('ada', { name: 'Ada' })
    const bob = await people.signIn('bob', { name: 'Bob' })
    const cy = await people.signIn('cy', { name: 'Cy' })
    const [adaPage, bobPage, cyPage] = await Promise.all([openChat(ada), openChat(bob), openChat(cy)])

    // Ada makes a public room and invites Bob by email: it shows up in Bob's sidebar at once.
    const roomId = await createRoom(adaPage, { name: 'Design', topic: 'Pixels and type', visibility: 'public', invite: [bob.email] })
    await expect(adaPage.getByTestId('room-topic')).toHaveText('Pixels and type')
    await expect(adaPage.getByTestId('member-count')).toHaveText('2 members')
    await expect.poll(() => lines(adaPage)).toEqual(['Ada created the room', 'Ada added Bob'])
    await expect(roomRow(adaPage, 'Design').getByTestId('room-icon')).toHaveAttribute('data-visibility', 'public')
    const bobRow = roomRow(bobPage, 'Design')
    await bobRow.click()
    await expect(bobPage.getByTestId('chat-name')).toHaveText('Design')
    await expect.poll(() => lines(bobPage)).toEqual(['Ada created the room', 'Ada added Bob'])

    // Cy finds it by searching as she types, and joins.
    await cyPage.getByTestId('browse-rooms').click()
    await cyPage.getByLabel('Search rooms by name').fill('desi')
    // Other runs on this server may have public rooms of that name too: this one is known by its id.
    const found = cyPage.locator(`[data-testid="browse-room"][data-conversation-id="${roomId}"]`)
    await expect(found).toContainText('2 members')
    await found.getByTestId('browse-room-action').click()
    await expect(cyPage).toHaveURL(new RegExp(`\\?c=${roomId}$`))
    await expect(cyPage.getByTestId('chat-name')).toHaveText('Design')
    for (const page of [adaPage, bobPage, cyPage]) {
      await expect.poll(() => lines(page)).toEqual(['Ada created the room', 'Ada added Bob', 'Cy joined'])
      await expect(page.getByTestId('member-count')).toHaveText('3 members')
    }

    // All three write; each sees the others' names on their messages.
    await write(adaPage, 'Hello room')
    await expectSameHistory([bobPage, cyPage], ['Hello room'])
    await write(bobPage, 'Hi Ada')
    await expectSameHistory([adaPage, cyPage], ['Hello room', 'Hi Ada'])
    await write(cyPage, 'Hey both')
    await expectSameHistory([adaPage, bobPage, cyPage], ['Hello room', 'Hi Ada', 'Hey both'])
    await expect(messages(cyPage).filter({ hasText: 'Hi Ada' }).getByTestId('message-author')).toHaveText('Bob')
    await expect(messages(bobPage).filter({ hasText: 'Hey both' }).getByTestId('message-author')).toHaveText('Cy')

    // Ada and Bob type: Cy sees both names, and the line goes when one empties the field and the other sends.
    const typingLine = cyPage.getByTestId('typing-line')
    await composer(adaPage).pressSequentially('Let me')
    await expect(typingLine).toHaveText('Ada is typing…')
    await composer(bobPage).pressSequentially('One more')
    await expect(typingLine).toHaveText('Ada and Bob are typing…')
    await composer(adaPage).fill('')
    await expect(typingLine).toHaveText('Bob is typing…')
    await composer(bobPage).pressSequentially(' thing')
    await composer(bobPage).press('Enter')
    await expect(typingLine).toHaveCount(0)

    // Ada asks; Bob and Cy have the room open and read it: "Seen by 2", and who, on hover.
    await write(adaPage, 'Can you both see this?')
    const seen = messages(adaPage).filter({ hasText: 'Can you both see this?' }).getByTestId('seen-by')
    await expect(seen).toHaveText('Seen by 2')
    await seen.hover()
    await expect(adaPage.getByTestId('seen-by-names')).toContainText('Bob')
    await expect(adaPage.getByTestId('seen-by-names')).toContainText('Cy')
    await adaPage.keyboard.press('Escape')

    // Cy leaves (after saying she is sure): the room leaves her sidebar, her other tab says she
    // left, and the others see her go.
    const cyOtherTab = await cy.context.newPage()
    await cyOtherTab.goto(`/?c=${roomId}`)
    await expect(cyOtherTab.getByTestId('chat-name')).toHaveText('Design')
    await cyPage.getByTestId('room-menu').click()
    await cyPage.getByTestId('leave-room').click()
    await cyPage.getByTestId('leave-confirm').click()
    await expect(cyPage).toHaveURL(/\/$/)
    await expect(roomRow(cyPage, 'Design')).toHaveCount(0)
    await expect(cyOtherTab.getByTestId('departed')).toContainText('You left this room.')
    await expect(roomRow(cyOtherTab, 'Design')).toHaveCount(0)
    await cyOtherTab.close()
    for (const page of [adaPage, bobPage]) {
      await expect.poll(() => lines(page)).toEqual(['Ada created the room', 'Ada added Bob', 'Cy joined', 'Cy left'])
      await expect(page.getByTestId('member-count')).toHaveText('2 members')
    }

    // Bob loses his network; meanwhile Ada writes twice and renames the room.
    await bob.context.setOffline(true)
    await expect(bobPage.getByTestId('connection-state')).toHaveAttribute('data-state', 'offline')
    await write(adaPage, 'While you were away, 1')
    await write(adaPage, 'While you were away, 2')
    await (await settings(adaPage)).getByLabel('Name').fill('Design team')
    await adaPage.getByTestId('settings-save').click()
    await expect(adaPage.getByTestId('chat-name')).toHaveText('Design team')
    await write(adaPage, 'Renamed it')
    await expect(statusOf(adaPage, 'Renamed it')).toHaveAttribute('data-status', 'sent')
    await expect(bobPage.getByTestId('chat-name')).toHaveText('Design')

    // Back online, Bob's page ends exactly where the server is: every event once, in order.
    await bob.context.setOffline(false)
    await expect(bobPage.getByTestId('connection-state')).toHaveAttribute('data-state', 'connected', { timeout: 15_000 })
    await expect(bobPage.getByTestId('chat-name')).toHaveText('Design team')
    await expect(roomRow(bobPage, 'Design team')).toBeVisible()
    const everything = ['Hello room', 'Hi Ada', 'Hey both', 'One more thing', 'Can you both see this?', 'While you were away, 1', 'While you were away, 2', 'Renamed it']
    await expectSameHistory([adaPage, bobPage], everything)
    const seqs = await serverSeqs(bob, roomId)
    for (const page of [adaPage, bobPage]) {
      await expect.poll(async () => (await timeline(page)).map(item => item.seq)).toEqual(seqs)
      expect(await lines(page)).toEqual(['Ada created the room', 'Ada added Bob', 'Cy joined', 'Cy left', 'Ada renamed the room to Design team'])
    }
    expect((await timeline(bobPage)).map(item => item.text)).toEqual((await timeline(adaPage)).map(item => item.text))
  })
})

test.describe('managing a room', () => {
  // Refusals the test provokes on purpose (a 403) are logged by the browser.
  test.use({ expectedConsoleErrors: /the server responded with a status of 403\b/ })

  test('the owner invites, promotes and removes; an admin changes the topic; a member is held to what the room allows', async ({ people }, testInfo) => {
    const ada = await people.signIn('ada', { name: 'Ada Owner' })
    const bob = await people.signIn('bob', { name: 'Bob Admin' })
    const cy = await people.signIn('cy', { name: 'Cy Member' })
    const adaPage = await openChat(ada)
    const roomId = await createRoom(adaPage, { name: 'Ops', visibility: 'private', invite: [bob.email, cy.email], membersCanInvite: true })
    await expect(roomRow(adaPage, 'Ops').getByTestId('room-icon')).toHaveAttribute('data-visibility', 'private')
    const bobPage = await openChat(bob)
    await roomRow(bobPage, 'Ops').click()
    // Cy is on a phone: the conversation is a view of its own, and the member list a full-screen sheet.
    await cy.page.setViewportSize({ width: 360, height: 740 })
    const cyPage = await openChat(cy)
    await roomRow(cyPage, 'Ops').click()
    await expect(cyPage.getByTestId('conversation-list')).toBeHidden()

    // Ada's member list: roles, presence (Bob and Cy have the app open), and her actions.
    const list = await openMembers(adaPage)
    await expect(member(list, 'Ada Owner').getByTestId('member-role')).toHaveText('Owner')
    await expect(member(list, 'Bob Admin').getByTestId('presence-dot')).toHaveAttribute('data-status', 'online')
    await expect(member(list, 'Cy Member').getByTestId('presence-dot')).toHaveAttribute('data-status', 'online')
    await member(list, 'Bob Admin').getByTestId('member-actions').click()
    await adaPage.getByTestId('make-admin').click()
    await expect(member(list, 'Bob Admin').getByTestId('member-role')).toHaveText('Admin')
    await expect.poll(() => lines(bobPage)).toContain('Ada Owner made Bob Admin an admin')

    // An address with no account yet is added as well: it gets an invitation.
    const dee = uniqueAddress(testInfo, 'dee')
    await list.getByLabel('Invite by email').fill(dee)
    await list.getByTestId('invite-submit').click()
    await expect(list.getByTestId('member-row')).toHaveCount(4)
    await expect(adaPage.getByTestId('member-count')).toHaveText('4 members')

    // Esc closes the list, and the keyboard is back where it was.
    await adaPage.keyboard.press('Escape')
    await expect(list).toBeHidden()
    await expect(adaPage.getByTestId('member-count')).toBeFocused()

    // Bob, an admin now, sets the topic; everyone's header and timeline say so.
    await (await settings(bobPage)).getByLabel('Topic').fill('Pager rota')
    await bobPage.getByTestId('settings-save').click()
    for (const page of [adaPage, bobPage, cyPage]) {
      await expect(page.getByTestId('room-topic')).toHaveText('Pager rota')
      await expect.poll(() => lines(page)).toContain('Bob Admin changed the topic to Pager rota')
    }

    // Cy, a member, opens the list (a sheet on her phone) with an invite field: the room allows it.
    const cyList = await openMembers(cyPage)
    await expect(cyPage.locator('.v-dialog--fullscreen')).toBeVisible()
    expect(await cyPage.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360)
    await expect(member(cyList, 'Cy Member').getByTestId('member-actions')).toHaveCount(0)
    await expect(cyPage.getByTestId('room-menu')).toBeAttached()
    // Meanwhile Ada turns invitations by members off: Cy's try is refused in the server's words.
    await (await settings(adaPage)).getByLabel('Members can invite people').uncheck()
    await adaPage.getByTestId('settings-save').click()
    await expect(adaPage.getByTestId('room-settings-dialog')).toBeHidden()
    await cyList.getByLabel('Invite by email').fill(uniqueAddress(testInfo, 'eve'))
    await cyList.getByTestId('invite-submit').click()
    await expect(cyList.getByTestId('invite-email')).toContainText('Only the owner and admins can add people to this room.')
    await cyPage.getByTestId('close-members').click()

    // Ada removes Cy: Cy's view says so and the room leaves her list; the others see the line.
    const adaList = await openMembers(adaPage)
    await member(adaList, 'Cy Member').getByTestId('member-actions').click()
    await adaPage.getByTestId('remove-member').click()
    await expect(member(adaList, 'Cy Member')).toHaveCount(0)
    await expect(cyPage.getByTestId('departed')).toContainText('Ada Owner removed you from this room.')
    await cyPage.getByRole('button', { name: 'Back to chats' }).click()
    await expect(roomRow(cyPage, 'Ops')).toHaveCount(0)
    await expect.poll(() => lines(bobPage)).toContain('Ada Owner removed Cy Member')
    // What Cy no longer may see answers 404, in the room's events too.
    expect((await cy.context.request.get(`/api/conversations/${roomId}/events`)).status()).toBe(404)
  })
})

test.describe('requests', () => {
  test('a stranger’s first message is a request: accepted, presence shows; blocked, their messages are refused until unblocked', async ({ people }) => {
    const dee = await people.signIn('dee', { name: 'Dee Stranger' })
    const eve = await people.signIn('eve', { name: 'Eve Asked' })
    const fay = await people.signIn('fay', { name: 'Fay Pest' })
    await addContact(dee, eve)
    await addContact(fay, eve)
    const deePage = await openChat(dee, eve)
    const evePage = await openChat(eve)

    // Dee's side: no presence until Eve accepts.
    await expect(deePage.getByTestId('chat-presence')).toHaveText('Waiting for Eve Asked to accept')
    await write(deePage, 'Hi, we met at the conference')
    const deeRow = evePage.getByTestId('contact-row').filter({ hasText: 'Dee Stranger' })
    await expect(deeRow.getByTestId('unread-badge')).toHaveText('1')
    await expect(deeRow.getByTestId('presence-dot')).toHaveCount(0)
    await deeRow.click()
    await expect(evePage.getByTestId('request-banner')).toContainText('Dee Stranger wants to chat with you')
    await expect(evePage.getByTestId('chat-presence')).toHaveText('Wants to chat with you')
    await expect.poll(() => history(evePage)).toEqual(['Hi, we met at the conference'])
    await expect(deeRow.getByTestId('unread-badge')).toHaveCount(0)
    await expect(statusOf(deePage, 'Hi, we met at the conference')).toHaveAttribute('data-status', 'sent')

    // Accepted: the banner goes, each sees the other's presence, and the read reaches Dee.
    await evePage.getByTestId('request-accept').click()
    await expect(evePage.getByTestId('request-banner')).toHaveCount(0)
    await expect(evePage.getByTestId('chat-presence')).toHaveText('online')
    await expect(deeRow.getByTestId('presence-dot')).toHaveAttribute('data-status', 'online')
    await expect(statusOf(deePage, 'Hi, we met at the conference')).toHaveAttribute('data-status', 'read')
    await expect(deePage.getByTestId('chat-presence')).toHaveText('online')

    // Fay's request is blocked: no composer for Eve, Fay's next message is refused in the server's words.
    const fayPage = await openChat(fay, eve)
    await write(fayPage, 'Buy my course')
    const fayRow = evePage.getByTestId('contact-row').filter({ hasText: 'Fay Pest' })
    await fayRow.click()
    await evePage.getByTestId('request-block').click()
    await expect(evePage.getByTestId('request-banner')).toHaveAttribute('data-request', 'blocked')
    await expect(evePage.getByTestId('request-banner')).toContainText('You blocked Fay Pest.')
    await expect(composer(evePage)).toHaveCount(0)
    await write(fayPage, 'Hello?')
    await expect(messages(fayPage).filter({ hasText: 'Hello?' }).getByTestId('message-failed')).toContainText('Not sent: This person does not accept your messages.')
    await expect.poll(() => history(evePage)).toEqual(['Buy my course'])

    // Unblocked: the composer is back, and Eve's answer reaches Fay.
    await evePage.getByTestId('request-unblock').click()
    await expect(evePage.getByTestId('request-banner')).toHaveCount(0)
    await write(evePage, 'Please stop')
    await expect.poll(() => history(fayPage)).toContain('Please stop')
  })
})
