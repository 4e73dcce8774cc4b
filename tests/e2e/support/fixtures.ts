import { test as base, expect, type Browser, type BrowserContext, type Page, type TestInfo } from '@playwright/test'
import { APP_PORT, MAILBOX_PORT } from './ports'

export { expect }

export const ORIGIN = `http://127.0.0.1:${APP_PORT}`
const MAILBOX = `http://127.0.0.1:${MAILBOX_PORT}`

interface Traffic {
  /** Every URL the browser asked for, in order. */
  requests: string[]
  consoleErrors: string[]
}

/** A person with a browser of their own (a context), signed in and on a blank page. */
export interface Person {
  id: string
  email: string
  name: string
  context: BrowserContext
  page: Page
  /** The app server this person uses. */
  origin: string
}

export interface People {
  /**
   * Signs a new person in through the API (the sign-in pages have their own spec) from an
   * X-Forwarded-For address of their own, so the per-IP sign-in throttle never adds up.
   */
  signIn(label: string, options?: { name?: string, origin?: string }): Promise<Person>
}

function watch(context: BrowserContext): Traffic {
  const traffic: Traffic = { requests: [], consoleErrors: [] }
  context.on('request', request => traffic.requests.push(request.url()))
  // WebSockets are not requests to Playwright: their handshakes are counted as http(s) URLs.
  const watchSockets = (page: Page) => page.on('websocket', socket => traffic.requests.push(socket.url().replace(/^ws/, 'http')))
  context.pages().forEach(watchSockets)
  context.on('page', watchSockets)
  context.on('console', (message) => {
    if (message.type() === 'error') traffic.consoleErrors.push(message.text())
  })
  context.on('weberror', error => traffic.consoleErrors.push(error.error().message))
  return traffic
}

function expectOnHostAndQuiet(traffic: Traffic, origin: string, expectedConsoleErrors: RegExp | null, who = '') {
  const foreign = traffic.requests.filter(url => !url.startsWith(`${origin}/`) && !/^(data|blob):/.test(url))
  expect(foreign, `requests that left the app’s origin${who}`).toEqual([])
  const unexpected = traffic.consoleErrors.filter(text => !expectedConsoleErrors?.test(text))
  expect(unexpected, `console errors${who}`).toEqual([])
}

// Distinct per worker and per run (a random start), in 10.0.0.0/8.
let nextAddress = Math.floor(Math.random() * 2 ** 16) << 8

async function signInPerson(browser: Browser, testInfo: TestInfo, label: string, options: { name?: string, origin?: string }) {
  const origin = options.origin ?? ORIGIN
  nextAddress += 1
  const address = `10.${(testInfo.workerIndex * 37 + (nextAddress >> 16)) & 255}.${(nextAddress >> 8) & 255}.${nextAddress & 255}`
  const context = await browser.newContext({ baseURL: origin, extraHTTPHeaders: { 'X-Forwarded-For': address } })
  const traffic = watch(context)
  const email = uniqueAddress(testInfo, label)
  const name = options.name ?? label.charAt(0).toUpperCase() + label.slice(1)
  const { token } = await (await context.request.get('/api/auth/csrf')).json() as { token: string }
  const headers = { 'x-csrf-token': token, 'origin': origin }
  const asked = await context.request.post('/api/auth/request-otp', { data: { email }, headers })
  expect(asked.status(), `request-otp for ${email}`).toBe(202)
  const verified = await context.request.post('/api/auth/verify-otp', { data: { email, otp: await signInCode(email) }, headers })
  expect(verified.status(), `verify-otp for ${email}`).toBe(200)
  const { user } = await verified.json() as { user: { id: string } }
  const named = await context.request.patch('/api/me', { data: { displayName: name }, headers })
  expect(named.status(), 'naming').toBe(200)
  const page = await context.newPage()
  return { person: { id: user.id, email, name, context, page, origin }, traffic }
}

/**
 * Every test checks, on the way out, that the browser asked nothing of another host (Natter must
 * work on a closed network) and logged no error. A test that provokes an error answer on purpose
 * (a 401 for a wrong code) matches the console lines it expects with `expectedConsoleErrors`.
 * The same holds for every person a test signs in with `people`.
 */
export const test = base.extend<{ expectedConsoleErrors: RegExp | null, traffic: Traffic, people: People }>({
  expectedConsoleErrors: [null, { option: true }],
  traffic: [async ({ context, expectedConsoleErrors }, use) => {
    const traffic = watch(context)
    await use(traffic)
    expectOnHostAndQuiet(traffic, ORIGIN, expectedConsoleErrors)
  }, { auto: true }],
  people: async ({ browser, expectedConsoleErrors }, use, testInfo) => {
    const made: Array<{ person: Person, traffic: Traffic }> = []
    await use({
      async signIn(label, options = {}) {
        const signedIn = await signInPerson(browser, testInfo, label, options)
        made.push(signedIn)
        return signedIn.person
      }
    })
    try {
      for (const { person, traffic } of made) expectOnHostAndQuiet(traffic, person.origin, expectedConsoleErrors, ` (${person.name})`)
    }
    finally {
      await Promise.all(made.map(({ person }) => person.context.close()))
    }
  }
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
