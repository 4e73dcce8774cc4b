import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SMTP_PORT } from './ports'

const APP_SERVER = join(import.meta.dirname, 'app-server.mjs')

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => resolve(port))
    })
  })
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, exited?: () => boolean) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (exited?.()) throw new Error(`${what}: the process exited before it was ready`)
    if (await check().catch(() => false)) return
    if (Date.now() > deadline) throw new Error(`${what} was not ready within ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 200))
  }
}

function exitOf(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise(resolve => child.once('exit', () => resolve()))
}

/**
 * A second app server for one spec, besides the one playwright.config.ts starts: its own port and
 * a data folder that outlives the process, so the spec can kill it (SIGKILL, no goodbye to anyone)
 * and start it again on the same data.
 */
export class AppServer {
  readonly dataDir = mkdtempSync(join(tmpdir(), 'natter-e2e-restart-'))
  private child: ChildProcess | undefined
  private log: string[] = []

  constructor(readonly port: number, private readonly env: Record<string, string> = {}) {}

  get origin() {
    return `http://127.0.0.1:${this.port}`
  }

  async start(): Promise<void> {
    const child = spawn(process.execPath, [APP_SERVER], {
      env: {
        ...process.env,
        PORT: String(this.port),
        HOST: '127.0.0.1',
        NODE_ENV: 'production',
        NATTER_PUBLIC_URL: this.origin,
        NATTER_SESSION_SECRET: 'e2e-only-session-secret-not-for-production-0123456789abcdef',
        SMTP_URL: `smtp://127.0.0.1:${SMTP_PORT}`,
        DATABASE_URL: '',
        REDIS_URL: '',
        KAFKA_BROKERS: '',
        NITRO_SHUTDOWN_TIMEOUT: '5000',
        ...this.env,
        E2E_DATA_DIR: this.dataDir
      },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    this.child = child
    const keep = (chunk: Buffer) => {
      this.log.push(chunk.toString())
      if (this.log.length > 400) this.log.shift()
      if (process.env.E2E_SERVER_LOG) process.stderr.write(chunk)
    }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
    try {
      await waitFor(`app server on ${this.origin}`, async () => (await fetch(`${this.origin}/api/ready`)).ok, 120_000, () => child.exitCode !== null || child.signalCode !== null)
    }
    catch (error) {
      throw new Error(`${(error as Error).message}\n${this.log.join('').slice(-4000)}`, { cause: error })
    }
  }

  /** Gone at once, as after a crash or an OOM kill: no close frames, no shutdown hook. */
  async kill(): Promise<void> {
    const child = this.child
    if (!child) return
    child.kill('SIGKILL')
    await exitOf(child)
  }

  async stop(): Promise<void> {
    const child = this.child
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await exitOf(child)
    }
    rmSync(this.dataDir, { recursive: true, force: true })
  }
}

/** The machine's redis-server on a free port, kept in memory only; undefined when it is not installed. */
export async function startRedis(): Promise<{ url: string, stop: () => Promise<void> } | undefined> {
  if (spawnSync('redis-server', ['--version']).status !== 0) return undefined
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  const url = `redis://127.0.0.1:${port}`
  await waitFor(`redis on ${url}`, async () => spawnSync('redis-cli', ['-p', String(port), 'ping']).stdout?.toString().trim() === 'PONG', 15_000, () => child.exitCode !== null)
  return {
    url,
    stop: async () => {
      child.kill('SIGTERM')
      await exitOf(child)
    }
  }
}
