import { test as base, expect, type Page, type TestInfo } from '@playwright/test'

export { expect }

export const ORIGIN = 'http://127.0.0.1:3300'
const MAILBOX = 'http://127.0.0.1:2526'

interface Traffic {
  /** Every URL the browser asked for, in order. */
  requests: string[]
  consoleErrors: string[]
}

/**
 * Every test checks, on the way out, that the browser asked nothing of another host (Natter must
 * work on a closed network) and logged no error. A test that provokes an error answer on purpose
 * (a 401 for a wrong code) matches the console lines it expects with `expectedConsoleErrors`.
 */
export const test = base.extend<{ expectedConsoleErrors: RegExp | null, traffic: Traffic }>({
  expectedConsoleErrors: [null, { option: true }],
  traffic: [async ({ context, expectedConsoleErrors }, use) => {
    const traffic: Traffic = { requests: [], consoleErrors: [] }
    context.on('request', request => traffic.requests.push(request.url()))
    context.on('console', (message) => {
      if (message.type() === 'error') traffic.consoleErrors.push(message.text())
    })
    context.on('weberror', error => traffic.consoleErrors.push(error.error().message))
    await use(traffic)
    const foreign = traffic.requests.filter(url => !url.startsWith(`${ORIGIN}/`) && !/^(data|blob):/.test(url))
    expect(foreign, 'requests that left the app’s origin').toEqual([])
    const unexpected = traffic.consoleErrors.filter(text => !expectedConsoleErrors?.test(text))
    expect(unexpected, 'console errors').toEqual([])
  }, { auto: true }]
})

/** An address no other test (or earlier run) uses: the server allows one code a minute per address. */
export function uniqueAddress(testInfo: TestInfo, label: string): string {
  return `${label}.${Date.now().toString(36)}.w${testInfo.workerIndex}@example.test`
}

/** Waits until Vue has taken over the server-rendered page, so typing and clicks reach it. */
export async function waitForHydration(page: Page): Promise<void> {
  await page.waitForFunction(() => {
    const nuxt = (window as { useNuxtApp?: () => { isHydrating?: boolean } }).useNuxtApp?.()
    return nuxt?.isHydrating === false
  })
}

interface CaughtMail {
  to: string[]
  subject: string
  text: string
}

/** The mails the catcher holds for an address, oldest first. */
export async function mailsTo(address: string): Promise<CaughtMail[]> {
  const response = await fetch(`${MAILBOX}/messages?to=${encodeURIComponent(address)}`)
  if (!response.ok) throw new Error(`mail catcher answered ${response.status}`)
  return await response.json() as CaughtMail[]
}

/**
 * The sign-in code in the `count`-th mail to the address (1 = the first), polling the catcher
 * until it arrives: mail is sent after the HTTP answer, so it may lag behind it a little.
 */
export async function signInCode(address: string, count = 1): Promise<string> {
  let mails: CaughtMail[] = []
  await expect.poll(async () => {
    mails = await mailsTo(address)
    return mails.length
  }, { message: `mail number ${count} to ${address}`, timeout: 15_000, intervals: [100, 200, 500] }).toBeGreaterThanOrEqual(count)
  const mail = mails[count - 1]!
  const code = /\b(\d{6})\b/.exec(mail.text)?.[1]
  if (!code) throw new Error(`no 6-digit code in the mail: ${mail.text}`)
  return code
}
