import type { Page } from '@playwright/test'
import { addContact, messages, openChat, write } from './support/chat'
import { createRoom, lines, roomRow } from './support/rooms'
import { expect, ORIGIN, test, waitForHydration } from './support/fixtures'

// Every style the Content-Security-Policy refuses, as the browser reports it to the page. (zod's
// check whether it may compile validators, `Function('')`, is refused by script-src as it should
// be, and zod does without.)
async function recordViolations(page: Page) {
  await page.addInitScript(() => {
    const seen: string[] = []
    Object.assign(window, { cspViolations: seen })
    document.addEventListener('securitypolicyviolation', (event) => {
      if (event.violatedDirective.startsWith('style-src')) seen.push(`${event.violatedDirective} ${event.blockedURI} ${event.sample}`)
    })
  })
}

const violations = (page: Page) => page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations)
const background = (page: Page) => page.locator('.v-application').evaluate(element => getComputedStyle(element).backgroundColor)

test.describe('the style policy', () => {
  // The one style this test injects on purpose is refused, and Chromium says so in the console.
  test.use({ expectedConsoleErrors: /^Applying inline style violates the following Content Security Policy directive 'style-src 'self' 'nonce-/ })

  test('pages render styled under a policy without inline styles, in both themes; an injected style is refused', async ({ people }) => {
    const ada = await people.signIn('ada')
    const page = ada.page
    await recordViolations(page)

    await page.goto('/')
    await waitForHydration(page)
    // The theme stylesheet and the components' inlined CSS applied: light background, fixed app bar.
    await expect(page.locator('.v-application')).toHaveClass(/v-theme--light/)
    expect(await background(page)).toBe('rgb(248, 249, 251)')
    // The layout's sizes come in style attributes rendered on the server: the main area clears the bar.
    const bar = await page.locator('header.v-app-bar .v-toolbar__content').evaluate(element => getComputedStyle(element).height)
    expect(bar).toMatch(/^[1-9]\d*px$/)
    expect(await page.locator('main.v-main').evaluate(element => getComputedStyle(element).paddingTop)).toBe(bar)

    // Switching the theme rewrites Vuetify's <style> element in the browser: it needs the nonce too.
    await page.getByTestId('account-menu').click()
    await page.getByTestId('theme-toggle').click()
    await expect(page.locator('.v-application')).toHaveClass(/v-theme--dark/)
    await expect.poll(() => background(page)).toBe('rgb(21, 23, 28)')
    // And after a reload, rendered dark by the server.
    await page.reload()
    await waitForHydration(page)
    expect(await background(page)).toBe('rgb(21, 23, 28)')
    expect(await violations(page)).toEqual([])

    // What markup injection would add: a style element without the nonce. It is not applied.
    const outline = await page.evaluate(() => {
      const style = document.createElement('style')
      style.textContent = 'body { outline: 7px solid red }'
      document.head.append(style)
      return getComputedStyle(document.body).outlineWidth
    })
    expect(outline).not.toBe('7px')
    await expect.poll(() => violations(page)).toEqual([expect.stringMatching(/^style-src-elem inline /)])
  })
})

test('a malformed cookie planted for the site changes nothing', async ({ context, page }) => {
  await context.addCookies(['natter_theme', 'natter_csrf', 'natter_session'].map(name => ({ name, value: '%E0%A4%A', url: ORIGIN })))
  await recordViolations(page)
  await page.goto('/')
  await expect(page).toHaveURL(`${ORIGIN}/login`)
  await waitForHydration(page)
  await expect(page.getByRole('heading', { name: 'Sign in to Natter' })).toBeVisible()
  // The server told the browser to drop them; the CSRF cookie is a fresh, well-formed one.
  const left = await context.cookies(ORIGIN)
  expect(left.filter(cookie => cookie.value.includes('%'))).toEqual([])
  expect(left.find(cookie => cookie.name === 'natter_csrf')?.value).toMatch(/^[\w-]{32,64}$/)
  // The page still works: asking for a code is a state change that needs the CSRF token.
  const address = `planted.${Date.now().toString(36)}@example.test`
  await page.getByLabel('Email address').fill(address)
  await page.getByLabel('Email address').press('Enter')
  await expect(page.getByText(`We sent a code to ${address}.`)).toBeVisible()
  expect(await violations(page)).toEqual([])
})

test('a message cannot disguise a link or reorder what follows it', async ({ people }) => {
  const ada = await people.signIn('ada')
  const bob = await people.signIn('bob')
  await addContact(ada, bob)
  const adaPage = await openChat(ada, bob)
  const bobPage = await openChat(bob, ada)

  // A zero-width space in the host, a right-to-left override in the path, one in plain text.
  await write(adaPage, 'Pay at https://exa\u200Bmple.com/\u202Egnp.exe today')
  await write(adaPage, 'report\u202Efdp.exe is attached')
  await write(adaPage, 'next message')
  await expect(messages(bobPage)).toHaveCount(3)

  const link = messages(bobPage).nth(0).getByRole('link')
  await expect(link).toHaveText('https://example.com/%E2%80%AEgnp.exe')
  await expect(link).toHaveAttribute('href', 'https://example.com/%E2%80%AEgnp.exe')

  // The override is inert: "fdp.exe" is laid out left to right, as written, not as "exe.pdf".
  const body = messages(bobPage).nth(1).getByTestId('message-body')
  await expect(body).toHaveAttribute('dir', 'auto')
  const order = await body.evaluate((element) => {
    const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT)
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const at = node.textContent!.indexOf('fdp')
      if (at < 0) continue
      const x = (offset: number) => {
        const range = document.createRange()
        range.setStart(node!, offset)
        range.setEnd(node!, offset + 1)
        return range.getBoundingClientRect().left
      }
      return [x(at), x(at + 1), x(at + 2)]
    }
    return []
  })
  expect(order).toHaveLength(3)
  expect(order[0]!).toBeLessThan(order[1]!)
  expect(order[1]!).toBeLessThan(order[2]!)
  // Nor does it leak into the next message.
  await expect(messages(bobPage).nth(2).getByTestId('message-body')).toHaveText('next message')
})

test('a name in a right-to-left script keeps its place in the lines around it', async ({ people }) => {
  const ada = await people.signIn('ada', { name: 'Ada' })
  const maryam = await people.signIn('maryam', { name: 'مريم' })
  const adaPage = await openChat(ada)
  const maryamPage = await openChat(maryam)
  await createRoom(adaPage, { name: 'Fruit', visibility: 'private', invite: [maryam.email] })
  await expect.poll(() => lines(adaPage)).toEqual(['Ada created the room', 'Ada added مريم'])
  await roomRow(maryamPage, 'Fruit').click()
  await write(maryamPage, '3 apples')
  // Without isolation "مريم: 3 apples" lays out as "3 :مريم apples": the number would jump ahead
  // of the name. Each is its own <bdi>, so the name comes first, then the colon, then the text.
  const preview = roomRow(adaPage, 'Fruit').getByTestId('contact-preview')
  await expect(preview).toContainText('3 apples')
  const [name, text] = await Promise.all(['مريم', '3 apples'].map(part => preview.locator('bdi').getByText(part, { exact: true }).evaluate(element => element.getBoundingClientRect())))
  expect(name!.right).toBeLessThanOrEqual(text!.left)
  await expect(messages(adaPage).getByTestId('message-author')).toHaveText('مريم')
})
