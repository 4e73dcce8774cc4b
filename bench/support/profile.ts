import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  children?: number[]
}

interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

export interface ProfileSummary {
  file: string
  seconds: number
  idlePercent: number
  /** Self time (shares of the busy time) by package (node_modules/<name>), Natter's own chunks, Node's internals, GC, idle. */
  byArea: Array<{ area: string, ms: number, percent: number }>
  topFunctions: Array<{ fn: string, where: string, ms: number, percent: number }>
}

function areaOf(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg) return pkg[1]!
  if (url.startsWith('node:')) return 'node internals'
  if (url.includes('/.output/server/')) return 'natter (bundle)'
  return url.split('/').slice(-2).join('/')
}

// V8 stamps profiles with the monotonic clock in µs, as process.hrtime does: a window measured in
// the bench process selects the samples of the measured run (not start-up, not seeding).
const offsetMicros = Number(process.hrtime.bigint() / 1000n) - performance.now() * 1000
export const monotonicMicros = (perfMs: number) => perfMs * 1000 + offsetMicros

/** Self time per function and per package from a `node --cpu-prof` profile, within a window if given. */
export function summarizeProfile(file: string, window?: { from: number, to: number }, top = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map(node => [node.id, node]))
  const self = new Map<number, number>()
  let at = profile.startTime
  let first = Infinity
  let last = 0
  profile.samples.forEach((id, index) => {
    at += profile.timeDeltas[index] ?? 0
    if (window && (at < window.from || at > window.to)) return
    first = Math.min(first, at)
    last = Math.max(last, at)
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0))
  })
  const idle = [...self].filter(([id]) => byId.get(id)!.callFrame.functionName === '(idle)').reduce((sum, [, us]) => sum + us, 0)
  const all = [...self.values()].reduce((sum, value) => sum + value, 0) || 1
  // Shares of the busy time: idle is reported once, apart.
  const total = all - idle || 1
  const areas = new Map<string, number>()
  const functions = new Map<string, { fn: string, where: string, us: number }>()
  for (const [id, us] of self) {
    const { callFrame } = byId.get(id)!
    if (callFrame.functionName === '(idle)') continue
    const area = areaOf(callFrame.url, callFrame.functionName)
    areas.set(area, (areas.get(area) ?? 0) + us)
    const where = callFrame.url ? `${callFrame.url.replace(/^.*\/(node_modules|\.output)\//, '$1/')}:${callFrame.lineNumber + 1}` : ''
    const key = `${callFrame.functionName}@${where}`
    const entry = functions.get(key) ?? { fn: callFrame.functionName || '(anonymous)', where, us: 0 }
    entry.us += us
    functions.set(key, entry)
  }
  const percent = (us: number) => Math.round((1000 * us) / total) / 10
  return {
    file,
    seconds: last > first ? (last - first) / 1e6 : 0,
    idlePercent: Math.round((1000 * idle) / all) / 10,
    byArea: [...areas].sort((a, b) => b[1] - a[1]).slice(0, 20).map(([area, us]) => ({ area, ms: Math.round(us / 1000), percent: percent(us) })),
    topFunctions: [...functions.values()].sort((a, b) => b.us - a.us).slice(0, top).map(entry => ({ fn: entry.fn, where: entry.where, ms: Math.round(entry.us / 1000), percent: percent(entry.us) }))
  }
}
