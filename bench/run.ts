// Natter's benchmark harness (issue 7). Starts the built server(s) itself, seeds people, drives
// real WebSocket traffic and measures it against a bare relay on the same machine.
//
//   npm run bench -- <scenario> [--users N] [--rate R] [--duration S] [--backend embedded|real] [--instances 1|2]
//
// Scenarios: seed-100, users-1k, throughput, overload, connections, history, rooms, search. See
// docs/performance.md. Every bench person is the page's own protocol client (shared/sdk), against
// Natter and against the bare relay alike.
import { execFileSync } from 'node:child_process'
import { cpus, loadavg, release, totalmem } from 'node:os'
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { seedDirect, seedViaHttp, type BenchUser, type RoomPlan, type Seeded } from './seed'
import { startMailCatcher } from './support/mail'
import { BenchTransport, CHANGE_KINDS, closeClients, histogram, openClients, percentiles, runLoad, type BenchClient, type LoadResult, type Percentiles, type Route, type Step, type StepStats, type Target } from './support/load'
import { cleanup, fileLimit as openFileLimit, raiseFileLimit, setNiceness, sleep, waitForQuiet } from './support/procs'
import { explainHistory, readHistory, seedHistory } from './support/history'
import { explainSearch, readSearch, searchIndexSizes, seedSearch } from './search'
import { difference, scrape, type ServerMetrics } from './support/metrics'
import { monotonicMicros, summarizeProfile, type ProfileSummary } from './support/profile'
import { ms, ratio, renderSvg, table, type Panel } from './support/report'
import { pidsNamed, Sampler, type UsageSummary } from './support/sampler'
import { ensureDatabase, root, startNatter, startPrivateKafka, startPrivateRedis, startRelay, type RunningServer } from './support/servers'

const SCENARIOS = ['seed-100', 'users-1k', 'throughput', 'overload', 'connections', 'history', 'rooms', 'search'] as const
type Scenario = typeof SCENARIOS[number]

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'users': { type: 'string' },
    'rate': { type: 'string' },
    'duration': { type: 'string' },
    'backend': { type: 'string', default: 'embedded' },
    'instances': { type: 'string', default: '1' },
    'connections': { type: 'string' },
    'warmup': { type: 'string' },
    'body': { type: 'string', default: '100' },
    'relay': { type: 'boolean', default: true },
    'no-relay': { type: 'boolean', default: false },
    'relay-duration': { type: 'string', default: '20' },
    'database': { type: 'string' },
    'rows': { type: 'string', default: '10000000' },
    'messages': { type: 'string', default: '10000000' },
    'scan-up-to': { type: 'string' },
    'seed-timeout': { type: 'string', default: '1800' },
    'redis': { type: 'string', default: 'private' },
    'kafka': { type: 'string', default: 'private' },
    'cpu-prof': { type: 'boolean', default: false },
    'ping-every': { type: 'string' },
    'write-rate': { type: 'string' },
    'quiet': { type: 'string', default: '30' },
    'nice': { type: 'string', default: '0' },
    'quiet-timeout': { type: 'string', default: '0' },
    'room-size': { type: 'string', default: '50' },
    'direct-every': { type: 'string', default: '20' },
    'big-rate': { type: 'string', default: '10' },
    'big-duration': { type: 'string', default: '30' },
    'ramp-seconds': { type: 'string', default: '15' },
    'ramp-max': { type: 'string', default: '200' },
    'changes': { type: 'string', default: '0' },
    'help': { type: 'boolean', default: false }
  }
})

const scenario = positionals[0] as Scenario
if (values.help || !SCENARIOS.includes(scenario)) {
  console.log(`usage: npm run bench -- <${SCENARIOS.join('|')}> [--users N] [--rate R] [--duration S]
       [--backend embedded|real] [--instances 1|2] [--connections N] [--no-relay] [--cpu-prof]
       [--database URL] [--redis private|URL] [--kafka private|HOST:PORT] [--body CHARS] [--warmup S]
       rooms: [--room-size N] [--direct-every N] [--big-rate R] [--big-duration S] [--ramp-seconds S (0: no ramp)] [--ramp-max R]
              [--changes F (0..1: that share of the first step's operations are reactions, edits and deletions)]
       search: --backend real [--messages N (default 10,000,000)] [--rate R searches/s] [--duration S] [--write-rate R]
               [--scan-up-to N (the server's NATTER_SEARCH_SCAN_UP_TO; 0: always through the indexes)]`)
  process.exit(values.help ? 0 : 2)
}

const backend = values.backend === 'real' ? 'real' : 'embedded'
if (values.backend !== 'real' && values.backend !== 'embedded') throw new Error('--backend: embedded or real')
const instances = Number(values.instances)
if (instances !== 1 && instances !== 2) throw new Error('--instances: 1 or 2')
if (instances === 2 && backend === 'embedded') throw new Error('--instances 2 needs --backend real: the embedded store and bus live inside one process')
if (scenario === 'history' && backend !== 'real') throw new Error('history needs --backend real: ten million rows are a job for PostgreSQL, not PGlite')
if (scenario === 'search' && backend !== 'real') throw new Error('search needs --backend real: ten million messages are a job for PostgreSQL, not PGlite')
// The bench's own databases: natter_bench is where bench/retention.ts drops and vacuums partitions.
const databaseUrl = values.database ?? `postgres://postgres@127.0.0.1:5432/${scenario === 'history' ? 'natter_bench_history' : scenario === 'search' ? 'natter_bench_search' : 'natter_bench_load'}`

const num = (value: string | undefined, fallback: number) => {
  if (value === undefined) return fallback
  const parsed = Number(value)
  if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`not a positive number: ${value}`)
  return parsed
}
const even = (n: number) => n + (n % 2)

// Each person sends at most this many a second: the gateway allows 10 a second with bursts of 20.
const MAX_PER_USER_RATE = 6
const RAMP = [50, 100, 250, 500, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 8000, 10_000, 12_000]

/** A step as planned: its route (who writes to which conversation) is made once people are seeded. */
type Traffic = 'pairs' | 'rooms' | 'big-room'
interface StepPlan { rate: number, seconds: number, label?: string, traffic: Traffic, changes?: number }
interface Plan { users: number, rooms: (users: number) => RoomPlan[], steps: StepPlan[], warmup: number, relaySteps: (reached: number) => StepPlan[], drainMs: number }

const noRooms = () => []
// A room has at most this many members (MAX_ROOM_MEMBERS).
const BIG_ROOM = 1000
const BIG_RAMP = [20, 30, 50, 75, 100, 150, 200, 300, 400]

function plan(): Plan {
  const relaySeconds = num(values['relay-duration'], 20)
  switch (scenario) {
    case 'seed-100':
    case 'users-1k': {
      const users = even(num(values.users, scenario === 'seed-100' ? 100 : 1000))
      // One message every ~2 s from each person unless told otherwise.
      const rate = num(values.rate, users / 2)
      const seconds = num(values.duration, 60)
      if (rate / users > MAX_PER_USER_RATE) throw new Error(`--rate ${rate} is more than ${MAX_PER_USER_RATE} a second per person: add --users`)
      return { users, rooms: noRooms, steps: [{ rate, seconds, traffic: 'pairs' }], warmup: num(values.warmup, 3), relaySteps: () => [{ rate, seconds: Math.min(seconds, relaySeconds), traffic: 'pairs' }], drainMs: 20_000 }
    }
    case 'throughput': {
      const users = even(num(values.users, 2000))
      const top = Math.min(num(values.rate, 12_000), users * MAX_PER_USER_RATE)
      const seconds = num(values.duration, 15)
      const rates = RAMP.filter(rate => rate <= top)
      if (!rates.length || rates[rates.length - 1]! < top) rates.push(top)
      const steps = rates.map(rate => ({ rate, seconds, traffic: 'pairs' as const }))
      // A longer warm-up: a freshly started Kafka broker is still compiling its hot paths.
      return { users, rooms: noRooms, steps, warmup: num(values.warmup, 10), relaySteps: reached => steps.slice(0, reached), drainMs: 30_000 }
    }
    case 'overload': {
      // --rate is the highest rate `throughput` held: this runs it, then twice it, then half of
      // it, to see backpressure at the top and recovery after (issue 8).
      const held = num(values.rate, 1000)
      const users = even(num(values.users, Math.max(1000, Math.ceil(2 * held / MAX_PER_USER_RATE))))
      if (2 * held / users > MAX_PER_USER_RATE) throw new Error(`twice --rate ${held} is more than ${MAX_PER_USER_RATE} a second per person: add --users`)
      const seconds = num(values.duration, 30)
      const steps = [{ rate: held, seconds: 15, traffic: 'pairs' as const }, { rate: 2 * held, seconds, traffic: 'pairs' as const }, { rate: Math.round(held / 2), seconds, traffic: 'pairs' as const }]
      return { users, rooms: noRooms, steps, warmup: num(values.warmup, 10), relaySteps: () => [], drainMs: 60_000 }
    }
    case 'history':
    case 'search':
      return { users: even(num(values.users, 2000)), rooms: noRooms, steps: [], warmup: 0, relaySteps: () => [], drainMs: 0 }
    case 'connections': {
      const count = num(values.connections, 5000)
      const users = even(num(values.users, backend === 'real' ? count : Math.min(count, 1000)))
      return { users, rooms: noRooms, steps: [], warmup: 0, relaySteps: () => [], drainMs: 0 }
    }
    case 'rooms': {
      // Everyone in one room of --room-size and one direct conversation; --rate messages a second
      // over them (every --direct-every-th to a direct conversation), then everyone in one big room
      // at --big-rate, then that room's rate ramped until p99 passes 200 ms or something is lost.
      const users = even(num(values.users, 1000))
      const size = num(values['room-size'], 50)
      if (users % size || size < 2 || size > BIG_ROOM) throw new Error(`--room-size ${size}: from 2 to ${BIG_ROOM}, dividing --users ${users}`)
      if (users > BIG_ROOM) throw new Error(`--users ${users}: the big room holds everyone, and a room holds at most ${BIG_ROOM}`)
      const rate = num(values.rate, 100)
      if (rate / users > MAX_PER_USER_RATE) throw new Error(`--rate ${rate} is more than ${MAX_PER_USER_RATE} a second per person: add --users`)
      const bigRate = num(values['big-rate'], 10)
      const rampSeconds = values['ramp-seconds'] === '0' ? 0 : num(values['ramp-seconds'], 15)
      const changes = Number(values.changes)
      if (!(changes >= 0 && changes <= 1)) throw new Error(`--changes ${values.changes}: a fraction from 0 to 1`)
      const rampMax = Math.min(num(values['ramp-max'], 200), users * MAX_PER_USER_RATE)
      const rooms = (count: number): RoomPlan[] => [
        ...Array.from({ length: count / size }, (_, room) => ({ name: `Bench room ${room + 1}`, members: Array.from({ length: size }, (_, k) => room * size + k) })),
        { name: 'Bench big room', members: Array.from({ length: count }, (_, k) => k) }
      ]
      const steps: StepPlan[] = [
        { rate, seconds: num(values.duration, 60), label: `rooms of ${size} + direct${changes ? `, ${Math.round(changes * 100)} % changes` : ''}`, traffic: 'rooms', ...(changes > 0 ? { changes } : {}) },
        { rate: bigRate, seconds: num(values['big-duration'], 30), label: `${users}-member room`, traffic: 'big-room' },
        ...BIG_RAMP.filter(step => rampSeconds && step > bigRate && step <= rampMax).map(step => ({ rate: step, seconds: rampSeconds, label: `${users}-member room, ramp`, traffic: 'big-room' as const }))
      ]
      return {
        users,
        rooms,
        steps,
        warmup: num(values.warmup, 5),
        // The relay knows chat.send only: its first step is plain messages.
        relaySteps: reached => steps.slice(0, reached).map((step, index) => index === 0 ? { ...step, seconds: Math.min(step.seconds, relaySeconds), changes: undefined } : step),
        drainMs: 20_000
      }
    }
  }
}

const settings = plan()
const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)
const runName = `${stamp}-${scenario}-${backend}${instances === 2 ? '-2i' : ''}`
const resultsDir = join(root, 'bench/results', runName)
mkdirSync(resultsDir, { recursive: true })
const log = (line: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${line}`)
const t0 = performance.now()
// Read when the harness starts: machine() is called when the report is written.
const loadAtStart = loadavg().map(value => Math.round(value * 100) / 100)
const notes: string[] = []

interface Stack {
  servers: RunningServer[]
  env: Record<string, string>
  pids: Record<string, number>
  seed(count: number, label: string, rooms?: RoomPlan[]): Promise<Seeded>
  describe: Record<string, string>
}

/** `sockets`: how many the bench opens, all from 127.0.0.1: the servers' caps are raised above it. */
async function startStack(sockets: number, fileLimit?: number): Promise<Stack> {
  const pids: Record<string, number> = {}
  const describe: Record<string, string> = {}
  let env: Record<string, string>
  let seed: Stack['seed']
  if (backend === 'embedded') {
    const mail = await startMailCatcher()
    env = { SMTP_URL: mail.url }
    describe.database = 'PGlite in the server process'
    describe.store = 'in-process'
    describe.bus = 'in-process'
    seed = (count, label, rooms) => seedViaHttp(servers[0]!.url, mail, count, label, rooms)
  }
  else {
    await ensureDatabase(databaseUrl)
    let redis = values.redis
    if (redis === 'private') {
      const started = await startPrivateRedis()
      redis = started.url
      pids.redis = started.pid
      describe.store = `private redis-server at ${redis}`
    }
    else {
      describe.store = `Redis at ${redis}`
    }
    let kafka = values.kafka
    if (scenario === 'history' || scenario === 'search') {
      describe.bus = `in-process (${scenario} sends nothing)`
    }
    else if (kafka === 'private') {
      log('starting a private Kafka broker')
      const started = await startPrivateKafka()
      kafka = started.brokers
      pids.kafka = started.pid
      describe.bus = `private Kafka (KRaft, 1 node) at ${kafka}`
    }
    else {
      describe.bus = `Kafka at ${kafka}`
      notes.push('The shared Kafka broker was used: the persister group natter-persister is shared with any other Natter using that broker.')
    }
    describe.database = `PostgreSQL ${databaseUrl.replace(/\/\/[^@]*@/, '//')}`
    env = {
      DATABASE_URL: databaseUrl,
      REDIS_URL: redis,
      ...(scenario !== 'history' && scenario !== 'search' && { KAFKA_BROKERS: kafka }),
      ...(values['scan-up-to'] !== undefined && { NATTER_SEARCH_SCAN_UP_TO: values['scan-up-to'] })
    }
    seed = (count, label, rooms) => seedDirect({ DATABASE_URL: databaseUrl, REDIS_URL: redis }, count, label, rooms)
  }
  describe.mail = backend === 'embedded' ? 'SMTP to the bench\'s mail catcher' : 'log (not used)'
  const servers: RunningServer[] = []
  for (let i = 0; i < instances; i++) {
    const server = await startNatter({
      label: `natter-${i}`,
      env,
      fileLimit,
      sockets,
      nodeArgs: values['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', resultsDir, '--cpu-prof-name', `natter-${i}.cpuprofile`] : []
    })
    servers.push(server)
    pids[`natter-${i}`] = server.pid
    log(`natter-${i} ready at ${server.url} (pid ${server.pid})`)
  }
  return { servers, env, pids, seed, describe }
}

function natterTarget(servers: RunningServer[]): Target {
  // Partners (2k, 2k+1) sit on different instances when there are two: every message crosses.
  const serverOf = (index: number) => servers[index % servers.length]!
  return {
    label: 'natter',
    transport: (user, index, extra) => new BenchTransport(serverOf(index).url, { cookie: user.cookie, ip: user.ip, ...extra })
  }
}

function relayTarget(relay: RunningServer): Target {
  return {
    label: 'relay',
    transport: (user, _index, extra) => new BenchTransport(relay.url, { socketQuery: `?user=${user.id}`, ...extra }),
    async prepare(users, conversations) {
      // Each stream goes on from where the clients follow it (a room's seeded events took the first seqs).
      const body = JSON.stringify(conversations.map(conversation => ({ id: conversation.id, members: conversation.members.map(member => users[member]!.id), lastSeq: conversation.lastSeq })))
      const response = await fetch(`${relay.url}/conversations`, { method: 'PUT', body })
      if (!response.ok) throw new Error(`the relay answered ${response.status} to the conversations`)
    }
  }
}

/** Who writes to which conversation, turn after turn: everyone in a shuffled round, evenly spaced. */
function routeOf(traffic: Traffic, seeded: Seeded): Route {
  const { users, conversations } = seeded
  const order = users.map((_, index) => index)
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[order[i], order[j]] = [order[j]!, order[i]!]
  }
  const indexOf = new Map(conversations.map((conversation, index) => [conversation.id, index]))
  const direct = users.map(user => indexOf.get(user.conversationId)!)
  const rooms = conversations.map((conversation, index) => ({ conversation, index })).filter(({ conversation }) => conversation.kind === 'room')
  const big = rooms.reduce((largest, room) => room.conversation.members.length > (largest?.conversation.members.length ?? 0) ? room : largest, rooms[0])
  const roomOf: number[] = []
  for (const { conversation, index } of rooms) {
    if (conversation !== big?.conversation) for (const member of conversation.members) roomOf[member] ??= index
  }
  const n = order.length
  switch (traffic) {
    case 'pairs':
      return (turn) => {
        const sender = order[turn % n]!
        return { sender, conversation: direct[sender]! }
      }
    case 'big-room':
      return turn => ({ sender: order[turn % n]!, conversation: big!.index })
    case 'rooms': {
      // Each round, a different 1 in --direct-every people writes to their direct conversation.
      const every = num(values['direct-every'], 20)
      return (turn) => {
        const position = turn % n
        const sender = order[position]!
        const toDirect = (Math.floor(turn / n) + position) % every === 0
        return { sender, conversation: toDirect || roomOf[sender] === undefined ? direct[sender]! : roomOf[sender] }
      }
    }
  }
}

const routed = (plans: StepPlan[], seeded: Seeded): Step[] => plans.map(({ traffic, ...plan }) => ({ ...plan, route: routeOf(traffic, seeded) }))

interface StoredCheck { method: string, conversations: number, stored: number, acked: number, ackedNotStored: number, storedNotAcked: number, seconds: number }

/** What the database holds for the bench's conversations, against what was acknowledged. */
async function checkStored(stack: Stack, seeded: Seeded, ackedIds: Map<string, string[]>): Promise<StoredCheck> {
  const started = performance.now()
  const conversations = seeded.conversations.map(conversation => conversation.id)
  const stored = new Map<string, Set<string>>()
  let method: string
  if (backend === 'real') {
    method = 'SQL on PostgreSQL'
    const pg = (await import('pg')).default
    const client = new pg.Client({ connectionString: databaseUrl })
    await client.connect()
    try {
      const { rows } = await client.query<{ c: string, id: string }>('select conversation_id::text as c, id::text as id from messages where conversation_id = any($1::uuid[])', [conversations])
      for (const row of rows) {
        const set = stored.get(row.c) ?? new Set()
        set.add(row.id)
        stored.set(row.c, set)
      }
    }
    finally {
      await client.end()
    }
  }
  else {
    method = 'GET /api/conversations/{id}/messages?after=…&limit=200'
    const server = stack.servers[0]!
    const memberOf = new Map(seeded.conversations.map(conversation => [conversation.id, seeded.users[conversation.members[0]!]!]))
    let next = 0
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (next < conversations.length) {
        const conversationId = conversations[next++]!
        const member = memberOf.get(conversationId)!
        const set = new Set<string>()
        // Bounded: no conversation in a bench run holds more than 1,000 pages.
        for (let after = 0, page = 0; page < 1000; page++) {
          const response = await fetch(`${server.url}/api/conversations/${conversationId}/messages?after=${after}&limit=200`, { headers: { 'cookie': member.cookie, 'origin': server.url, 'x-forwarded-for': member.ip } })
          if (!response.ok) throw new Error(`history answered ${response.status} for ${conversationId}`)
          const { messages } = await response.json() as { messages: Array<{ id: string, seq: number }> }
          for (const message of messages) set.add(message.id)
          if (messages.length < 200) break
          after = messages[messages.length - 1]!.seq
        }
        stored.set(conversationId, set)
      }
    }))
  }
  let storedCount = 0
  let acked = 0
  let ackedNotStored = 0
  let matched = 0
  for (const set of stored.values()) storedCount += set.size
  for (const [conversationId, ids] of ackedIds) {
    const set = stored.get(conversationId)
    for (const id of ids) {
      acked++
      if (set?.has(id)) matched++
      else ackedNotStored++
    }
  }
  return { method, conversations: conversations.length, stored: storedCount, acked, ackedNotStored, storedNotAcked: storedCount - matched, seconds: (performance.now() - started) / 1000 }
}

function usageOf(sampler: Sampler, pids: Record<string, number>, from: number, to: number): Record<string, UsageSummary | undefined> {
  return Object.fromEntries(Object.keys(pids).map(label => [label, sampler.usage(label, from, to)]))
}

function revision(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'server', 'shared'], { cwd: root, encoding: 'utf8' }).trim()
    return dirty ? `${commit} (server or shared changed since)` : commit
  }
  catch {
    return 'unknown'
  }
}

function machine() {
  const list = cpus()
  return {
    revision: revision(),
    cpus: list.length,
    model: list[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    loadAverageAtStart: loadAtStart,
    loadAverageAtEnd: loadavg().map(value => Math.round(value * 100) / 100),
    shared: 'other builds, test runs and services run on the same machine at the same time'
  }
}

const stripIds = (result: LoadResult) => ({ ...result, ackedIds: undefined })

// ---------------------------------------------------------------- load scenarios

interface SideResult {
  load: LoadResult
  usage: Record<string, UsageSummary | undefined>
  machineBusyPercent: number
  /** Cores used by processes that are not part of the run (others' builds and tests). */
  othersCores: number
  quiet: { waitedSeconds: number, busyPercent: number }
  rssPerSocketKB?: number
  serverMetrics?: Record<string, ServerMetrics>
  stored?: StoredCheck
  lost?: { ackedNotReceived: number, ackedNotStored: number }
  /** Each step's CPU and memory, per process, over the step's own window. */
  stepUsage: Array<Record<string, UsageSummary | undefined>>
  series: Record<string, Array<[number, number]>>
}

const groups = (): Record<string, () => number[]> => (backend === 'real' ? { postgres: () => pidsNamed('postgres') } : {})
const quiet = () => waitForQuiet(num(values.quiet, 30), Math.max(0, Number(values['quiet-timeout']) || 0) * 1000, log)

async function measure(target: Target, seeded: Seeded, steps: Step[], pids: Record<string, number>, serverLabels: string[], stack?: Stack): Promise<SideResult> {
  const servers = stack?.servers ?? []
  let scrapesBefore: Awaited<ReturnType<typeof scrape>>[] = []
  const calm = await quiet()
  const sampler = new Sampler({ ...pids, generator: process.pid }, target.label === 'natter' ? groups() : {})
  await sleep(1500)
  sampler.now()
  const rssBefore = serverLabels.reduce((sum, label) => sum + (sampler.usage(label)?.rssEndMB ?? 0), 0)
  let rssAfterOpen = 0
  const load = await runLoad({
    users: seeded.users,
    conversations: seeded.conversations,
    target,
    steps,
    warmupSeconds: settings.warmup,
    bodyChars: num(values.body, 100),
    drainMs: settings.drainMs,
    settleMs: 5000,
    pingEveryMs: 25_000,
    stopAfter: scenario === 'throughput' ? stopRamp : scenario === 'rooms' ? stopBigRoomRamp : undefined,
    afterOpen: async () => {
      await sleep(2000)
      sampler.now()
      rssAfterOpen = serverLabels.reduce((sum, label) => sum + (sampler.usage(label)?.rssEndMB ?? 0), 0)
      scrapesBefore = await Promise.all(servers.map(server => scrape(server.url)))
    },
    log
  })
  sampler.stop()
  const scrapesAfter = await Promise.all(servers.map(server => scrape(server.url)))
  const tracked = { ...pids, generator: process.pid, ...(target.label === 'natter' ? groups() : {}) }
  const usage = usageOf(sampler, tracked, load.startedAt, load.endedAt)
  const side: SideResult = {
    load,
    usage,
    machineBusyPercent: sampler.machineBusy(load.startedAt, load.endedAt),
    othersCores: sampler.othersCores(Object.keys(tracked), load.startedAt, load.endedAt),
    quiet: calm,
    serverMetrics: servers.length ? Object.fromEntries(servers.map((server, index) => [server.label, difference(scrapesBefore[index] ?? [], scrapesAfter[index] ?? [])])) : undefined,
    rssPerSocketKB: Math.round(((rssAfterOpen - rssBefore) * 1024) / load.sockets * 10) / 10,
    stepUsage: load.steps.map(step => usageOf(sampler, tracked, step.begin, step.end)),
    series: {}
  }
  const begin = load.measuredAt
  for (const label of serverLabels) {
    side.series[`${label} CPU %`] = (sampler.points.get(label) ?? []).filter(p => p.at >= begin).map(p => [(p.at - begin) / 1000, p.cpuPercent])
    side.series[`${label} RSS MB`] = (sampler.points.get(label) ?? []).filter(p => p.at >= begin).map(p => [(p.at - begin) / 1000, p.rssMB])
  }
  if (stack) {
    side.stored = await checkStored(stack, seeded, load.ackedIds)
    side.lost = { ackedNotReceived: load.all.ackedNotReceived, ackedNotStored: side.stored.ackedNotStored }
    log(`stored check (${side.stored.method}): ${side.stored.stored} rows, ${side.stored.acked} acked, ${side.stored.ackedNotStored} acked but not stored, ${side.stored.storedNotAcked} stored without an ack seen`)
  }
  return side
}

// The box is shared: one stall from someone else's build must not end the ramp, two in a row do.
let overBefore = false
function stopRamp(step: StepStats): boolean {
  const failed = Object.values(step.errors).reduce((sum, n) => sum + n, 0) + step.unanswered
  const over = step.receive.p99 > 250
  const stop = step.backlogged || failed > step.sent * 0.01 || (over && overBefore)
  overBefore = over
  return stop
}

// The big room's ramp (step 1 on) ends at the first step past 200 ms p99, or with anything lost or left behind.
const BIG_ROOM_P99_MS = 200
function stopBigRoomRamp(step: StepStats, index: number): boolean {
  if (index < 1) return false
  return step.receive.p99 > BIG_ROOM_P99_MS || step.backlogged || step.ackedNotReceived > 0 || step.unanswered > 0
}

function heldRate(steps: StepStats[]): StepStats | undefined {
  const held = steps.filter(step => step.receive.p99 <= 50 && !step.backlogged && step.unanswered === 0 && step.ackedNotReceived === 0
    && Object.keys(step.errors).length === 0)
  return held[held.length - 1]
}

async function loadScenario() {
  const fileLimit = settings.users + 4096
  raiseFileLimit(process.pid, fileLimit)
  const stack = await startStack(settings.users, fileLimit)
  const label = `bench-${Date.now().toString(36)}`
  const rooms = settings.rooms(settings.users)
  log(`seeding ${settings.users} people in ${settings.users / 2} direct conversations${rooms.length ? ` and ${rooms.length} rooms` : ''} (${backend === 'real' ? 'directly through the app\'s services' : 'through the sign-in endpoints'})`)
  const seeded = await stack.seed(settings.users, label, rooms)
  log(`seeded in ${seeded.seconds.toFixed(1)} s`)
  const serverLabels = stack.servers.map(server => server.label)
  const natter = await measure(natterTarget(stack.servers), seeded, routed(settings.steps, seeded), stack.pids, serverLabels, stack)
  const serverLogs = stack.servers.map(server => ({ label: server.label, tail: server.logs.slice(-40) }))
  for (const server of stack.servers) await server.stop()
  let profiles: ProfileSummary[] = []
  if (values['cpu-prof']) {
    const window = { from: monotonicMicros(natter.load.measuredAt), to: monotonicMicros(natter.load.endedAt) }
    profiles = readdirSync(resultsDir).filter(name => name.endsWith('.cpuprofile')).map(name => summarizeProfile(join(resultsDir, name), window))
  }
  let relay: SideResult | undefined
  if (values.relay && !values['no-relay'] && scenario !== 'overload') {
    const server = await startRelay(fileLimit)
    log(`relay at ${server.url} (pid ${server.pid})`)
    const steps = routed(settings.relaySteps(natter.load.steps.length), seeded)
    relay = await measure(relayTarget(server), seeded, steps, { relay: server.pid }, ['relay'])
    await server.stop()
  }
  await report({ stack, seeded, natter, relay, profiles, serverLogs })
}

// ---------------------------------------------------------------- connections

interface ConnectionsSide {
  target: string
  sockets: number
  openSeconds: number
  connect: Percentiles
  rssBaselineMB: number
  rssOpenMB: number
  /** Least-squares slope of RSS over the number of open sockets. */
  rssPerSocketKB: number
  /** (RSS after the idle phase − RSS before opening) / sockets. */
  rssPerSocketEndToEndKB: number
  rssPoints: Array<[number, number]>
  /** From the server's /metrics at each step: how the per-socket memory splits (Natter only). */
  heapPerSocketKB?: number
  externalPerSocketKB?: number
  idleCpuPercent: number
  pingCpuPercent: number
  pingsPerSecond: number
  pongs: number
  pingRtt: Percentiles
  cpuMicrosPerPing: number
  failed?: string
  series: Record<string, Array<[number, number]>>
}

/** RSS once it stops moving (bounded): GC and allocator noise otherwise swamp a per-socket figure. */
async function stableRss(sampler: Sampler, label: string): Promise<number> {
  let previous = -1
  for (let i = 0; i < 10; i++) {
    await sleep(1500)
    sampler.now()
    const rss = sampler.usage(label)?.rssEndMB ?? 0
    if (Math.abs(rss - previous) < 0.5) return rss
    previous = rss
  }
  return previous
}

function slope(points: Array<[number, number]>): number {
  const n = points.length
  if (n < 2) return 0
  const mx = points.reduce((sum, [x]) => sum + x, 0) / n
  const my = points.reduce((sum, [, y]) => sum + y, 0) / n
  const sxx = points.reduce((sum, [x]) => sum + (x - mx) ** 2, 0)
  return sxx ? points.reduce((sum, [x, y]) => sum + (x - mx) * (y - my), 0) / sxx : 0
}

function gauge(samples: Awaited<ReturnType<typeof scrape>>, name: string): number {
  return samples.filter(sample => sample.name === name).reduce((sum, sample) => sum + sample.value, 0) / 2 ** 20
}

async function connectionsSide(target: Target, users: BenchUser[], count: number, pid: number, label: string, metricsUrl?: string): Promise<ConnectionsSide> {
  const heapPoints: Array<[number, number]> = []
  const externalPoints: Array<[number, number]> = []
  const memoryPoint = async (sockets: number) => {
    if (!metricsUrl) return
    const samples = await scrape(metricsUrl)
    heapPoints.push([sockets, gauge(samples, 'nodejs_heap_size_used_bytes')])
    externalPoints.push([sockets, gauge(samples, 'nodejs_external_memory_bytes')])
  }
  await quiet()
  const sampler = new Sampler({ [label]: pid, generator: process.pid })
  const begin = performance.now()
  const pingEveryMs = num(values['ping-every'], 5000)
  const idleMs = 20_000
  await sleep(3000)
  // One socket per person when there are enough people; otherwise several devices each.
  const people = Array.from({ length: count }, (_, index) => users[index % users.length]!)
  // Past ~28k sockets one local address runs out of ports: 20k per loopback address.
  const localAddress = (index: number) => `127.0.0.${1 + Math.floor(index / 20_000)}`
  // Opened in five chunks with the RSS read after each: the slope says more than two noisy points.
  const rssPoints: Array<[number, number]> = [[0, await stableRss(sampler, label)]]
  await memoryPoint(0)
  const clients: BenchClient[] = []
  const connect = histogram()
  let openSeconds = 0
  let failed: string | undefined
  const chunk = Math.ceil(count / 5)
  for (let from = 0; from < count && !failed; from += chunk) {
    // The clients' own ping is an hour away: the idle phase hears only the server's heartbeat.
    const opened = await openClients(people.slice(from, from + chunk), target, { pingEveryMs: 3_600_000, concurrency: 200, localAddress, offset: from })
    clients.push(...opened.clients)
    connect.add(opened.connect)
    openSeconds += opened.seconds
    failed = opened.failed
    rssPoints.push([clients.length, await stableRss(sampler, label)])
    await memoryPoint(clients.length)
    log(`${label}: ${clients.length} sockets open, RSS ${rssPoints[rssPoints.length - 1]![1].toFixed(1)} MB${failed ? `; opening stopped: ${failed}` : ''}`)
  }
  const open = clients.length
  const baseline = { rssEndMB: rssPoints[0]![1] }
  const pongs = { count: 0 }
  const rtt = histogram()
  const pingAt = new Float64Array(clients.length)
  clients.forEach(({ natter }, index) => natter.on('pong', () => {
    pongs.count++
    if (pingAt[index]) rtt.recordValue(Math.max(1, Math.round((performance.now() - pingAt[index]) * 1000)))
  }))
  // Idle: only the server's own heartbeat (a protocol ping every 7 s, presence refresh) runs.
  await sleep(5000)
  const idleFrom = performance.now()
  await sleep(idleMs)
  sampler.now()
  const idleTo = performance.now()
  const idle = sampler.usage(label, idleFrom, idleTo)!
  // Pinging: every client sends the app's ping through its protocol client once per pingEveryMs, spread evenly.
  const pingFrom = performance.now()
  let sent = 0
  const perSlice = Math.ceil(clients.length / (pingEveryMs / 100))
  const timer = setInterval(() => {
    const now = performance.now()
    for (let k = 0; k < perSlice; k++) {
      const index = (sent + k) % clients.length
      pingAt[index] = now
      clients[index]!.natter.send({ type: 'ping' })
    }
    sent += perSlice
  }, 100)
  await sleep(idleMs)
  clearInterval(timer)
  await sleep(500)
  sampler.now()
  const pingTo = performance.now()
  const pinging = sampler.usage(label, pingFrom, pingTo)!
  sampler.stop()
  await closeClients(clients)
  const pingsPerSecond = sent / ((pingTo - pingFrom) / 1000)
  const series: ConnectionsSide['series'] = {
    [`${label} RSS MB`]: (sampler.points.get(label) ?? []).map(p => [(p.at - begin) / 1000, p.rssMB]),
    [`${label} CPU %`]: (sampler.points.get(label) ?? []).map(p => [(p.at - begin) / 1000, p.cpuPercent])
  }
  return {
    target: label,
    sockets: open,
    openSeconds,
    connect: percentiles(connect),
    rssBaselineMB: baseline.rssEndMB,
    rssOpenMB: idle.rssEndMB,
    rssPerSocketKB: Math.round(slope(rssPoints) * 1024 * 10) / 10,
    rssPerSocketEndToEndKB: open ? Math.round(((idle.rssEndMB - baseline.rssEndMB) * 1024 * 10) / open) / 10 : 0,
    rssPoints,
    heapPerSocketKB: metricsUrl ? Math.round(slope(heapPoints) * 1024 * 10) / 10 : undefined,
    externalPerSocketKB: metricsUrl ? Math.round(slope(externalPoints) * 1024 * 10) / 10 : undefined,
    idleCpuPercent: idle.cpuPercent,
    pingCpuPercent: pinging.cpuPercent,
    pingsPerSecond: Math.round(pingsPerSecond),
    pongs: pongs.count,
    pingRtt: percentiles(rtt),
    cpuMicrosPerPing: pingsPerSecond ? Math.round(((pinging.cpuPercent - idle.cpuPercent) / 100) * 1e6 / pingsPerSecond) : 0,
    failed,
    series
  }
}

async function connectionsScenario() {
  const asked = num(values.connections, 5000)
  const fileLimit = asked + 8192
  const mine = raiseFileLimit(process.pid, fileLimit)
  const stack = await startStack(asked, fileLimit)
  // Each socket is an open file on both ends. Without CAP_SYS_RESOURCE the hard limit stays put.
  const serverLimit = Math.min(...stack.servers.map(server => openFileLimit(server.pid)))
  const count = Math.min(asked, mine - 500, serverLimit - 500)
  if (count < asked) {
    notes.push(`Asked for ${asked} sockets; the open-file limit (bench process ${mine}, server ${serverLimit}; the hard limit cannot be raised here) allows ${count}.`)
    log(notes[notes.length - 1]!)
  }
  const label = `bench-${Date.now().toString(36)}`
  const people = Math.min(settings.users, even(count))
  log(`seeding ${people} people for ${count} sockets`)
  const seeded = await stack.seed(people, label)
  log(`seeded in ${seeded.seconds.toFixed(1)} s`)
  const natter = await connectionsSide(natterTarget(stack.servers.slice(0, 1)), seeded.users, count, stack.servers[0]!.pid, 'natter-0', stack.servers[0]!.url)
  const serverLogs = stack.servers.map(server => ({ label: server.label, tail: server.logs.slice(-40) }))
  for (const server of stack.servers) await server.stop()
  let relay: ConnectionsSide | undefined
  if (values.relay && !values['no-relay'] && scenario !== 'overload') {
    const server = await startRelay(fileLimit)
    relay = await connectionsSide(relayTarget(server), seeded.users, count, server.pid, 'relay')
    await server.stop()
  }
  for (const server of stack.servers) {
    if (server.errors.count) notes.push(`${server.label} logged ${server.errors.count} errors; the first: ${server.errors.first}`)
  }
  const result = {
    scenario,
    backend,
    instances,
    startedAt: new Date(Date.now() - (performance.now() - t0)).toISOString(),
    machine: machine(),
    backends: stack.describe,
    seed: { users: seeded.users.length, method: seeded.method, seconds: seeded.seconds },
    connections: count,
    natter,
    relay,
    notes,
    serverLogs
  }
  const rows: Array<Array<string | number>> = [
    ['sockets open', natter.sockets, relay?.sockets ?? '–', ''],
    ['time to open them', `${natter.openSeconds.toFixed(1)} s`, relay ? `${relay.openSeconds.toFixed(1)} s` : '–', ratio(natter.openSeconds, relay?.openSeconds)],
    ['upgrade p50', ms(natter.connect.p50), ms(relay?.connect.p50), ratio(natter.connect.p50, relay?.connect.p50)],
    ['upgrade p99', ms(natter.connect.p99), ms(relay?.connect.p99), ratio(natter.connect.p99, relay?.connect.p99)],
    ['server RSS before → with sockets', `${natter.rssBaselineMB} → ${natter.rssOpenMB} MB`, relay ? `${relay.rssBaselineMB} → ${relay.rssOpenMB} MB` : '–', ''],
    ['RSS per socket (slope over 5 steps)', `${natter.rssPerSocketKB} KB`, relay ? `${relay.rssPerSocketKB} KB` : '–', ratio(natter.rssPerSocketKB, relay?.rssPerSocketKB)],
    ['of which V8 heap (used) / external memory (slopes, /metrics)', `${natter.heapPerSocketKB ?? '–'} KB / ${natter.externalPerSocketKB ?? '–'} KB`, '–', ''],
    ['RSS per socket (after idling − before opening)', `${natter.rssPerSocketEndToEndKB} KB`, relay ? `${relay.rssPerSocketEndToEndKB} KB` : '–', ratio(natter.rssPerSocketEndToEndKB, relay?.rssPerSocketEndToEndKB)],
    ['server CPU, idle sockets (heartbeat only)', `${natter.idleCpuPercent} %`, relay ? `${relay.idleCpuPercent} %` : '–', ''],
    [`server CPU, pinging (${natter.pingsPerSecond}/s)`, `${natter.pingCpuPercent} %`, relay ? `${relay.pingCpuPercent} %` : '–', ''],
    ['CPU per ping', `${natter.cpuMicrosPerPing} µs`, relay ? `${relay.cpuMicrosPerPing} µs` : '–', ratio(natter.cpuMicrosPerPing, relay?.cpuMicrosPerPing)],
    ['ping → pong p50', ms(natter.pingRtt.p50), ms(relay?.pingRtt.p50), ratio(natter.pingRtt.p50, relay?.pingRtt.p50)],
    ['ping → pong p99', ms(natter.pingRtt.p99), ms(relay?.pingRtt.p99), ratio(natter.pingRtt.p99, relay?.pingRtt.p99)]
  ]
  const extrapolated = natter.cpuMicrosPerPing > 0 ? (50_000 / 25) * natter.cpuMicrosPerPing / 1e4 : 0
  const markdown = [
    `# ${scenario} (${backend}, ${count} sockets, ${people} people)`,
    '',
    header(result.machine, stack.describe, result.seed),
    '',
    table(['figure', 'Natter', 'relay', 'Natter/relay'], rows),
    '',
    `Goal: ≥ 50,000 idle sockets at ≤ 12 KB RSS each: measured ${natter.rssPerSocketKB} KB per socket at ${natter.sockets}${natter.sockets * natter.rssPerSocketKB / 1024 > 0 ? ` (≈ ${Math.round(50_000 * natter.rssPerSocketKB / 1024)} MB at 50,000)` : ''}.`,
    `Pings at the browser's pace (one per socket every 25 s) at 50,000 sockets: 2,000 a second ≈ ${extrapolated.toFixed(1)} % of one core.`,
    ...(natter.failed ? ['', `Opening stopped: ${natter.failed}`] : []),
    ...notes.map(note => `- ${note}`)
  ].join('\n')
  const panels: Panel[] = [
    { title: 'Server RSS by open sockets', xLabel: 'sockets open', yLabel: 'MB', series: [
      { label: 'natter', color: '#1f77b4', dots: true, points: natter.rssPoints },
      ...(relay ? [{ label: 'relay', color: '#ff7f0e', dashed: true, dots: true, points: relay.rssPoints }] : [])
    ] },
    { title: 'Server RSS while sockets open, idle, ping', xLabel: 's since the phase began', yLabel: 'MB', series: [
      { label: 'natter RSS', color: '#1f77b4', points: natter.series['natter-0 RSS MB'] ?? [] },
      ...(relay ? [{ label: 'relay RSS', color: '#ff7f0e', dashed: true, points: relay.series['relay RSS MB'] ?? [] }] : [])
    ] },
    { title: 'Server CPU (100 % = one core)', xLabel: 's since the phase began', yLabel: '% CPU', series: [
      { label: 'natter CPU', color: '#1f77b4', points: natter.series['natter-0 CPU %'] ?? [] },
      ...(relay ? [{ label: 'relay CPU', color: '#ff7f0e', dashed: true, points: relay.series['relay CPU %'] ?? [] }] : [])
    ] }
  ]
  write(result, markdown, renderSvg(`Natter ${scenario}: ${count} sockets (${backend})`, panels))
}

// ---------------------------------------------------------------- report

function header(info: ReturnType<typeof machine>, describe: Record<string, string>, seed: { users: number, method: string, seconds: number }) {
  return [
    `Natter ${info.revision}. Machine: ${info.cpus} × ${info.model}, ${info.memoryGiB} GiB, Linux ${info.kernel}, Node ${info.node}; load average at start ${info.loadAverageAtStart.join(' ')}, at the end ${info.loadAverageAtEnd.join(' ')} (${info.shared}).`,
    `Backends: ${Object.entries(describe).map(([part, what]) => `${part}: ${what}`).join('; ')}. Instances: ${instances}.`,
    `Seeded ${seed.users} people ${seed.method === 'direct' ? 'directly through the app\'s services' : 'through the sign-in endpoints (mail catcher)'} in ${seed.seconds.toFixed(1)} s.`
  ].join('\n')
}

function write(result: object, markdown: string, svg: string) {
  writeFileSync(join(resultsDir, 'result.json'), JSON.stringify(result, null, 2))
  writeFileSync(join(resultsDir, 'result.md'), markdown + '\n')
  writeFileSync(join(resultsDir, 'chart.svg'), svg)
  console.log('\n' + markdown + '\n')
  console.log(`results: ${join(resultsDir, 'result.json')}, result.md, chart.svg`)
}

/** CPU time per acknowledged message: a cost that a busy box distorts far less than latency. */
function cpuPerMessage(side: SideResult, label: string): number | undefined {
  const usage = side.usage[label]
  if (!usage || !side.load.all.acked) return undefined
  return Math.round((usage.cpuSeconds * 1e6) / side.load.all.acked) / 1000
}

function cpuPerMessageRows(natter: SideResult, relay?: SideResult): Array<Array<string | number>> {
  const labels = Object.keys(natter.usage).filter(label => label !== 'generator' && natter.usage[label])
  const relayCost = relay && cpuPerMessage(relay, 'relay')
  const total = labels.reduce((sum, label) => sum + (cpuPerMessage(natter, label) ?? 0), 0)
  return [
    ...labels.map(label => [`CPU per message: ${label}`, `${cpuPerMessage(natter, label)} ms`, label.startsWith('natter') && relayCost ? `${relayCost} ms` : '–', label.startsWith('natter') ? ratio(cpuPerMessage(natter, label), relayCost) : '']),
    ...(labels.length > 1 ? [['CPU per message: all of the above', `${Math.round(total * 1000) / 1000} ms`, relayCost ? `${relayCost} ms` : '–', ratio(total, relayCost)]] : [])
  ]
}

/** The big room's highest step (after the first phase) with p99 within bounds and nothing lost. */
function roomsCeiling(steps: StepStats[]): StepStats | undefined {
  const held = steps.slice(1).filter(step => step.receive.p99 <= BIG_ROOM_P99_MS && !step.backlogged && step.unanswered === 0 && step.ackedNotReceived === 0)
  return held.sort((a, b) => b.deliveredPerSecond - a.deliveredPerSecond)[0]
}

/** CPU time per delivery in µs over one step: the process's cores over the step's deliveries a second. */
function perDelivery(usage: UsageSummary | undefined, step: StepStats): string {
  if (!usage || !step.deliveredPerSecond) return '–'
  return `${Math.round((usage.cpuPercent / 100) * 1e6 / step.deliveredPerSecond)} µs`
}

function roomsSteps(natter: SideResult, relay?: SideResult): string {
  const processes = Object.keys(natter.usage).filter(label => natter.usage[label])
  const rows = natter.load.steps.map((step, index) => {
    const usage = natter.stepUsage[index] ?? {}
    const relayStep = relay?.load.steps[index]
    const servers = Object.entries(usage).filter(([label]) => label.startsWith('natter'))
    const serverCores = servers.reduce((sum, [, summary]) => sum + (summary?.cpuPercent ?? 0), 0)
    return [
      step.label ?? '',
      step.rate,
      step.ackedPerSecond.toFixed(0),
      step.deliveredPerSecond.toFixed(0),
      ms(step.receive.p50),
      ms(step.receive.p99),
      ms(step.receive.p999),
      ms(step.receive.max),
      Object.entries(step.receiveBy).map(([kind, p]) => `${kind} ${ms(p.p50)} / ${ms(p.p99)}`).join('; '),
      `${step.missingDeliveries} / ${step.ackedNotReceived} / ${step.unanswered}`,
      sumErrors(step.errors),
      step.backlogged ? 'yes' : 'no',
      step.loadAverage ?? '–',
      perDelivery({ cpuPercent: serverCores } as UsageSummary, step),
      ...processes.filter(label => !label.startsWith('natter')).map(label => perDelivery(usage[label], step)),
      servers.map(([, summary]) => `${summary?.rssMaxMB ?? '?'} MB`).join(' + '),
      relayStep ? `${ms(relayStep.receive.p50)} / ${ms(relayStep.receive.p99)} (${relayStep.deliveredPerSecond.toFixed(0)}/s)` : '–',
      relayStep ? perDelivery(relay?.stepUsage[index]?.relay, relayStep) : '–'
    ]
  })
  return table([
    'step', 'offered msg/s', 'acked/s', 'deliveries/s', 'p50', 'p99', 'p99.9', 'max', 'p50 / p99 by kind', 'missing deliveries / messages / unanswered', 'refused (then resent)', 'backlog', 'load average (1 min)',
    'CPU per delivery: natter', ...processes.filter(label => !label.startsWith('natter')).map(label => `CPU per delivery: ${label}`), 'natter RSS max', 'relay p50 / p99 (deliveries/s)', 'CPU per delivery: relay'
  ], rows)
}

const sumErrors = (errors: Record<string, number>) => Object.entries(errors).map(([code, n]) => `${code}: ${n}`).join(', ') || 'none'

async function report({ stack, seeded, natter, relay, profiles, serverLogs }: { stack: Stack, seeded: Seeded, natter: SideResult, relay?: SideResult, profiles: ProfileSummary[], serverLogs: unknown }) {
  const n = natter.load.total
  const r = relay?.load.total
  const serverUsage = Object.entries(natter.usage).filter(([label]) => label.startsWith('natter'))
  const latencyRows: Array<Array<string | number>> = []
  for (const [name, pick] of [['send → receive', (s: StepStats) => s.receive], ['send → ack', (s: StepStats) => s.ack]] as const) {
    for (const key of ['p50', 'p90', 'p99', 'p999', 'max'] as const) {
      const a = pick(n)[key]
      const b = r ? pick(r)[key] : undefined
      latencyRows.push([`${name} ${key === 'p999' ? 'p99.9' : key}`, ms(a), ms(b), ratio(a, b)])
    }
  }
  const metricRows: Array<Array<string | number>> = Object.entries(natter.serverMetrics ?? {}).flatMap(([label, m]) => [
    [`${label}: send→persist / send→deliver p50 (server histogram)`, `${m.sendToPersist.p50} / ${m.sendToDeliver.p50}`, '–', ''],
    [`${label}: send→persist / send→deliver p99 (server histogram)`, `${m.sendToPersist.p99} / ${m.sendToDeliver.p99}`, '–', ''],
    [`${label}: event-loop lag p50 / p99 / max; GC`, `${m.eventLoopLagMs.p50} / ${m.eventLoopLagMs.p99} / ${m.eventLoopLagMs.max} ms; ${m.gcSeconds} s`, '–', '']
  ])
  const rows: Array<Array<string | number>> = [
    ...latencyRows,
    ['send → accepted by the gateway p50 / p99 (ack timestamp, 1 ms clock)', `${ms(n.toGateway.p50)} / ${ms(n.toGateway.p99)}`, r ? `${ms(r.toGateway.p50)} / ${ms(r.toGateway.p99)}` : '–', ''],
    ['accepted → ack p50 / p99 (bus, persister, fanout)', `${ms(n.gatewayToAck.p50)} / ${ms(n.gatewayToAck.p99)}`, r ? `${ms(r.gatewayToAck.p50)} / ${ms(r.gatewayToAck.p99)}` : '–', ''],
    ...metricRows,
    ['offered rate', `${n.rate.toFixed(0)} msg/s`, r ? `${r.rate.toFixed(0)} msg/s` : '–', ''],
    ['acked (accepted) per second', n.ackedPerSecond.toFixed(0), r ? r.ackedPerSecond.toFixed(0) : '–', ''],
    ['delivered per second', n.deliveredPerSecond.toFixed(0), r ? r.deliveredPerSecond.toFixed(0) : '–', ''],
    ['messages sent / acked / received', `${natter.load.all.sent} / ${natter.load.all.acked} / ${natter.load.all.received}`, relay ? `${relay.load.all.sent} / ${relay.load.all.acked} / ${relay.load.all.received}` : '–', ''],
    ['errors by code', sumErrors(natter.load.all.errors), relay ? sumErrors(relay.load.all.errors) : '–', ''],
    ['unanswered after the drain', natter.load.all.unanswered, relay?.load.all.unanswered ?? '–', ''],
    ['lost: acked, not received by every other member', natter.load.all.ackedNotReceived, relay?.load.all.ackedNotReceived ?? '–', ''],
    ['deliveries made / missing (each message × the other members)', `${natter.load.all.deliveries} / ${natter.load.all.missingDeliveries}`, relay ? `${relay.load.all.deliveries} / ${relay.load.all.missingDeliveries}` : '–', ''],
    ['client: reconnects / stream gaps not replayed / duplicate acks / misdirected', `${natter.load.reconnects} / ${natter.load.gaps} / ${natter.load.duplicates.acks} / ${natter.load.duplicates.misdirected}`, relay ? `${relay.load.reconnects} / ${relay.load.gaps} / ${relay.load.duplicates.acks} / ${relay.load.duplicates.misdirected}` : '–', ''],
    ['client pings: sent / pongs; ping → pong p50 / p99', `${natter.load.pings.sent} / ${natter.load.pings.pongs}; ${ms(natter.load.pings.rtt.p50)} / ${ms(natter.load.pings.rtt.p99)}`, relay ? `${relay.load.pings.sent} / ${relay.load.pings.pongs}; ${ms(relay.load.pings.rtt.p50)} / ${ms(relay.load.pings.rtt.p99)}` : '–', ''],
    ['lost: acked, not in the database', natter.stored?.ackedNotStored ?? '–', 'no database', ''],
    ['rows in the database (stored without an ack seen)', natter.stored ? `${natter.stored.stored} (${natter.stored.storedNotAcked})` : '–', '–', ''],
    ...serverUsage.map(([label, usage]) => [`${label} CPU (100 % = one core)`, usage ? `${usage.cpuPercent} %` : '–', relay?.usage.relay ? `${relay.usage.relay.cpuPercent} %` : '–', ratio(usage?.cpuPercent, relay?.usage.relay?.cpuPercent)]),
    ...serverUsage.map(([label, usage]) => [`${label} RSS start → max`, usage ? `${usage.rssStartMB} → ${usage.rssMaxMB} MB` : '–', relay?.usage.relay ? `${relay.usage.relay.rssStartMB} → ${relay.usage.relay.rssMaxMB} MB` : '–', '']),
    ['server RSS per socket (after opening)', `${natter.rssPerSocketKB} KB`, relay ? `${relay.rssPerSocketKB} KB` : '–', ratio(natter.rssPerSocketKB, relay?.rssPerSocketKB)],
    ...(['kafka', 'redis', 'postgres'] as const).filter(label => natter.usage[label]).map(label => [`${label} CPU${label === 'postgres' ? ' (the whole server, other users\' sessions included)' : ''}`, `${natter.usage[label]!.cpuPercent} %`, '–', '']),
    ...cpuPerMessageRows(natter, relay),
    ['machine busy (100 % = all cores)', `${natter.machineBusyPercent} %`, relay ? `${relay.machineBusyPercent} %` : '–', ''],
    ['other processes on the box (cores)', natter.othersCores, relay?.othersCores ?? '–', ''],
    ['generator CPU / event-loop delay p99', `${natter.usage.generator?.cpuPercent ?? '–'} % / ${natter.load.generator.loopDelayP99Ms} ms`, relay ? `${relay.usage.generator?.cpuPercent ?? '–'} % / ${relay.load.generator.loopDelayP99Ms} ms` : '–', ''],
    ['errors the server logged', stack.servers.map(server => server.errors.count).join(' + '), '–', ''],
    ['sockets; upgrade p50 / p99', `${natter.load.sockets}; ${ms(natter.load.connect.p50)} / ${ms(natter.load.connect.p99)}`, relay ? `${relay.load.sockets}; ${ms(relay.load.connect.p50)} / ${ms(relay.load.connect.p99)}` : '–', '']
  ]
  const lost = natter.load.all.ackedNotReceived + (natter.stored?.ackedNotStored ?? 0)
  for (const server of stack.servers) {
    if (server.errors.count) notes.push(`${server.label} logged ${server.errors.count} errors; the first: ${server.errors.first}`)
  }
  const goals: string[] = []
  if (scenario === 'seed-100' || scenario === 'users-1k') {
    goals.push(`send→receive p50 ${ms(n.receive.p50)} (goal ≤ 10 ms at 1,000 users): ${n.receive.p50 <= 10 ? 'met' : 'missed'}`)
    goals.push(`send→receive p99 ${ms(n.receive.p99)} (goal ≤ 50 ms): ${n.receive.p99 <= 50 ? 'met' : 'missed'}`)
    if (r) goals.push(`p50 ${ratio(n.receive.p50, r.receive.p50)} the relay's (goal ≤ 3×): ${n.receive.p50 <= 3 * r.receive.p50 ? 'met' : 'missed'}`)
  }
  goals.push(`messages lost: ${lost} (goal 0): ${lost === 0 ? 'met' : 'MISSED'}`)

  let rampTable = ''
  let held: StepStats | undefined
  if (scenario === 'throughput' || scenario === 'overload') {
    held = scenario === 'throughput' ? heldRate(natter.load.steps) : undefined
    const rampRows = natter.load.steps.map((step, index) => {
      const relayStep = relay?.load.steps[index]
      return [
        step.rate,
        step.ackedPerSecond.toFixed(0),
        step.deliveredPerSecond.toFixed(0),
        ms(step.receive.p50),
        ms(step.receive.p99),
        ms(step.receive.p999),
        ms(step.receive.max),
        sumErrors(step.errors),
        step.unanswered + step.ackedNotReceived,
        step.backlogged ? 'yes' : 'no',
        step.loadAverage ?? '–',
        ms(relayStep?.receive.p50),
        ms(relayStep?.receive.p99),
        ratio(step.receive.p50, relayStep?.receive.p50),
        ratio(step.receive.p99, relayStep?.receive.p99)
      ]
    })
    rampTable = table(['offered msg/s', 'acked/s', 'delivered/s', 'p50', 'p99', 'p99.9', 'max', 'errors', 'unanswered + not received', 'backlog', 'load average (1 min)', 'relay p50', 'relay p99', 'p50 ×', 'p99 ×'], rampRows)
    if (scenario === 'throughput') goals.push(`highest rate held with send→receive p99 ≤ 50 ms and nothing lost: ${held ? `${held.rate} msg/s (acked ${held.ackedPerSecond.toFixed(0)}/s)` : 'none'} (goal ≥ 5,000 msg/s persisted): ${held && held.rate >= 5000 && lost === 0 ? 'met' : 'missed'}`)
  }
  let roomsTable = ''
  let ceiling: StepStats | undefined
  if (scenario === 'rooms') {
    ceiling = roomsCeiling(natter.load.steps)
    roomsTable = roomsSteps(natter, relay)
    const [first, big] = natter.load.steps
    if (first) {
      goals.push(`${first.label}, ${first.rate} msg/s (${first.deliveredPerSecond.toFixed(0)} deliveries/s): send→receive p99 over every recipient ${ms(first.receive.p99)} (goal ≤ 50 ms on the real backends): ${first.receive.p99 <= 50 ? 'met' : 'missed'}`)
    }
    if (big) goals.push(`${big.label}, ${big.rate} msg/s (${big.deliveredPerSecond.toFixed(0)} deliveries/s): p50 ${ms(big.receive.p50)}, p99 ${ms(big.receive.p99)}, p99.9 ${ms(big.receive.p999)}, max ${ms(big.receive.max)}`)
    goals.push(`deliveries/s ceiling (the big room's highest step with p99 ≤ ${BIG_ROOM_P99_MS} ms and nothing lost): ${ceiling ? `${ceiling.deliveredPerSecond.toFixed(0)} deliveries/s at ${ceiling.rate} msg/s (p99 ${ms(ceiling.receive.p99)})` : 'none'}${natter.load.steps.length === settings.steps.length && ceiling === natter.load.steps[natter.load.steps.length - 1] ? ' (the ramp ended before p99 passed; raise --ramp-max)' : ''}`)
    goals.push(`deliveries missing (acknowledged, some member never got it): ${natter.load.all.missingDeliveries} of ${natter.load.all.deliveries + natter.load.all.missingDeliveries} (goal 0)`)
    const changes = first?.changes
    if (changes) {
      goals.push(`message changes in ${first.label}: ${changes.sent} sent (${CHANGE_KINDS.map(kind => `${changes.kinds[kind]} ${kind}`).join(', ')}), ${changes.acked} acked (${changes.noops} changed nothing), refused ${sumErrors(changes.refused)}, unanswered ${changes.unanswered}; change → chat.update over every other member p50 ${ms(changes.update.p50)}, p99 ${ms(changes.update.p99)}, max ${ms(changes.update.max)}; change → change.ack p50 ${ms(changes.ack.p50)}, p99 ${ms(changes.ack.p99)}`)
      const all = natter.load.all.changes
      if (all) goals.push(`chat.updates missing (change acknowledged, some member never saw it; warm-up included): ${all.missingDeliveries} of ${all.deliveriesExpected}, ${all.ackedNotSeen} changes (goal 0)`)
    }
  }
  if (scenario === 'overload') {
    const [, over, after] = natter.load.steps
    const rss = Object.entries(natter.usage).filter(([label]) => label.startsWith('natter')).map(([label, usage]) => `${label} ${usage?.rssStartMB ?? '?'} → max ${usage?.rssMaxMB ?? '?'} MB`)
    goals.push(`at twice the held rate: acked ${over?.ackedPerSecond.toFixed(0) ?? '?'}/s of ${over?.rate ?? '?'} offered, errors ${JSON.stringify(over?.errors ?? {})}, p99 ${ms(over?.receive.p99)}; memory ${rss.join(', ')}`)
    goals.push(`after, at half the held rate: p50 ${ms(after?.receive.p50)}, p99 ${ms(after?.receive.p99)}, backlog drained: ${after && !after.backlogged ? 'yes' : 'no'}`)
  }

  const result = {
    scenario,
    backend,
    instances,
    startedAt: new Date(Date.now() - (performance.now() - t0)).toISOString(),
    machine: machine(),
    backends: stack.describe,
    options: { users: settings.users, steps: settings.steps, warmupSeconds: settings.warmup, bodyChars: num(values.body, 100) },
    seed: { users: seeded.users.length, method: seeded.method, seconds: seeded.seconds },
    natter: { ...natter, load: stripIds(natter.load) },
    relay: relay && { ...relay, load: stripIds(relay.load) },
    heldRate: held?.rate,
    deliveriesCeiling: ceiling && { rate: ceiling.rate, deliveriesPerSecond: Math.round(ceiling.deliveredPerSecond), p99: ceiling.receive.p99 },
    lost,
    goals,
    profiles,
    notes,
    serverLogs
  }
  const title = `${scenario} (${backend}${instances === 2 ? ', 2 instances' : ''}, ${settings.users} people)`
  const markdown = [
    `# ${title}`,
    '',
    header(result.machine, stack.describe, result.seed),
    '',
    table(['figure', 'Natter', 'relay', 'Natter/relay'], rows),
    ...(rampTable ? ['', '## Ramp', '', rampTable] : []),
    ...(roomsTable ? ['', '## Steps (send → receive over every recipient of every message)', '', roomsTable] : []),
    '',
    '## Goals',
    '',
    ...goals.map(goal => `- ${goal}`),
    ...(profiles.length
      ? ['', '## CPU profile (self time)', '', ...profiles.flatMap(profile => [
          `${profile.file.split('/').pop()}, the measured run only (${profile.seconds.toFixed(0)} s, idle ${profile.idlePercent} %); shares of the busy time:`,
          '',
          table(['area', 'ms', '%'], profile.byArea.slice(0, 12).map(area => [area.area, area.ms, area.percent])),
          '',
          table(['function', 'where', 'ms', '%'], profile.topFunctions.slice(0, 15).map(fn => [fn.fn, fn.where, fn.ms, fn.percent])),
          ''
        ])]
      : []),
    ...(notes.length ? ['', ...notes.map(note => `- ${note}`)] : [])
  ].join('\n')

  const perSecond = (side: SideResult | undefined, pick: (p: Percentiles) => number): Array<[number, number]> => (side?.load.perSecond ?? []).filter(row => row.receive.count).map(row => [row.second, pick(row.receive)])
  const panels: Panel[] = [{
    title: 'send → receive latency per second (by send time)',
    xLabel: 's since the measured run began',
    yLabel: 'ms',
    logY: true,
    marks: [{ y: 10, label: 'goal p50 10 ms' }, { y: 50, label: 'goal p99 50 ms' }],
    series: [
      { label: 'natter max', color: '#9467bd', points: perSecond(natter, p => p.max) },
      { label: 'natter p99', color: '#d62728', points: perSecond(natter, p => p.p99) },
      { label: 'natter p50', color: '#1f77b4', points: perSecond(natter, p => p.p50) },
      ...(relay
        ? [
            { label: 'relay p50', color: '#1f77b4', dashed: true, points: perSecond(relay, p => p.p50) },
            { label: 'relay p99', color: '#d62728', dashed: true, points: perSecond(relay, p => p.p99) }
          ]
        : [])
    ]
  }]
  if (scenario === 'throughput') {
    const steps = natter.load.steps
    panels.push({
      title: 'Throughput ramp: accepted and delivered vs offered',
      xLabel: 'offered msg/s',
      yLabel: 'msg/s',
      series: [
        { label: 'offered', color: '#999', dashed: true, points: steps.map(s => [s.rate, s.rate]) },
        { label: 'natter acked/s', color: '#2ca02c', dots: true, points: steps.map(s => [s.rate, s.ackedPerSecond]) },
        { label: 'natter delivered/s', color: '#1f77b4', dots: true, points: steps.map(s => [s.rate, s.deliveredPerSecond]) },
        ...(relay ? [{ label: 'relay delivered/s', color: '#ff7f0e', dashed: true, dots: true, points: relay.load.steps.map(s => [s.rate, s.deliveredPerSecond] as [number, number]) }] : [])
      ]
    }, {
      title: 'Throughput ramp: send → receive latency per step',
      xLabel: 'offered msg/s',
      yLabel: 'ms',
      logY: true,
      marks: [{ y: 50, label: '50 ms' }, { y: 250, label: '250 ms (ramp stops)' }],
      series: [
        { label: 'natter p50', color: '#1f77b4', dots: true, points: steps.map(s => [s.rate, s.receive.p50]) },
        { label: 'natter p99', color: '#d62728', dots: true, points: steps.map(s => [s.rate, s.receive.p99]) },
        ...(relay
          ? [
              { label: 'relay p50', color: '#1f77b4', dashed: true, dots: true, points: relay.load.steps.map(s => [s.rate, s.receive.p50] as [number, number]) },
              { label: 'relay p99', color: '#d62728', dashed: true, dots: true, points: relay.load.steps.map(s => [s.rate, s.receive.p99] as [number, number]) }
            ]
          : [])
      ]
    })
  }
  else {
    panels.push({
      title: 'Messages per second (by arrival) and server CPU',
      xLabel: 's since the measured run began',
      yLabel: 'msg/s  ·  % CPU',
      series: [
        { label: 'natter acked/s', color: '#2ca02c', points: natter.load.perSecond.map(row => [row.second, row.acked]) },
        { label: 'natter delivered/s', color: '#1f77b4', points: natter.load.perSecond.map(row => [row.second, row.delivered]) },
        ...Object.entries(natter.series).filter(([key]) => key.endsWith('CPU %')).map(([key, points], index) => ({ label: key.replace(' %', ''), color: ['#d62728', '#9467bd'][index] ?? '#8c564b', points }))
      ]
    })
  }
  panels.push({
    title: 'Server RSS',
    xLabel: 's since the measured run began',
    yLabel: 'MB',
    series: Object.entries(natter.series).filter(([key]) => key.endsWith('RSS MB')).map(([key, points], index) => ({ label: key.replace(' MB', ''), color: ['#1f77b4', '#9467bd'][index] ?? '#8c564b', points }))
  })
  write(result, markdown, renderSvg(`Natter ${title}`, panels))
}

// ---------------------------------------------------------------- history

async function historyScenario() {
  const rows = num(values.rows, 10_000_000)
  const stack = await startStack(settings.users)
  log(`seeding ${settings.users} people (fixed addresses: a later run finds them again)`)
  const seeded = await stack.seed(settings.users, 'history')
  log(`seeded in ${seeded.seconds.toFixed(1)} s; filling ${rows} messages`)
  const filled = await seedHistory(databaseUrl, seeded.users, rows, num(values['seed-timeout'], 1800) * 1000, log)
  log(`history holds ${filled.rows} messages (${filled.insertedRows} inserted now in ${filled.seconds.toFixed(0)} s)`)
  const server = stack.servers[0]!
  const rate = num(values.rate, 200)
  const seconds = num(values.duration, 30)
  // Write load beside the reads, as the issue asks: the same people chatting through real
  // sockets; 0 turns it off.
  const writeRate = values['write-rate'] === '0' ? 0 : num(values['write-rate'], 100)
  await quiet()
  await readHistory(server.url, seeded.users, filled.perConversation, filled.spanDays, rate, 5)
  const sampler = new Sampler({ [server.label]: server.pid }, { postgres: () => pidsNamed('postgres') })
  let from = performance.now()
  let measured: Promise<Awaited<ReturnType<typeof readHistory>>> | undefined
  const measure = () => {
    from = performance.now()
    return readHistory(server.url, seeded.users, filled.perConversation, filled.spanDays, rate, seconds)
  }
  const writes = writeRate
    ? await runLoad({
        users: seeded.users,
        // Their streams stand past the seeded history (and earlier runs' writes): the clients
        // follow each from the first frame they see.
        conversations: seeded.conversations.map(conversation => ({ ...conversation, lastSeq: -1 })),
        target: natterTarget([server]),
        steps: [{ rate: writeRate, seconds: seconds + 4, route: routeOf('pairs', seeded) }],
        warmupSeconds: 2,
        bodyChars: num(values.body, 100),
        drainMs: 10_000,
        settleMs: 2000,
        pingEveryMs: 25_000,
        afterOpen: async () => {
          // The reads start with the writes and end before them.
          measured = sleep(2000).then(measure)
        },
        log
      })
    : undefined
  const reads = await (measured ?? measure())
  const to = from + seconds * 1000
  sampler.stop()
  if (writes) log(`writes beside the reads: ${writes.total.ackedPerSecond.toFixed(0)}/s acked, receive p50 ${ms(writes.total.receive.p50)} p99 ${ms(writes.total.receive.p99)}, errors ${JSON.stringify(writes.all.errors)}`)
  const plans = await explainHistory(databaseUrl, seeded.users[0]!, 7)
  const usage = { server: sampler.usage(server.label, from, to), postgres: sampler.usage('postgres', from, to) }
  const result = {
    scenario,
    backend,
    startedAt: new Date(Date.now() - (performance.now() - t0)).toISOString(),
    machine: machine(),
    backends: stack.describe,
    seed: { users: seeded.users.length, method: seeded.method, seconds: seeded.seconds },
    history: filled,
    reads,
    writes: writes && { rate: writeRate, total: writes.total, all: writes.all },
    usage,
    machineBusyPercent: sampler.machineBusy(from, to),
    othersCores: sampler.othersCores([server.label, 'postgres'], from, to),
    plans,
    notes
  }
  const markdown = [
    `# history (${filled.rows.toLocaleString('en')} messages in ${seeded.users.length / 2} conversations)`,
    '',
    header(result.machine, stack.describe, result.seed),
    `History: ${filled.perConversation} messages per conversation over ${filled.spanDays} days (daily partitions); ${filled.insertedRows} inserted by this run in ${filled.seconds.toFixed(0)} s.`,
    '',
    table(['read', 'requests', 'p50', 'p90', 'p99', 'p99.9', 'max', 'errors'], [
      ...reads.kinds.map(kind => [kind.name, kind.latency.count, ms(kind.latency.p50), ms(kind.latency.p90), ms(kind.latency.p99), ms(kind.latency.p999), ms(kind.latency.max), kind.errors]),
      ['all', reads.all.count, ms(reads.all.p50), ms(reads.all.p90), ms(reads.all.p99), ms(reads.all.p999), ms(reads.all.max), reads.kinds.reduce((sum, kind) => sum + kind.errors, 0)]
    ]),
    '',
    `Open loop at ${rate} requests/s for ${seconds} s (${reads.skipped} skipped at 256 in flight). Server CPU ${usage.server?.cpuPercent ?? '–'} %, PostgreSQL ${usage.postgres?.cpuPercent ?? '–'} %, other processes ${result.othersCores} cores.`,
    writes
      ? `Beside the reads, ${writeRate} messages/s sent by the same people over real sockets (in-process bus, PostgreSQL): ${writes.total.ackedPerSecond.toFixed(0)}/s acked, send → receive p50 ${ms(writes.total.receive.p50)}, p99 ${ms(writes.total.receive.p99)}, errors ${JSON.stringify(writes.total.errors)}, lost ${writes.all.ackedNotReceived}.`
      : 'No write load beside the reads (--write-rate 0).',
    '',
    `Goal: history p99 ≤ 20 ms at 10M: ${reads.all.p99 <= 20 ? 'met' : 'missed'} (p99 ${ms(reads.all.p99)}; worst kind ${ms(Math.max(...reads.kinds.map(kind => kind.latency.p99)))}).`,
    '',
    '## Plans',
    '',
    ...Object.entries(plans).flatMap(([name, plan]) => [`${name}:`, '', '```', plan, '```', ''])
  ].join('\n')
  const panels: Panel[] = [{
    title: 'History read latency by kind',
    xLabel: 'percentile',
    yLabel: 'ms',
    logY: true,
    marks: [{ y: 20, label: 'goal p99 20 ms' }],
    series: reads.kinds.map((kind, index) => ({ label: kind.name.split(' (')[0]!, color: ['#1f77b4', '#d62728', '#2ca02c'][index]!, dots: true, points: [[50, kind.latency.p50], [90, kind.latency.p90], [99, kind.latency.p99], [99.9, kind.latency.p999]] as Array<[number, number]> }))
  }]
  write(result, markdown, renderSvg(`Natter history: ${filled.rows.toLocaleString('en')} messages`, panels))
}

// ---------------------------------------------------------------- search

async function searchScenario() {
  const messages = num(values.messages, 10_000_000)
  const stack = await startStack(settings.users)
  log(`seeding ${settings.users} people (fixed addresses: a later run finds them again)`)
  const seeded = await stack.seed(settings.users, 'search')
  log(`seeded in ${seeded.seconds.toFixed(1)} s; filling ${messages} messages`)
  const filled = await seedSearch(databaseUrl, seeded.users, messages, num(values['seed-timeout'], 1800) * 1000, log)
  log(`search holds ${filled.messages} messages (${filled.insertedMessages} inserted now in ${filled.seconds.toFixed(0)} s)`)
  const sizes = await searchIndexSizes(databaseUrl)
  log(`indexes over ${sizes.partitions} partitions: tsvector GIN ${sizes.searchMiB.toFixed(1)} MiB, trigram GIN ${sizes.trigramMiB.toFixed(1)} MiB (messages ${sizes.tableMiB.toFixed(1)} MiB)`)
  const server = stack.servers[0]!
  const rate = num(values.rate, 50)
  const seconds = num(values.duration, 30)
  // Messages written through the app beside the searches, as the issue asks; 0 turns it off.
  const writeRate = values['write-rate'] === '0' ? 0 : num(values['write-rate'], 100)
  await quiet()
  // Warms the caches and the server's code paths; not measured.
  await readSearch(server.url, seeded.users, rate, 5)
  const sampler = new Sampler({ [server.label]: server.pid }, { postgres: () => pidsNamed('postgres') })
  let from = performance.now()
  let measured: Promise<Awaited<ReturnType<typeof readSearch>>> | undefined
  const measure = () => {
    from = performance.now()
    return readSearch(server.url, seeded.users, rate, seconds)
  }
  const writes = writeRate
    ? await runLoad({
        users: seeded.users,
        conversations: seeded.conversations.map(conversation => ({ ...conversation, lastSeq: -1 })),
        target: natterTarget([server]),
        steps: [{ rate: writeRate, seconds: seconds + 4, route: routeOf('pairs', seeded) }],
        warmupSeconds: 2,
        bodyChars: num(values.body, 100),
        drainMs: 10_000,
        settleMs: 2000,
        pingEveryMs: 25_000,
        afterOpen: async () => {
          measured = sleep(2000).then(measure)
        },
        log
      })
    : undefined
  const reads = await (measured ?? measure())
  const to = from + seconds * 1000
  sampler.stop()
  if (writes) log(`writes beside the searches: ${writes.total.ackedPerSecond.toFixed(0)}/s acked, receive p50 ${ms(writes.total.receive.p50)} p99 ${ms(writes.total.receive.p99)}, errors ${JSON.stringify(writes.all.errors)}`)
  const plans = {
    'own messages (up to NATTER_SEARCH_SCAN_UP_TO)': await explainSearch(databaseUrl, seeded.users[0]!, 'meeting', 7, true),
    'word index (past it)': await explainSearch(databaseUrl, seeded.users[0]!, 'meeting', 7, false)
  }
  const usage = { server: sampler.usage(server.label, from, to), postgres: sampler.usage('postgres', from, to) }
  const result = {
    scenario,
    backend,
    startedAt: new Date(Date.now() - (performance.now() - t0)).toISOString(),
    machine: machine(),
    backends: stack.describe,
    seed: { users: seeded.users.length, method: seeded.method, seconds: seeded.seconds },
    search: filled,
    indexes: sizes,
    reads,
    writes: writes && { rate: writeRate, total: writes.total, all: writes.all },
    usage,
    machineBusyPercent: sampler.machineBusy(from, to),
    othersCores: sampler.othersCores([server.label, 'postgres'], from, to),
    plans,
    notes
  }
  const markdown = [
    `# search (${filled.messages.toLocaleString('en')} messages in ${seeded.users.length / 2} conversations)`,
    '',
    header(result.machine, stack.describe, result.seed),
    `Messages: ${filled.perConversation} per conversation over ${filled.spanDays} days (daily partitions); ${filled.insertedMessages} inserted by this run in ${filled.seconds.toFixed(0)} s (${filled.statements} statements, one a day partition).`,
    `Each person's conversation holds ${filled.perConversation} messages; the server reads a person's own messages one by one up to NATTER_SEARCH_SCAN_UP_TO = ${values['scan-up-to'] ?? '20000 (the default)'}, past it through the indexes.`,
    `Indexes over ${sizes.partitions} partitions: tsvector GIN ${sizes.searchMiB.toFixed(1)} MiB, trigram GIN ${sizes.trigramMiB.toFixed(1)} MiB; the messages themselves ${sizes.tableMiB.toFixed(1)} MiB.`,
    '',
    table(['search', 'example', 'requests', 'results (mean)', 'p50', 'p90', 'p99', 'p99.9', 'max', 'errors'], [
      ...reads.kinds.map(kind => [kind.name, `\`${kind.example}\``, kind.latency.count, kind.results, ms(kind.latency.p50), ms(kind.latency.p90), ms(kind.latency.p99), ms(kind.latency.p999), ms(kind.latency.max), kind.errors]),
      ['all', '', reads.all.count, '', ms(reads.all.p50), ms(reads.all.p90), ms(reads.all.p99), ms(reads.all.p999), ms(reads.all.max), reads.kinds.reduce((sum, kind) => sum + kind.errors, 0)]
    ]),
    '',
    `Open loop at ${rate} searches/s for ${seconds} s (${reads.skipped} skipped at 256 in flight; answers ${JSON.stringify(reads.statuses)}). Server CPU ${usage.server?.cpuPercent ?? '–'} %, PostgreSQL ${usage.postgres?.cpuPercent ?? '–'} %, other processes ${result.othersCores} cores.`,
    writes
      ? `Beside the searches, ${writeRate} messages/s sent by the same people over real sockets (in-process bus, PostgreSQL): ${writes.total.ackedPerSecond.toFixed(0)}/s acked, send → receive p50 ${ms(writes.total.receive.p50)}, p99 ${ms(writes.total.receive.p99)}, errors ${JSON.stringify(writes.total.errors)}, lost ${writes.all.ackedNotReceived}.`
      : 'No write load beside the searches (--write-rate 0).',
    '',
    `Goal: search p99 ≤ 50 ms: ${Math.max(...reads.kinds.map(kind => kind.latency.p99)) <= 50 ? 'met' : 'missed'} (worst kind p99 ${ms(Math.max(...reads.kinds.map(kind => kind.latency.p99)))}).`,
    '',
    '## Plans (one word, as a prefix)',
    '',
    ...Object.entries(plans).flatMap(([name, plan]) => [`${name}:`, '', '```', plan, '```', ''])
  ].join('\n')
  const panels: Panel[] = [{
    title: 'Search latency by kind',
    xLabel: 'percentile',
    yLabel: 'ms',
    logY: true,
    marks: [{ y: 50, label: 'goal p99 50 ms' }],
    series: reads.kinds.map((kind, index) => ({ label: kind.name, color: ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'][index]!, dots: true, points: [[50, kind.latency.p50], [90, kind.latency.p90], [99, kind.latency.p99], [99.9, kind.latency.p999]] as Array<[number, number]> }))
  }]
  write(result, markdown, renderSvg(`Natter search: ${filled.messages.toLocaleString('en')} messages`, panels))
}

async function main() {
  const nice = Number(values.nice)
  if (!Number.isInteger(nice) || nice < -20 || nice > 19) throw new Error('--nice: a whole number from -20 to 19')
  setNiceness(nice)
  if (nice) notes.push(`The server(s), the relay, the private Redis and Kafka and the load generator ran at nice ${nice}; PostgreSQL and everything else at their own.`)
  log(`${scenario}: backend ${backend}, ${instances} instance(s), ${settings.users} people; results in ${resultsDir}`)
  if (scenario === 'connections') await connectionsScenario()
  else if (scenario === 'history') await historyScenario()
  else if (scenario === 'search') await searchScenario()
  else await loadScenario()
}

main()
  .then(async () => {
    await cleanup()
    log('done')
    process.exit(0)
  })
  .catch(async (error) => {
    console.error(error)
    await cleanup()
    process.exit(1)
  })
