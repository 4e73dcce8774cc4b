import { formatWithOptions } from 'node:util'

type Level = 'debug' | 'info' | 'warn' | 'error'
type Fields = Record<string, unknown>
type Write = typeof process.stdout.write

const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 }
const threshold = order[(process.env.NATTER_LOG_LEVEL as Level) || 'info'] ?? order.info
const json = process.env.NODE_ENV === 'production' || process.env.NATTER_LOG_FORMAT === 'json'
// Where lines go: the streams as they are, until routeConsoleToLog wraps them and keeps their
// own writers for the log.
let toStdout = (line: string) => process.stdout.write(line)
let toStderr = (line: string) => process.stderr.write(line)
let routed = false

function write(level: Level, msg: string, fields?: Fields) {
  if (order[level] < threshold) return
  const stream = order[level] >= order.warn ? toStderr : toStdout
  if (json) {
    stream(JSON.stringify({ time: new Date().toISOString(), level, msg, ...serialize(fields) }) + '\n')
    return
  }
  const extra = fields ? ' ' + Object.entries(serialize(fields)).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ') : ''
  stream(`${new Date().toISOString().slice(11, 23)} ${level.padEnd(5)} ${msg}${extra}\n`)
}

function serialize(fields?: Fields): Fields {
  if (!fields) return {}
  const out: Fields = {}
  for (const [key, value] of Object.entries(fields)) {
    out[key] = value instanceof Error ? { name: value.name, message: value.message } : value
  }
  return out
}

/** One JSON object per line in production, short readable lines in dev. */
export const log = {
  debug: (msg: string, fields?: Fields) => write('debug', msg, fields),
  info: (msg: string, fields?: Fields) => write('info', msg, fields),
  warn: (msg: string, fields?: Fields) => write('warn', msg, fields),
  error: (msg: string, fields?: Fields) => write('error', msg, fields)
}

/**
 * Where the log is JSON, what others print becomes JSON lines too: console.* (Nitro's
 * "[request error]", Nuxt, Vue and h3 warnings, kafkajs, and unhandled rejections, which Nitro
 * reports with console.error) keeps its level; a raw write to stdout or stderr becomes one line
 * per line of text. A log collector then never sees a line it cannot parse.
 */
export function routeConsoleToLog() {
  if (!json || routed) return
  routed = true
  const stdout = process.stdout.write.bind(process.stdout)
  const stderr = process.stderr.write.bind(process.stderr)
  toStdout = line => stdout(line)
  toStderr = line => stderr(line)
  const as = (level: Level) => (...args: unknown[]) => {
    const error = args.find(arg => arg instanceof Error)
    write(level, formatWithOptions({ colors: false, depth: 4 }, ...args).trimEnd(), error && { error })
  }
  console.log = as('info')
  console.info = as('info')
  console.debug = as('debug')
  console.warn = as('warn')
  console.error = as('error')
  console.trace = as('error')
  process.stdout.write = lines('info')
  process.stderr.write = lines('error')
}

function lines(level: Level): Write {
  return ((chunk: string | Uint8Array, encoding?: BufferEncoding | ((error?: Error | null) => void), done?: (error?: Error | null) => void) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')
    for (const line of text.split('\n')) {
      if (line.trim()) write(level, line.trimEnd())
    }
    const callback = typeof encoding === 'function' ? encoding : done
    if (callback) process.nextTick(callback)
    return true
  }) as Write
}
