import { readdirSync, readFileSync } from 'node:fs'
import { sampleMachine, sampleProcess, type MachineSample, type ProcessSample } from './procs'

/** Every process with this command name, e.g. the PostgreSQL server and its backends. */
export function pidsNamed(name: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === name) pids.push(Number(entry))
    }
    catch { /* gone meanwhile */ }
  }
  return pids
}

export interface UsagePoint { at: number, cpuPercent: number, rssMB: number }
export interface UsageSummary { cpuPercent: number, cpuSeconds: number, rssStartMB: number, rssEndMB: number, rssMaxMB: number }

/**
 * Samples the CPU and RSS of the processes under test (and the machine's CPU, which says how
 * busy the shared box was) once a second. `at` is performance.now(), the load generator's clock.
 */
export class Sampler {
  readonly points = new Map<string, UsagePoint[]>()
  private raw = new Map<string, ProcessSample[]>()
  private machine: MachineSample[] = []
  private timer: NodeJS.Timeout
  private groupCpu = new Map<string, { last: Map<number, number>, total: number }>()

  /** `groups` are sets of processes counted as one, looked up again at every sample. */
  constructor(private readonly pids: Record<string, number>, private readonly groups: Record<string, () => number[]> = {}, everyMs = 1000) {
    this.take()
    this.timer = setInterval(() => this.take(), everyMs)
  }

  private take() {
    for (const [label, pid] of Object.entries(this.pids)) {
      const sample = sampleProcess(pid)
      if (!sample) continue
      const list = this.raw.get(label) ?? []
      const previous = list[list.length - 1]
      list.push(sample)
      this.raw.set(label, list)
      if (previous) {
        const points = this.points.get(label) ?? []
        points.push({ at: sample.at, cpuPercent: (100 * (sample.cpuMs - previous.cpuMs)) / (sample.at - previous.at), rssMB: sample.rssBytes / 2 ** 20 })
        this.points.set(label, points)
      }
    }
    for (const [label, find] of Object.entries(this.groups)) {
      const state = this.groupCpu.get(label) ?? { last: new Map<number, number>(), total: 0 }
      const first = !this.groupCpu.has(label)
      let rss = 0
      const seen = new Map<number, number>()
      for (const pid of find()) {
        const sample = sampleProcess(pid)
        if (!sample) continue
        // A process that appears later counts from zero: it was started during the window.
        if (!first) state.total += sample.cpuMs - (state.last.get(pid) ?? 0)
        seen.set(pid, sample.cpuMs)
        rss += sample.rssBytes
      }
      state.last = seen
      this.groupCpu.set(label, state)
      const list = this.raw.get(label) ?? []
      const previous = list[list.length - 1]
      const sample = { at: performance.now(), cpuMs: state.total, rssBytes: rss }
      list.push(sample)
      this.raw.set(label, list)
      if (previous) {
        const points = this.points.get(label) ?? []
        points.push({ at: sample.at, cpuPercent: (100 * (sample.cpuMs - previous.cpuMs)) / (sample.at - previous.at), rssMB: sample.rssBytes / 2 ** 20 })
        this.points.set(label, points)
      }
    }
    this.machine.push(sampleMachine())
  }

  /** Mean CPU (100 % = one core) and RSS of one process between two moments. */
  usage(label: string, from = 0, to = Infinity): UsageSummary | undefined {
    const samples = (this.raw.get(label) ?? []).filter(sample => sample.at >= from - 500 && sample.at <= to + 1000)
    if (samples.length < 2) return undefined
    const first = samples[0]!
    const last = samples[samples.length - 1]!
    const cpuSeconds = (last.cpuMs - first.cpuMs) / 1000
    const rss = samples.map(sample => sample.rssBytes / 2 ** 20)
    return {
      cpuPercent: Math.round((10 * 100 * cpuSeconds * 1000) / (last.at - first.at)) / 10,
      cpuSeconds: Math.round(cpuSeconds * 100) / 100,
      rssStartMB: Math.round(rss[0]! * 10) / 10,
      rssEndMB: Math.round(rss[rss.length - 1]! * 10) / 10,
      rssMaxMB: Math.round(Math.max(...rss) * 10) / 10
    }
  }

  /** The whole machine's busy share (100 % = every core) between two moments. */
  machineBusy(from = 0, to = Infinity): number {
    const samples = this.machine.filter(sample => sample.at >= from - 500 && sample.at <= to + 1000)
    if (samples.length < 2) return 0
    const first = samples[0]!
    const last = samples[samples.length - 1]!
    return Math.round((1000 * (last.busy - first.busy)) / (last.total - first.total)) / 10
  }

  /** The cores the machine spent beyond the listed processes: everyone else on the shared box. */
  othersCores(labels: string[], from = 0, to = Infinity): number {
    const samples = this.machine.filter(sample => sample.at >= from - 500 && sample.at <= to + 1000)
    if (samples.length < 2) return 0
    const first = samples[0]!
    const last = samples[samples.length - 1]!
    const wall = last.at - first.at
    const machineCores = (last.busy - first.busy) / wall
    const ours = labels.reduce((sum, label) => sum + (this.usage(label, from, to)?.cpuSeconds ?? 0) * 1000 / wall, 0)
    return Math.round(Math.max(0, machineCores - ours) * 100) / 100
  }

  /** Takes one sample now: a figure read right after a phase needs a fresh point. */
  now() {
    this.take()
  }

  stop() {
    clearInterval(this.timer)
    this.take()
  }
}
