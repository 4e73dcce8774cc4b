import { Secret, TOTP } from 'otpauth'
import { expect, ORIGIN, signInCode, test, waitForHydration } from './support/fixtures'

// Signing in again within a minute of the first code meets the server's one-code-a-minute limit
// per address: the page shows the wait (a 429 in the console) and the test sends again after it.
test.use({ expectedConsoleErrors: /the server responded with a status of 429\b/ })

test('turns two-step sign-in on in the account settings, then signs in with the emailed code and the app\'s code', async ({ people }) => {
  test.setTimeout(150_000)
  const ada = await people.signIn('ada')
  const { page } = ada
  await page.goto('/')
  await waitForHydration(page)

  await page.getByTestId('account-menu').click()
  await page.getByTestId('account-settings').click()
  const dialog = page.getByTestId('account-dialog')
  await expect(dialog.getByRole('heading', { name: 'Devices' })).toBeVisible()
  await expect(dialog.getByTestId('device')).toHaveCount(1)
  await expect(dialog.getByTestId('device')).toContainText('This device')

  await dialog.getByTestId('totp-begin').click()
  await expect(dialog.getByTestId('totp-qr')).toBeVisible()
  const secret = (await dialog.getByTestId('totp-secret').textContent())!.trim()
  const app = (at = Date.now()) => TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: at })
  await dialog.getByLabel('Code from your app').fill(app())
  await dialog.getByTestId('totp-confirm').click()
  await expect(dialog.getByTestId('recovery-codes').locator('code')).toHaveCount(10)
  await expect(dialog.getByTestId('two-step')).toHaveAttribute('data-on', 'true')
  await dialog.getByRole('button', { name: 'Close' }).click()

  await page.getByTestId('account-menu').click()
  await page.getByTestId('sign-out').click()
  await expect(page).toHaveURL(`${ORIGIN}/login`)
  await waitForHydration(page)

  const email = page.getByLabel('Email address')
  await email.fill(ada.email)
  await email.press('Enter')
  const sent = page.getByText(`We sent a code to ${ada.email}.`)
  const refused = page.getByTestId('email-error')
  await expect(sent.or(refused)).toBeVisible()
  if (await refused.isVisible()) {
    await expect(refused).not.toContainText('Try again in', { timeout: 75_000 })
    await page.getByRole('button', { name: 'Send me a code' }).click()
    await expect(sent).toBeVisible()
  }
  await page.getByLabel('6-digit code').fill(await signInCode(ada.email, 2))

  await expect(page.getByRole('heading', { name: 'Two-step sign-in' })).toBeVisible()
  const signingIn = page.waitForResponse(response => response.url().endsWith('/api/auth/verify-totp'))
  // The step the code confirmed the app is spent: the code of the step after it is taken as well.
  await page.getByLabel('Code from your app').fill(app(Date.now() + 30_000))
  expect((await signingIn).status()).toBe(200)
  await expect(page).toHaveURL(`${ORIGIN}/`)
  await expect(page.getByTestId('account-name')).toHaveText(ada.name)
})
