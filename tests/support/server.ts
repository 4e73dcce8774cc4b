import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { backendEnv } from './backends'
import { serverEntry } from './paths'

export interface TestServer {
  url: string
  origin: string
  port: number
  process: ChildProcess
  logs: string[]
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.unref()
    probe.on('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => resolve(port))
    })
  })
}

/** The server's resident memory in MiB, as the kernel counts it (VmRSS). */
export function residentMiB(pid: number): number {
  const kib = Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])
  if (!kib) throw new Error(`no VmRSS for process ${pid}`)
  return kib / 1024
}

/**
 * Nitro's trap prints `[unhandledRejection]` or `[uncaughtException]` for a promise or an error
 * that escaped every handler (a reset socket's, say): the server survives it in production, but
 * `nuxt dev` restarts on it. Stopping a test server throws when its output has one, so every
 * suite that starts a server fails on it.
 */
export function escapedErrors(logs: string[]): string[] {
  return logs.join('').split('\n').filter(line => /unhandledRejection|uncaughtException/i.test(line))
}

export function assertNoEscapedErrors(logs: string[]) {
  const lines = escapedErrors(logs)
  if (lines.length) throw new Error(`the server let an error escape:\n${lines.join('\n')}\n--- full output:\n${logs.join('')}`)
}

/**
 * Starts the production bundle in its own working folder (so `.data` is fresh) with the backends
 * of the current project: embedded under `unit`, real under `services`. Resolves once it is ready.
 */
export interface ServerOptions {
  cwd?: string
  waitForReady?: boolean
  /** Flags for node before the bundle, e.g. `--import` of a fault injector. */
  nodeArgs?: string[]
  /** The test makes an error escape on purpose (to check how it is logged): stopping does not fail on it. */
  injectsEscapes?: boolean
  /** The open-file limit (soft and hard) the server runs with, as a container's `ulimit -n`. */
  openFiles?: number
}

export async function startServer(env: Record<string, string> = {}, options: ServerOptions = {}): Promise<TestServer> {
  const port = await freePort()
  const cwd = options.cwd ?? mkdtempSync(join(tmpdir(), 'natter-server-'))
  const url = `http://127.0.0.1:${port}`
  const node = [process.execPath, ...options.nodeArgs ?? [], serverEntry]
  // prlimit execs node in place: the child's pid stays the server's.
  const [command, ...args] = options.openFiles ? ['prlimit', `--nofile=${options.openFiles}:${options.openFiles}`, ...node] : node
  const child = spawn(command!, args, {
    cwd,
    env: {
      PATH: process.env.PATH,
      NODE_ENV: 'production',
      PORT: String(port),
      HOST: '127.0.0.1',
      NATTER_PUBLIC_URL: url,
      NATTER_SESSION_SECRET: 'test-secret-that-is-long-enough-for-natter-0123456789',
      // Suites that sign people in pass SMTP_URL (a mail catcher); the others never send a code.
      NATTER_DEV_MAIL: '1',
      ...backendEnv(),
      ...env
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const logs: string[] = []
  child.stdout!.on('data', chunk => logs.push(String(chunk)))
  child.stderr!.on('data', chunk => logs.push(String(chunk)))
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))

  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${logs.join('')}`)
    const path = options.waitForReady === false ? '/api/health' : '/api/ready'
    const ready = await fetch(`${url}${path}`).then(response => response.ok, () => false)
    if (ready) break
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`server not ready within 60 s:\n${logs.join('')}`)
    }
    await new Promise(resolve => setTimeout(resolve, 100))
  }

  return {
    url,
    origin: url,
    port,
    process: child,
    logs,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal)
      const code = await exited
      if (!options.cwd) rmSync(cwd, { recursive: true, force: true })
      if (!options.injectsEscapes) assertNoEscapedErrors(logs)
      return code
    }
  }
}
