import { execFileSync, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'

// Everything the harness starts registers its stop here, so a failure or Ctrl-C stops it too.
const stops: Array<{ label: string, stop: () => Promise<void> }> = []
const children = new Set<ChildProcess>()

export function onCleanup(label: string, stop: () => Promise<void>) {
  stops.push({ label, stop })
}

/** Runs the registered stops, newest first (servers before the services they use). */
export async function cleanup() {
  while (stops.length) {
    const { label, stop } = stops.pop()!
    try {
      await withTimeout(stop(), 30_000, `stopping ${label}`)
    }
    catch (error) {
      console.error(`bench: stopping ${label} failed: ${error instanceof Error ? error.message : String(error)}`)
    }
  }
}

/** Children are killed by pid (never by name) when the harness exits in any way. */
export function track(child: ChildProcess) {
  children.add(child)
  child.once('exit', () => children.delete(child))
}

process.once('exit', () => {
  for (const child of children) if (child.exitCode === null && child.pid) child.kill('SIGKILL')
})

let interrupted = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) process.exit(130)
    interrupted = true
    console.error(`\nbench: ${signal}: stopping what was started`)
    cleanup().finally(() => process.exit(130))
  })
}

export async function stopChild(child: ChildProcess, graceMs = 15_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  const code = await exited
  clearTimeout(timer)
  return code
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)
    })
  ])
}

export const sleep = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms))

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

const TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  }
  catch {
    return 100
  }
})()

export interface ProcessSample { at: number, cpuMs: number, rssBytes: number }

/** CPU time (user + system) and resident memory of one process, from /proc. */
export function sampleProcess(pid: number): ProcessSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name, which may itself hold spaces: utime and stime are 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[11]) + Number(fields[12])
    const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return { at: performance.now(), cpuMs: (ticks * 1000) / TICKS_PER_SECOND, rssBytes: Number(rss?.[1] ?? 0) * 1024 }
  }
  catch {
    return undefined
  }
}

export interface MachineSample { at: number, busy: number, total: number }

/** The whole machine's CPU counters: what else runs on a shared box shows up here. */
export function sampleMachine(): MachineSample {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number)
  const total = line.slice(0, 8).reduce((sum, value) => sum + value, 0)
  const idle = line[3]! + line[4]!
  return { at: performance.now(), busy: ((total - idle) * 1000) / TICKS_PER_SECOND, total: (total * 1000) / TICKS_PER_SECOND }
}

/** Raises a process's open-file limit (root may raise the hard one too); returns the limit now in force. */
export function raiseFileLimit(pid: number, wanted: number): number {
  try {
    execFileSync('prlimit', ['--pid', String(pid), `--nofile=${wanted}:${wanted}`], { stdio: 'ignore' })
  }
  catch { /* not allowed: keep what there is */ }
  return fileLimit(pid)
}

export function fileLimit(pid: number): number {
  try {
    const line = readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find(row => row.startsWith('Max open files'))
    return Number(line?.split(/\s{2,}/)[1] ?? 0)
  }
  catch {
    return 0
  }
}

/** Keeps the last lines of a child's output, so a failure can show them without holding a whole log. */
export function tailOf(child: ChildProcess, keep = 200): string[] {
  const lines: string[] = []
  const add = (chunk: Buffer) => {
    for (const line of String(chunk).split('\n')) {
      if (!line) continue
      lines.push(line)
      if (lines.length > keep) lines.shift()
    }
  }
  child.stdout?.on('data', add)
  child.stderr?.on('data', add)
  return lines
}

/**
 * The box is shared: waits (bounded) until the machine as a whole is mostly idle before a
 * measurement, and says how busy it was when it gave up.
 */
export async function waitForQuiet(maxBusyPercent: number, timeoutMs: number, log: (line: string) => void): Promise<{ waitedSeconds: number, busyPercent: number }> {
  const started = performance.now()
  let told = false
  if (timeoutMs <= 0) {
    const before = sampleMachine()
    await sleep(1000)
    const after = sampleMachine()
    return { waitedSeconds: 0, busyPercent: Math.round((1000 * (after.busy - before.busy)) / (after.total - before.total)) / 10 }
  }
  for (;;) {
    const before = sampleMachine()
    await sleep(3000)
    const after = sampleMachine()
    const busyPercent = Math.round((1000 * (after.busy - before.busy)) / (after.total - before.total)) / 10
    const waitedSeconds = Math.round((performance.now() - started) / 1000)
    if (busyPercent <= maxBusyPercent) return { waitedSeconds, busyPercent }
    if (performance.now() - started > timeoutMs) {
      log(`machine still ${busyPercent} % busy after ${waitedSeconds} s: measuring anyway`)
      return { waitedSeconds, busyPercent }
    }
    if (!told) log(`machine ${busyPercent} % busy (others' builds and tests): waiting up to ${Math.round(timeoutMs / 1000)} s for ≤ ${maxBusyPercent} %`)
    told = true
  }
}

let niceness = 0

/**
 * On a shared box the processes under test can be given a higher priority (a negative nice;
 * root only): then others' builds slow the measurement down less. Applies to what starts later,
 * and to every thread of this process now.
 */
export function setNiceness(value: number) {
  niceness = value
  if (!value) return
  for (const task of readdirSync(`/proc/${process.pid}/task`)) {
    try {
      execFileSync('renice', ['-n', String(value), '-p', task], { stdio: 'ignore' })
    }
    catch { /* not allowed: stay as we are */ }
  }
}

/** The command and arguments to spawn, under `nice` when a niceness was asked for. */
export function niced(command: string, args: string[]): [string, string[]] {
  return niceness ? ['nice', ['-n', String(niceness), command, ...args]] : [command, args]
}
