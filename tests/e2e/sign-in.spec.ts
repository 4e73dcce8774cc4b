import { expect, ORIGIN, signInCode, test, uniqueAddress, waitForHydration } from './support/fixtures'
import type { Page } from '@playwright/test'

// Each test asks for one or two codes; the whole suite stays far below the server's 20 per IP and hour.

async function askForCode(page: Page, address: string) {
  const email = page.getByLabel('Email address')
  await email.fill(address)
  await email.press('Enter')
  await expect(page.getByText(`We sent a code to ${address}.`)).toBeVisible()
}

/** Types the code the way a paste from the mail arrives: "123 456", in one go. */
async function pasteCode(page: Page, code: string) {
  const field = page.getByLabel('6-digit code')
  await field.fill('')
  await field.focus()
  await page.keyboard.insertText(`${code.slice(0, 3)} ${code.slice(3)}`)
}

test('a new person signs in with the emailed code, names themselves, stays signed in and signs out', async ({ page }, testInfo) => {
  const address = uniqueAddress(testInfo, 'ada')
  const started = Date.now()

  await page.goto('/')
  await expect(page).toHaveURL(`${ORIGIN}/login`)
  await waitForHydration(page)
  await askForCode(page, address)

  const resend = page.getByTestId('resend-code')
  await expect(resend).toBeDisabled()
  await expect(resend).toHaveText(/Send a new code in 0:[0-5]\d/)

  await pasteCode(page, await signInCode(address))

  await expect(page.getByRole('heading', { name: 'What should people call you?' })).toBeVisible()
  const name = page.getByLabel('Display name')
  await expect(name).toHaveValue(address.split('@')[0]!)
  await name.fill('Ada Lovelace')
  await name.press('Enter')

  await expect(page).toHaveURL(`${ORIGIN}/`)
  await expect(page.getByTestId('signed-in-as')).toHaveText('Signed in as Ada Lovelace')
  const took = Date.now() - started
  testInfo.annotations.push({ type: 'sign-in took', description: `${took} ms` })
  expect(took).toBeLessThan(30_000)

  await page.reload()
  await expect(page).toHaveURL(`${ORIGIN}/`)
  await expect(page.getByTestId('signed-in-as')).toHaveText('Signed in as Ada Lovelace')
  await waitForHydration(page)

  const menu = page.getByTestId('account-menu')
  const app = page.locator('.v-application')
  await expect(app).toHaveClass(/v-theme--light/)
  await menu.click()
  await page.getByTestId('theme-toggle').click()
  await expect(app).toHaveClass(/v-theme--dark/)
  // The choice is kept in a cookie and applied on the server: no light flash on the next load.
  await page.reload()
  await expect(app).toHaveClass(/v-theme--dark/)
  await waitForHydration(page)

  await menu.click()
  await page.getByTestId('sign-out').click()
  await expect(page).toHaveURL(`${ORIGIN}/login`)
  await expect(page.getByRole('heading', { name: 'Sign in to Natter' })).toBeVisible()

  // The session is gone on the server too, not only in this tab.
  await page.goto('/')
  await expect(page).toHaveURL(`${ORIGIN}/login`)
})

test.describe('mistakes', () => {
  // The browser logs each refused answer (401 wrong code, 429 throttled) as a console error.
  test.use({ expectedConsoleErrors: /the server responded with a status of (401|429)\b/ })

  test('a wrong code is refused with one message for every refused code, and the right code still works', async ({ page }, testInfo) => {
    const address = uniqueAddress(testInfo, 'grace')
    await page.goto('/login')
    await waitForHydration(page)
    await askForCode(page, address)
    const code = await signInCode(address)
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0')

    await pasteCode(page, wrong)
    await expect(page.getByTestId('code-error')).toContainText('That code isn’t right, or it no longer works. Check the newest mail from Natter, or send a new code.')

    await pasteCode(page, code)
    await expect(page.getByRole('heading', { name: 'What should people call you?' })).toBeVisible()
  })

  test('going back for another address, then asking again at once, shows the wait and a way on', async ({ page, traffic }, testInfo) => {
    const address = uniqueAddress(testInfo, 'linus')
    await page.goto('/login')
    await waitForHydration(page)
    // Without the CSRF cookie (say, it expired) the UI fetches a token before its first POST.
    await page.context().clearCookies({ name: 'natter_csrf' })
    await askForCode(page, address)
    expect(traffic.requests).toContain(`${ORIGIN}/api/auth/csrf`)

    await page.getByRole('button', { name: 'Use another address' }).click()
    const email = page.getByLabel('Email address')
    await expect(email).toHaveValue(address)
    await email.press('Enter')
    const error = page.getByTestId('email-error')
    await expect(error).toContainText(/Try again in 0:[0-5]\d/)

    await error.getByRole('button', { name: 'I already have a code' }).click()
    await expect(page.getByText(`We sent a code to ${address}.`)).toBeVisible()
    await expect(page.getByTestId('resend-code')).toBeDisabled()
    await pasteCode(page, await signInCode(address))
    await expect(page.getByRole('heading', { name: 'What should people call you?' })).toBeVisible()
  })
})
