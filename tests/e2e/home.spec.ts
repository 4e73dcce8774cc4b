import { expect, ORIGIN, test, waitForHydration } from './support/fixtures'

test.describe('the first page', () => {
  test('is rendered on the server: a signed-out visit to / is sent to the sign-in form', async ({ request }) => {
    const root = await request.get('/', { maxRedirects: 0 })
    expect(root.status()).toBe(302)
    expect(root.headers().location).toBe('/login')

    const login = await request.get('/login')
    expect(login.status()).toBe(200)
    const html = await login.text()
    expect(html).toContain('Sign in to Natter')
    expect(html).toContain('Email address')
    expect(html).toMatch(/class="[^"]*v-app-bar/)
  })

  test('shows the sign-in form without JavaScript', async ({ browser }) => {
    const context = await browser.newContext({ javaScriptEnabled: false })
    const page = await context.newPage()
    await page.goto(`${ORIGIN}/`)
    await expect(page).toHaveURL(`${ORIGIN}/login`)
    await expect(page.getByRole('heading', { name: 'Sign in to Natter' })).toBeVisible()
    await expect(page.getByLabel('Email address')).toBeVisible()
    await context.close()
  })

  test('is styled by Vuetify and asks nothing of another host', async ({ page, traffic }) => {
    await page.goto('/')
    await waitForHydration(page)

    const bar = page.locator('header.v-app-bar')
    await expect(bar).toContainText('Natter')
    expect(await bar.evaluate(element => getComputedStyle(element).backgroundColor)).not.toBe('rgba(0, 0, 0, 0)')
    const font = await page.locator('.v-application').evaluate(element => getComputedStyle(element).fontFamily)
    expect(font).toMatch(/sans-serif/)
    expect(font).not.toMatch(/^"?Times/)
    // The theme's primary colour (#3b5bdb) reached the button: the theme stylesheet is in place.
    const send = page.getByRole('button', { name: 'Send me a code' })
    expect(await send.evaluate(element => getComputedStyle(element).backgroundColor)).toBe('rgb(59, 91, 219)')
    // Icons are inline SVG (@mdi/js), not a web font from a CDN.
    await expect(bar.locator('svg path').first()).toBeAttached()

    expect(traffic.requests.some(url => url.startsWith(`${ORIGIN}/_nuxt/`))).toBe(true)
  })

  test('fits a phone screen', async ({ page }) => {
    await page.setViewportSize({ width: 360, height: 740 })
    await page.goto('/login')
    await waitForHydration(page)
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360)
    const send = await page.getByRole('button', { name: 'Send me a code' }).boundingBox()
    expect(send).not.toBeNull()
    expect(send!.x).toBeGreaterThanOrEqual(0)
    expect(send!.x + send!.width).toBeLessThanOrEqual(360)
  })

  test('checks the address before asking the server', async ({ page, traffic }) => {
    await page.goto('/login')
    await waitForHydration(page)
    const email = page.getByLabel('Email address')
    await email.fill('not an address')
    await email.press('Enter')
    await expect(page.getByText('That does not look like an email address.')).toBeVisible()
    expect(traffic.requests.filter(url => url.includes('/api/auth/request-otp'))).toEqual([])
  })
})
