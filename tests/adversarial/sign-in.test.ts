import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { domainToASCII } from 'node:url'
import { Redis } from 'ioredis'
import { simpleParser, type ParsedMail } from 'mailparser'
import { SMTPServer } from 'smtp-server'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { MAX_WRONG_TRIES, VERIFIES_PER_IP_BURST } from '../../server/utils/sign-in'
import { realServices, serviceUrls } from '../support/backends'
import { Client, type Answer } from '../support/client'
import { startServer, type TestServer } from '../support/server'

// An attacker with no account, against the real HTTP path: the embedded store under `unit`, and
// under `services` two instances sharing Redis, so that races cross processes.

interface Delivery {
  /** RCPT TO, as the SMTP server received it: where the mail really goes. */
  recipients: string[]
  mail: ParsedMail
}

// NOTE: smtp-server and mailparser decode punycode domains; on the wire they were ASCII.
const ascii = (address: string) => `${address.slice(0, address.lastIndexOf('@'))}@${domainToASCII(address.slice(address.lastIndexOf('@') + 1))}`

/** A real SMTP server that keeps each mail's envelope beside the parsed mail. */
async function startEnvelopeCatcher() {
  const deliveries: Delivery[] = []
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const recipients = session.envelope.rcptTo.map(rcpt => ascii(rcpt.address))
      simpleParser(stream).then((mail) => {
        deliveries.push({ recipients, mail })
        callback()
      }, callback)
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server.server, 'listening')
  return {
    url: `smtp://127.0.0.1:${(server.server.address() as AddressInfo).port}`,
    deliveries,
    /** The newest delivery to the address after `since` deliveries had arrived. */
    deliveryTo(address: string, since = 0) {
      return vi.waitFor(() => {
        const delivery = deliveries.slice(since).reverse().find(d => d.recipients.includes(address))
        if (!delivery) throw new Error(`nothing delivered to ${address} yet, only to ${deliveries.slice(since).flatMap(d => d.recipients).join(', ') || 'no one'}`)
        return delivery
      }, { timeout: 10_000, interval: 25 })
    },
    close: () => new Promise<void>(resolve => server.close(() => resolve()))
  }
}

type Catcher = Awaited<ReturnType<typeof startEnvelopeCatcher>>

let catcher: Catcher
let servers: TestServer[]
const dirs: string[] = []
const freshDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'natter-adversarial-'))
  dirs.push(dir)
  return dir
}
const serverEnv = () => ({ SMTP_URL: catcher.url, NATTER_TRUST_PROXY: '1', NATTER_CODE_RESEND_SECONDS: '1', NATTER_DATA_DIR: freshDir() })

beforeAll(async () => {
  catcher = await startEnvelopeCatcher()
  servers = await Promise.all(Array.from({ length: realServices ? 2 : 1 }, () => startServer(serverEnv())))
})
afterAll(async () => {
  await Promise.all(servers.map(server => server.stop()))
  await catcher.close()
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

const address = (label: string) => `${label}-${randomUUID().slice(0, 8)}@example.org`

// Client IPs (the servers trust X-Forwarded-For) counted from a random start, so runs on a shared Redis never meet.
let nextIp = Math.floor(Math.random() * 2 ** 24)
const freshIp = () => `10.${(nextIp >> 16) & 255}.${(nextIp >> 8) & 255}.${nextIp++ & 255}`

/** One browser (one CSRF cookie) per instance, sending each request from the IP it is given. */
async function attackers(targets: TestServer[] = servers): Promise<Client[]> {
  return Promise.all(targets.map(async (server) => {
    const client = new Client(server.url)
    await client.get('/api/auth/csrf')
    return client
  }))
}
const from = (client: Client, ip: string, path: string, body: unknown) => client.request('POST', path, body, { headers: { 'x-forwarded-for': ip } })

async function askForCode(email: string, client: Client, ip = freshIp()): Promise<string> {
  const since = catcher.deliveries.length
  const answer = await vi.waitFor(async () => {
    const asked = await from(client, ip, '/api/auth/request-otp', { email })
    // The one-second resend window of these servers, when an address asks twice.
    if (asked.status === 429) throw new Error('still throttled')
    return asked
  }, { timeout: 5000, interval: 200 })
  expect(answer.status).toBe(202)
  return (await catcher.deliveryTo(email, since)).mail.subject!.slice(0, 6)
}

/** Sends the requests at most `width` at a time. */
async function inWaves<T>(jobs: Array<() => Promise<T>>, width: number): Promise<T[]> {
  const results: T[] = []
  for (let i = 0; i < jobs.length; i += width) results.push(...await Promise.all(jobs.slice(i, i + width).map(job => job())))
  return results
}

/** Everything a client sees of an answer but the date, request id and page nonce, which differ for every response. */
function seen(answer: Answer) {
  const headers = [...answer.headers]
    .filter(([name]) => name !== 'date' && name !== 'x-request-id')
    .map(([name, value]) => [name, value.replace(/'nonce-[^']+'/g, `'nonce'`)])
  return { status: answer.status, headers, body: answer.body }
}

/** Compared guesses so far, summed over the instances, as their /metrics count them. */
async function comparedGuesses(): Promise<number> {
  let total = 0
  for (const server of servers) {
    const text = await (await fetch(`${server.url}/metrics`)).text()
    for (const result of ['right', 'wrong']) {
      const line = text.split('\n').find(l => l.startsWith(`natter_signin_guesses_total{result="${result}"}`))
      total += line ? Number(line.split(' ').at(-1)) : 0
    }
  }
  return total
}

const otherCode = (code: string, i: number) => String((Number(code) + 1 + i) % 1_000_000).padStart(6, '0')

describe('code guessing is bounded on every store', () => {
  it(`compares at most ${MAX_WRONG_TRIES} of 1,200 parallel guesses at one code, spread over every instance`, async () => {
    const [first] = await attackers()
    const email = address('burst')
    const code = await askForCode(email, first!)
    const clients = await attackers()
    const guesses = Array.from({ length: 1200 }, (_, i) => otherCode(code, i))
    guesses.splice(Math.floor(Math.random() * guesses.length), 0, code)
    // Ten guesses per client IP: the burst tests the code's own bound, not the per-IP limit.
    const ips = Array.from({ length: Math.ceil(guesses.length / 10) }, freshIp)
    const before = await comparedGuesses()

    const answers = await Promise.all(guesses.map((otp, i) => from(clients[i % clients.length]!, ips[i % ips.length]!, '/api/auth/verify-otp', { email, otp })))

    // Answers that disclose a comparison (a tries-left count, or a sign-in) number at most five.
    const disclosing = answers.filter(answer => answer.status === 200 || answer.body?.data?.triesLeft !== undefined)
    expect(disclosing.length).toBeLessThanOrEqual(MAX_WRONG_TRIES)
    const compared = await comparedGuesses() - before
    expect(compared).toBeGreaterThanOrEqual(1)
    expect(compared).toBeLessThanOrEqual(MAX_WRONG_TRIES)
    expect(answers.filter(answer => answer.status === 200).length).toBeLessThanOrEqual(1)
    // Every other answer is the one refusal, none a throttle or an error.
    const refusals = answers.filter(answer => answer.status !== 200)
    expect(new Set(refusals.map(answer => JSON.stringify(answer.body))).size).toBe(1)
    expect(refusals[0]!.status).toBe(401)
  }, 90_000)
})

describe('strangers cannot lock an address or learn that someone is signing in', () => {
  it('lets the owner sign in after 120 bogus verifies for their address with no code pending', async () => {
    const [client] = await attackers()
    const victim = address('victim')
    const bogus = await inWaves(Array.from({ length: 120 }, (_, i) => () => from(client!, freshIp(), '/api/auth/verify-otp', { email: victim, otp: otherCode('000000', i) })), 40)
    expect(bogus.every(answer => answer.status === 401)).toBe(true)

    const owner = new Client(servers[0]!.url)
    const code = await askForCode(victim, owner)
    const signedIn = await from(owner, freshIp(), '/api/auth/verify-otp', { email: victim, otp: code })
    expect(signedIn.status).toBe(200)
    expect(signedIn.body.user.email).toBe(victim)
  })

  it(`limits verifies per client IP: 300 guesses over 30 addresses get ${VERIFIES_PER_IP_BURST} through, then 429 with Retry-After`, async () => {
    const [client] = await attackers()
    const ip = freshIp()
    const targets = Array.from({ length: 30 }, (_, i) => address(`spread${i}`))
    const answers: Answer[] = []
    for (let round = 0; round < 10; round++) {
      answers.push(...await Promise.all(targets.map((email, i) => from(client!, ip, '/api/auth/verify-otp', { email, otp: otherCode('123456', round * 30 + i) }))))
    }
    const throttled = answers.filter(answer => answer.status === 429)
    // The bucket refills one token a minute: a slow run might see one more through.
    expect(answers.length - throttled.length).toBeGreaterThanOrEqual(VERIFIES_PER_IP_BURST)
    expect(answers.length - throttled.length).toBeLessThanOrEqual(VERIFIES_PER_IP_BURST + 1)
    const retryAfter = Number(throttled[0]!.headers.get('retry-after'))
    expect(retryAfter).toBeGreaterThan(0)
    expect(throttled[0]!.body).toMatchObject({ statusCode: 429, data: { code: 'throttled', retryAfter } })
    // Another network is not held back by this one.
    expect((await from(client!, freshIp(), '/api/auth/verify-otp', { email: targets[0], otp: '123456' })).status).toBe(401)
  })

  it('answers alike for no code, a wrong code, a replaced code, a used code and a void code', async () => {
    const [client] = await attackers()
    const guess = (email: string, otp: string) => from(client!, freshIp(), '/api/auth/verify-otp', { email, otp })
    const answers: Record<string, Answer> = {}

    answers.none = await guess(address('none'), '123456')

    const pending = address('pending')
    answers.wrong = await guess(pending, otherCode(await askForCode(pending, client!), 0))

    const replaced = address('replaced')
    const older = await askForCode(replaced, client!)
    const newer = await askForCode(replaced, client!)
    answers.replaced = await guess(replaced, older === newer ? otherCode(newer, 0) : older)

    const used = address('used')
    const usedCode = await askForCode(used, client!)
    expect((await guess(used, usedCode)).status).toBe(200)
    answers.used = await guess(used, usedCode)

    const voided = address('void')
    const voidCode = await askForCode(voided, client!)
    for (let i = 0; i < MAX_WRONG_TRIES; i++) await guess(voided, otherCode(voidCode, i))
    answers.void = await guess(voided, voidCode)

    for (const [state, answer] of Object.entries(answers)) expect(seen(answer), state).toEqual(seen(answers.none!))
    expect(answers.none!.status).toBe(401)
    // The one answer still tells the person signing in what to do.
    expect(answers.none!.body.message).toMatch(/ask for a new code/i)
  })
})

describe('the address that signs in is the mailbox that gets the code', () => {
  const id = () => randomUUID().slice(0, 8)
  it.each([
    ['a plain address', (x: string) => `${x}@example.org`, (x: string) => `${x}@example.org`],
    ['a +tag', (x: string) => `${x}+chat@example.org`, (x: string) => `${x}+chat@example.org`],
    ['an apostrophe and dots', (x: string) => `o'${x}.b@example.org`, (x: string) => `o'${x}.b@example.org`],
    ['an internationalised domain, mailed as punycode', (x: string) => `${x}@Bücher.example`, (x: string) => `${x}@xn--bcher-kva.example`]
  ])('mails the code for %s to exactly the address that then signs in', async (_label, typed, mailbox) => {
    const [client] = await attackers()
    const x = `m${id()}`
    const ip = freshIp()
    const since = catcher.deliveries.length
    expect((await from(client!, ip, '/api/auth/request-otp', { email: typed(x) })).status).toBe(202)
    const delivery = await catcher.deliveryTo(mailbox(x), since)
    expect(delivery.recipients).toEqual([mailbox(x)])
    const to = [delivery.mail.to].flat().flatMap(header => header!.value)
    expect(to.map(({ name, address }) => ({ name, address: ascii(address!) }))).toEqual([{ name: '', address: mailbox(x) }])
    const signedIn = await from(client!, ip, '/api/auth/verify-otp', { email: typed(x), otp: delivery.mail.subject!.slice(0, 6) })
    expect(signedIn.status).toBe(200)
    expect(signedIn.body.user.email).toBe(mailbox(x))
  })

  it.each([
    'attacker:victim@example.com;',
    'a,b@example.com',
    '"q"@example.com',
    '(c)x@example.com',
    'victim<x@evil.example>',
    'victim@example.com <x@evil.example>',
    'a..b@example.com',
    '.a@example.com',
    'a.@example.com',
    'a@b@example.com',
    'a@-example.com',
    'a@example..com',
    'a@exa_mple.com',
    'a@[127.0.0.1]',
    'a@127.0.0.1',
    'ü@example.com',
    'a@bücher.example/evil.example'
  ])('refuses %s with 400 before any mail', async (email) => {
    const [client] = await attackers()
    const since = catcher.deliveries.length
    const answer = await from(client!, freshIp(), '/api/auth/request-otp', { email })
    expect(answer.status).toBe(400)
    expect(answer.body).toMatchObject({ statusCode: 400, data: { code: 'invalid_body' } })
    // A refused address never reaches a code: its verify is refused the same way.
    expect((await from(client!, freshIp(), '/api/auth/verify-otp', { email, otp: '123456' })).status).toBe(400)
    expect(catcher.deliveries.length).toBe(since)
  })
})

describe('state stays bounded', () => {
  const prefix = `${process.env.NATTER_NAMESPACE || 'natter'}:`

  /** Every key the store holds: scanned on Redis; in process, read from the file a clean stop writes. */
  async function redisKeys(): Promise<Map<string, number>> {
    const redis = new Redis(serviceUrls.REDIS_URL)
    const keys = new Map<string, number>()
    for await (const batch of redis.scanStream({ match: `${prefix}*`, count: 1000 })) for (const key of batch as string[]) keys.set(key, 0)
    await redis.quit()
    return keys
  }
  function fileKeys(file: string): Map<string, number> {
    return new Map((JSON.parse(readFileSync(file, 'utf8')) as Array<[string, string, number | null]>).map(([key, value]) => [key, value.length]))
  }

  it('writes no key for 3,000 bogus verifies of addresses that have no code pending', async () => {
    // In process, a server of its own: its file, written whole at a clean stop, is its store.
    const env = serverEnv()
    const file = realServices ? undefined : join(env.NATTER_DATA_DIR, 'store.json')
    let targets = realServices ? servers : [await startServer(env)]
    // 150 client IPs whose per-IP buckets exist before the count: 20 bogus verifies each after it.
    const ips = Array.from({ length: 150 }, freshIp)
    // A label of this run's own: a shared Redis may hold keys of earlier runs (of older code).
    const label = `bogus${randomUUID().slice(0, 6)}`
    const bogusVerify = (clients: Client[], i: number) => from(clients[i % clients.length]!, ips[i % ips.length]!, '/api/auth/verify-otp', { email: address(label), otp: '123456' })
    try {
      let clients = await attackers(targets)
      await inWaves(ips.map((_, i) => () => bogusVerify(clients, i)), 50)
      let before: Map<string, number>
      if (file) {
        await targets[0]!.stop()
        before = fileKeys(file)
        targets = [await startServer(env)]
        clients = await attackers(targets)
      }
      else {
        before = await redisKeys()
      }
      const sizeBefore = file ? statSync(file).size : 0

      const answers = await inWaves(Array.from({ length: 3000 }, (_, i) => () => bogusVerify(clients, i)), 100)
      expect(answers.filter(answer => answer.status !== 401)).toEqual([])

      if (file) await targets[0]!.stop()
      const after = file ? fileKeys(file) : await redisKeys()
      expect([...after.keys()].filter(key => !before.has(key))).toEqual([])
      expect([...after.keys()].filter(key => key.includes(label))).toEqual([])
      // The buckets' values change length a little as they refill (a float each); nothing else grows.
      if (file) expect(statSync(file).size - sizeBefore).toBeLessThan(ips.length * 20)
    }
    finally {
      if (file) await targets[0]!.stop()
    }
  }, 120_000)
})
