type Level = 'debug' | 'info' | 'warn' | 'error'
type Fields = Record<string, unknown>

const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 }
const threshold = order[(process.env.NATTER_LOG_LEVEL as Level) || 'info'] ?? order.info
const json = process.env.NODE_ENV === 'production' || process.env.NATTER_LOG_FORMAT === 'json'

function write(level: Level, msg: string, fields?: Fields) {
  if (order[level] < threshold) return
  const stream = order[level] >= order.warn ? process.stderr : process.stdout
  if (json) {
    stream.write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...serialize(fields) }) + '\n')
    return
  }
  const extra = fields ? ' ' + Object.entries(serialize(fields)).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ') : ''
  stream.write(`${new Date().toISOString().slice(11, 23)} ${level.padEnd(5)} ${msg}${extra}\n`)
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
