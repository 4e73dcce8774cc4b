// `npm run test:services` needs the real backends; fail at once, naming the variable, if one is unreachable.
import net from 'node:net'

const defaults = {
  DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/natter_test',
  REDIS_URL: 'redis://127.0.0.1:6379',
  KAFKA_BROKERS: '127.0.0.1:9092'
}

function target(name, value) {
  if (name === 'KAFKA_BROKERS') {
    const [host, port] = value.split(',')[0].split(':')
    return { host, port: Number(port) }
  }
  const url = new URL(value)
  return { host: url.hostname, port: Number(url.port || (name === 'REDIS_URL' ? 6379 : 5432)) }
}

function reachable({ host, port }) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: 3000 })
    socket.once('connect', () => (socket.end(), resolve(true)))
    socket.once('timeout', () => (socket.destroy(), resolve(false)))
    socket.once('error', () => resolve(false))
  })
}

let failed = false
for (const [name, fallback] of Object.entries(defaults)) {
  const value = process.env[name] || fallback
  const where = target(name, value)
  if (!(await reachable(where))) {
    console.error(`test:services: ${name}=${value} is not reachable at ${where.host}:${where.port}. Start the services with \`npm run services:up\` or point ${name} at yours.`)
    failed = true
  }
}
if (failed) process.exit(1)
