import { execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort, niced, onCleanup, raiseFileLimit, sleep, stopChild, tailOf, track } from './procs'

export const root = join(import.meta.dirname, '../..')
// The bundle `npm run build` makes, or the one under NATTER_BUILD_DIR (as the test suites read it).
const outputDir = process.env.NATTER_BUILD_DIR ? join(process.env.NATTER_BUILD_DIR, '.output') : join(root, '.output')
export const serverEntry = join(outputDir, 'server/index.mjs')
const run = promisify(execFile)

export interface RunningServer {
  label: string
  url: string
  pid: number
  logs: string[]
  /** Error lines the server logged: a backend outage during a run shows up here. */
  errors: { count: number, first?: string }
  stop(): Promise<void>
}

export interface NatterOptions {
  label: string
  /** DATABASE_URL, REDIS_URL, KAFKA_BROKERS, SMTP_URL: none of them for the embedded backends. */
  env: Record<string, string>
  /** Extra node flags, e.g. --cpu-prof. */
  nodeArgs?: string[]
  fileLimit?: number
  /** Sockets the bench opens, all from 127.0.0.1: the per-address and total caps are raised above it. */
  sockets?: number
}

/** Starts the built bundle the way production does; resolves once /api/ready answers 200. */
export async function startNatter(options: NatterOptions): Promise<RunningServer> {
  if (!existsSync(serverEntry)) throw new Error(`no server bundle at ${serverEntry}: run \`npm run build\` first`)
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const cwd = mkdtempSync(join(tmpdir(), 'natter-bench-server-'))
  // The image's NODE_OPTIONS (Dockerfile): the young generation capped as in production.
  const child = spawn(...niced(process.execPath, ['--max-semi-space-size=16', ...options.nodeArgs ?? [], serverEntry]), {
    cwd,
    env: {
      PATH: process.env.PATH,
      NODE_ENV: 'production',
      PORT: String(port),
      HOST: '127.0.0.1',
      NATTER_PUBLIC_URL: url,
      NATTER_SESSION_SECRET: 'bench-secret-that-is-long-enough-for-natter-0123456789',
      NATTER_DATA_DIR: join(cwd, 'data'),
      // Every bench client signs in from its own (proxied) address: the per-IP code limit stays per person.
      NATTER_TRUST_PROXY: '1',
      NATTER_LOG_LEVEL: 'warn',
      // The embedded runs pass the bench's mail catcher as SMTP_URL; the real ones send no code.
      NATTER_DEV_MAIL: '1',
      ...options.sockets && { NATTER_MAX_SOCKETS_PER_IP: String(options.sockets + 1000), NATTER_MAX_SOCKETS: String(Math.max(10_000, options.sockets + 1000)) },
      ...options.env
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  track(child)
  const logs = tailOf(child)
  const errors: RunningServer['errors'] = { count: 0 }
  const countErrors = (chunk: Buffer) => {
    for (const line of String(chunk).split('\n')) {
      if (!line.includes('"level":"error"')) continue
      errors.count++
      errors.first ??= line.slice(0, 400)
    }
  }
  child.stdout!.on('data', countErrors)
  child.stderr!.on('data', countErrors)
  const stop = async () => {
    await stopChild(child)
    rmSync(cwd, { recursive: true, force: true })
  }
  onCleanup(options.label, stop)
  if (options.fileLimit) raiseFileLimit(child.pid!, options.fileLimit)

  const deadline = Date.now() + 90_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${options.label} exited with ${child.exitCode}:\n${logs.join('\n')}`)
    const ready = await fetch(`${url}/api/ready`).then(response => response.ok, () => false)
    if (ready) break
    if (Date.now() > deadline) throw new Error(`${options.label} not ready within 90 s (${errors.count} errors logged; the first: ${errors.first ?? 'none'}); the last lines:\n${logs.slice(-20).join('\n')}`)
    await sleep(100)
  }
  return { label: options.label, url, pid: child.pid!, logs, errors, stop }
}

/** The floor: bench/relay.ts in its own process, as the server is. */
export async function startRelay(fileLimit?: number): Promise<RunningServer> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const child = spawn(...niced(process.execPath, [join(root, 'bench/relay.ts'), '--port', String(port)]), {
    cwd: root,
    env: { PATH: process.env.PATH },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  track(child)
  const logs = tailOf(child)
  const stop = async () => {
    await stopChild(child, 5000)
  }
  onCleanup('relay', stop)
  if (fileLimit) raiseFileLimit(child.pid!, fileLimit)
  const deadline = Date.now() + 30_000
  while (!(await fetch(`${url}/health`).then(response => response.ok, () => false))) {
    if (child.exitCode !== null) throw new Error(`relay exited with ${child.exitCode}:\n${logs.join('\n')}`)
    if (Date.now() > deadline) throw new Error(`relay not up within 30 s:\n${logs.join('\n')}`)
    await sleep(50)
  }
  return { label: 'relay', url, pid: child.pid!, logs, errors: { count: 0 }, stop }
}

/**
 * A private redis-server: Redis pub/sub channels ignore the database number, so a shared Redis
 * would carry the bench's deliveries to every other Natter (test runs) on the machine.
 */
export async function startPrivateRedis(): Promise<{ url: string, pid: number }> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'natter-bench-redis-'))
  const child = spawn(...niced('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]), { stdio: ['ignore', 'pipe', 'pipe'] })
  track(child)
  const logs = tailOf(child)
  onCleanup('redis', async () => {
    await stopChild(child, 5000)
    rmSync(dir, { recursive: true, force: true })
  })
  const deadline = Date.now() + 15_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited:\n${logs.join('\n')}`)
    const answer = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'ping']).then(out => out.stdout.trim(), () => '')
    if (answer === 'PONG') break
    if (Date.now() > deadline) throw new Error(`redis-server not up within 15 s:\n${logs.join('\n')}`)
    await sleep(100)
  }
  return { url: `redis://127.0.0.1:${port}`, pid: child.pid! }
}

const kafkaHome = join(root, '.cache/kafka')

/**
 * A private single-node Kafka from the jars `npm run services:up` fetched, with the same settings
 * as scripts/kafka/server.properties.template. Natter's topic (chat.messages) and persister group
 * (natter-persister) have fixed names: on the shared broker the bench's persister would join the
 * test servers' group and take partitions whose conversations are in another database.
 */
export async function startPrivateKafka(): Promise<{ brokers: string, pid: number }> {
  const libs = join(kafkaHome, 'libs')
  if (!existsSync(libs) || !readdirSync(libs).some(name => name.startsWith('kafka_2.13-'))) {
    throw new Error(`no Kafka jars in ${libs}: run \`npm run services:up\` once, or pass --kafka 127.0.0.1:9092`)
  }
  const [port, controllerPort] = [await freePort(), await freePort()]
  const dir = mkdtempSync(join(tmpdir(), 'natter-bench-kafka-'))
  mkdirSync(join(dir, 'data'))
  const props = join(dir, 'server.properties')
  writeFileSync(props, [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    'controller.listener.names=CONTROLLER',
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    `log.dirs=${join(dir, 'data')}`,
    'auto.create.topics.enable=true',
    'num.partitions=1',
    'default.replication.factor=1',
    'min.insync.replicas=1',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    'broker.heartbeat.interval.ms=1000',
    'broker.session.timeout.ms=3000',
    'num.network.threads=2',
    'num.io.threads=2',
    'num.recovery.threads.per.data.dir=1',
    ''
  ].join('\n'))
  const java = ['-Dlog4j2.configurationFile=' + join(root, 'scripts/kafka/log4j2.xml'), '-cp', `${libs}/*`]
  onCleanup('kafka data', async () => rmSync(dir, { recursive: true, force: true }))
  // Kafka's own form of a cluster id: 16 random bytes, URL-safe base64, not starting with '-'.
  const id = 'B' + randomBytes(16).toString('base64url').slice(1, 22)
  await run('java', [...java, 'kafka.tools.StorageTool', 'format', '-t', id, '-c', props, '-g'], { timeout: 60_000 })
  const child = spawn(...niced('java', ['-Xmx512m', '-Xms256m', '-XX:+ExitOnOutOfMemoryError', '-Djava.awt.headless=true', ...java, 'kafka.Kafka', props]), { stdio: ['ignore', 'pipe', 'pipe'] })
  track(child)
  const logs = tailOf(child, 400)
  onCleanup('kafka', async () => {
    await stopChild(child, 20_000)
  })
  const deadline = Date.now() + 90_000
  while (!logs.some(line => line.includes('Kafka Server started'))) {
    if (child.exitCode !== null) throw new Error(`private Kafka exited:\n${logs.slice(-30).join('\n')}`)
    if (Date.now() > deadline) throw new Error(`private Kafka not started within 90 s:\n${logs.slice(-30).join('\n')}`)
    await sleep(200)
  }
  return { brokers: `127.0.0.1:${port}`, pid: child.pid! }
}

/** Creates the bench database on the machine's PostgreSQL when it is missing. */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url)
  const name = target.pathname.slice(1)
  if (!/^\w+$/.test(name)) throw new Error(`unexpected database name in ${url}`)
  const admin = new URL(url)
  admin.pathname = '/postgres'
  const pg = (await import('pg')).default
  const client = new pg.Client({ connectionString: admin.toString() })
  await client.connect()
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [name])
    if (!found.rowCount) await client.query(`create database ${name}`)
  }
  finally {
    await client.end()
  }
}
