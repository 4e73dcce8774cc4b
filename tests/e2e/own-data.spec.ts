import { readFile } from 'node:fs/promises'
import { expect, ORIGIN, test, waitForHydration } from './support/fixtures'

test('downloads my data from the account settings, then deletes my account by typing my address', async ({ people }) => {
  const ada = await people.signIn('ada')
  const { page } = ada
  await page.goto('/')
  await waitForHydration(page)
  await page.getByTestId('account-menu').click()
  await page.getByTestId('account-settings').click()
  const dialog = page.getByTestId('account-dialog')

  const downloading = page.waitForEvent('download')
  await dialog.getByTestId('export').click()
  const download = await downloading
  expect(download.suggestedFilename()).toMatch(/^natter-export-\d{4}-\d{2}-\d{2}\.jsonl$/)
  const lines = (await readFile((await download.path())!, 'utf8')).trim().split('\n').map(line => JSON.parse(line))
  expect(lines[0]).toMatchObject({ type: 'profile', id: ada.id, email: ada.email, displayName: ada.name })
  expect(lines.at(-1)).toEqual({ type: 'end', conversations: 0, messages: 0 })

  await dialog.getByTestId('delete-account').click()
  const confirm = dialog.getByTestId('delete-account-confirm')
  const typed = dialog.getByLabel('Type your email address to confirm')
  await typed.fill('someone-else@example.test')
  await expect(confirm).toBeDisabled()
  await typed.fill(ada.email)
  await confirm.click()
  await expect(page).toHaveURL(`${ORIGIN}/login`)
  expect((await page.request.get('/api/me')).status()).toBe(401)
})
