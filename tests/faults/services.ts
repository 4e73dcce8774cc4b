import { execFile } from 'node:child_process'
import { appendFileSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { WebSocket } from 'ws'
import { summaryTable, type ChatLoad, type FaultSummary, type LoadClient, type ReadinessLog, type Verdict } from '../support/load'
import type { MailCatcher } from '../support/mail-catcher'
import { root } from '../support/paths'
import { startServer, type TestServer } from '../support/server'

const run = promisify(execFile)
export const wait = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/** Runs a command, bounded in time; its output is kept for the error when it fails. */
export async function sh(command: string, args: string[], timeoutMs = 90_000) {
  const { stdout } = await run(command, args, { cwd: root, timeout: timeoutMs, killSignal: 'SIGKILL' })
  return stdout.trim()
}

/** Polls `check` until it is true; fails after `timeoutMs`. */
export async function until(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs / 1000} s: ${what}`)
    await wait(250)
  }
}

// Kafka: the broker scripts/services.sh started (SIGKILL on stop: no clean shutdown of its logs).
export const kafka = {
  async stop() {
    await sh('bash', ['scripts/services.sh', 'kafka-stop'])
  },
  async start() {
    await sh('bash', ['scripts/services.sh', 'kafka-start'], 120_000)
  }
}

// PostgreSQL: the machine's cluster, stopped in fast mode (open connections are cut).
const pgVersion = () => readdirSync('/etc/postgresql').sort((a, b) => Number(a) - Number(b)).at(-1)!
const pgUp = () => sh('pg_isready', ['-q', '-h', '127.0.0.1', '-p', '5432', '-t', '2']).then(() => true, () => false)
export const postgres = {
  async stop() {
    await sh('pg_ctlcluster', ['--skip-systemctl-redirect', pgVersion(), 'main', 'stop', '-m', 'fast'])
  },
  async start() {
    if (!(await pgUp())) await sh('pg_ctlcluster', ['--skip-systemctl-redirect', pgVersion(), 'main', 'start']).catch(() => undefined)
    await until(pgUp, 60_000, 'PostgreSQL answers')
  }
}

// Redis: no persistence (as in CI), so a restart loses every key, sessions included.
const redisUp = () => sh('redis-cli', ['-h', '127.0.0.1', '-p', '6379', 'ping']).then(answer => answer === 'PONG', () => false)
export const redis = {
  async stop() {
    await sh('redis-cli', ['-h', '127.0.0.1', '-p', '6379', 'shutdown', 'nosave']).catch(() => undefined)
    await until(async () => !(await redisUp()), 10_000, 'Redis stopped')
  },
  async start() {
    if (!(await redisUp())) {
      await sh('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '-::1', '--port', '6379', '--save', '', '--appendonly', 'no',
        '--dir', '/var/lib/redis', '--logfile', '/var/log/redis/ci.log'])
    }
    await until(redisUp, 15_000, 'Redis answers')
  },
  flushAll: () => sh('redis-cli', ['-h', '127.0.0.1', '-p', '6379', 'flushall'])
}

/** App instances sharing the real backends, with a short resend window so people can sign in again at once. */
export function startInstance(mail: MailCatcher): Promise<TestServer> {
  return startServer({ SMTP_URL: mail.url, NATTER_TRUST_PROXY: '1', NATTER_CODE_RESEND_SECONDS: '1' })
}

/** The status a new socket upgrade gets with this client's cookies as they are (0: no answer). */
export function upgradeStatus(client: LoadClient, base = client.base!): Promise<number> {
  const cookie = [...client.person.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
  return new Promise((resolve) => {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws`, { headers: { origin: base, cookie }, handshakeTimeout: 8000 })
    ws.once('open', () => {
      ws.close()
      resolve(101)
    })
    ws.once('unexpected-response', (_request, response) => {
      ws.terminate()
      resolve(response.statusCode ?? 0)
    })
    ws.on('error', () => resolve(0))
  })
}

/** What a person meets mid-outage: a REST read, a resync and a new socket. */
export async function sampleApi(client: LoadClient) {
  const base = client.base!
  const [me, resync, upgrade] = await Promise.all([
    client.person.http(base, 'GET', '/api/me'),
    client.person.http(base, 'GET', `/api/conversations/${client.conversationId}/messages?after=0&limit=1`),
    upgradeStatus(client, base)
  ])
  const shown = (answer: { status: number, json: any }) => `${answer.status}${answer.json?.data?.code ? ` ${answer.json.data.code}` : answer.status >= 400 ? ' (no data.code)' : ''}`
  return { me, resync, upgrade, text: `GET /api/me ${shown(me)}; resync ${shown(resync)}; new socket ${upgrade}` }
}

export interface FaultRun {
  load: ChatLoad
  readiness: ReadinessLog
  instances: TestServer[]
}

/**
 * The shape of every fault test: steady load for a while, the fault (which returns when it is
 * lifted), a probe from every client to time the recovery, more load, then a drain and the
 * invariants. `restore` always runs, whatever happened.
 */
export async function underLoad(name: string, run: FaultRun, fault: () => Promise<void>, restore: () => Promise<void>, options: { warmMs?: number, recoveryMs?: number } = {}) {
  const { load, readiness } = run
  load.startSending()
  readiness.start()
  await wait(options.warmMs ?? 5000)
  const faultAt = Date.now()
  try {
    await fault()
  }
  finally {
    await restore()
  }
  const liftedAt = Date.now()
  const probes = load.probe()
  const recovery = await load.recovered(probes, liftedAt, options.recoveryMs ?? 90_000)
  await wait(3000)
  await load.drain(60_000)
  readiness.stop()
  const verdict = await load.verify(name, recovery, readiness.describe(faultAt, liftedAt))
  report(verdict)
  return { verdict, faultAt, liftedAt }
}

const RESULTS = join(tmpdir(), 'natter-fault-summary.jsonl')

/** Prints the fault's row (and keeps it in the temp folder, so a full run can print one table). */
export function report({ summary, violations }: Verdict) {
  appendFileSync(RESULTS, `${JSON.stringify({ ...summary, at: new Date().toISOString(), violations: violations.length })}\n`)
  console.log(`\n${summaryTable([summary])}\n${violations.length ? `violations:\n- ${violations.slice(0, 20).join('\n- ')}` : 'all invariants hold'}\n`)
}

export type { FaultSummary }
