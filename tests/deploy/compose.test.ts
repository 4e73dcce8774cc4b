import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'

// docker-compose.yml is the one-command way to run the whole stack; these checks stand in for
// `docker compose up` where no Docker daemon is around.

interface Service {
  image?: string
  build?: unknown
  environment?: Record<string, string | number> | string[]
  ports?: (string | { published?: string | number, host_ip?: string })[]
  volumes?: (string | { source?: string })[]
  healthcheck?: { test?: string | string[], disable?: boolean }
  depends_on?: string[] | Record<string, { condition?: string }>
}

const file = fileURLToPath(new URL('../../docker-compose.yml', import.meta.url))
const compose = parse(readFileSync(file, 'utf8')) as { services: Record<string, Service>, volumes?: Record<string, unknown> }
const services = compose.services
const dataServices = ['postgres', 'redis', 'kafka', 'mailpit']

function environment(service: Service): Record<string, string> {
  const env = service.environment ?? {}
  if (Array.isArray(env)) return Object.fromEntries(env.map(line => [line.split('=')[0], line.slice(line.indexOf('=') + 1)]))
  return Object.fromEntries(Object.entries(env).map(([key, value]) => [key, String(value)]))
}

function hostPorts(service: Service): { ip: string, port: string }[] {
  return (service.ports ?? []).map((port) => {
    if (typeof port !== 'string') return { ip: port.host_ip ?? '0.0.0.0', port: String(port.published) }
    const parts = port.split(':')
    return parts.length === 3 ? { ip: parts[0]!, port: parts[1]! } : { ip: '0.0.0.0', port: parts[0]! }
  })
}

describe('docker-compose.yml', () => {
  it('has the app and its four services', () => {
    expect(Object.keys(services).sort()).toEqual(['app', ...dataServices].sort())
  })

  it('builds the app from the Dockerfile and pins every other image to a version', () => {
    expect(services.app!.build).toBeDefined()
    for (const name of dataServices) {
      const image = services[name]!.image ?? ''
      // name:tag where the tag names at least a minor version (17.10, 7.4.11-alpine, v1.28.0)
      expect(image, name).toMatch(/^[\w./-]+:v?\d+\.\d+[\w.-]*$/)
      expect(image, name).not.toMatch(/:latest$/)
    }
  })

  it('health-checks every service', () => {
    for (const [name, service] of Object.entries(services)) {
      expect(service.healthcheck?.test, name).toBeTruthy()
      expect(service.healthcheck?.disable, name).not.toBe(true)
    }
  })

  it('starts the app only once each service is healthy', () => {
    const dependsOn = services.app!.depends_on
    expect(Array.isArray(dependsOn), 'the long form, with conditions').toBe(false)
    for (const name of dataServices) {
      expect((dependsOn as Record<string, { condition?: string }>)[name]?.condition, name).toBe('service_healthy')
    }
  })

  it('points the app at the services by their compose names', () => {
    const env = environment(services.app!)
    expect(new URL(env.DATABASE_URL!).hostname).toBe('postgres')
    expect(new URL(env.DATABASE_URL!).protocol).toBe('postgres:')
    expect(new URL(env.REDIS_URL!).hostname).toBe('redis')
    expect(env.KAFKA_BROKERS!.split(',').map(b => b.split(':')[0])).toEqual(['kafka'])
    expect(new URL(env.SMTP_URL!).hostname).toBe('mailpit')
    expect(env.NATTER_PUBLIC_URL).toBe('http://localhost:3000')
    expect(env.NATTER_SESSION_SECRET).toMatch(/dev/i)
  })

  it('matches the database credentials on both sides', () => {
    const url = new URL(environment(services.app!).DATABASE_URL!)
    const db = environment(services.postgres!)
    expect(url.username).toBe(db.POSTGRES_USER)
    expect(url.password).toBe(db.POSTGRES_PASSWORD)
    expect(url.pathname).toBe(`/${db.POSTGRES_DB}`)
  })

  it('advertises the Kafka listener the app connects to', () => {
    const kafka = environment(services.kafka!)
    expect(kafka.KAFKA_PROCESS_ROLES).toBe('broker,controller')
    expect(kafka.KAFKA_ADVERTISED_LISTENERS).toContain(`//${environment(services.app!).KAFKA_BROKERS}`)
    expect(kafka.KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR).toBe('1')
    expect(kafka.CLUSTER_ID).toMatch(/^[\w-]{22}$/)
  })

  it('publishes the app on 3000 and the data services on 127.0.0.1 only', () => {
    expect(hostPorts(services.app!).map(p => p.port)).toContain('3000')
    expect(hostPorts(services.mailpit!).map(p => p.port)).toContain('8025')
    for (const name of dataServices) {
      for (const port of hostPorts(services[name]!)) expect(port.ip, `${name}:${port.port}`).toBe('127.0.0.1')
    }
  })

  it('keeps data in named volumes', () => {
    const declared = Object.keys(compose.volumes ?? {})
    for (const name of ['postgres', 'redis', 'kafka']) {
      const sources = (services[name]!.volumes ?? []).map(v => typeof v === 'string' ? v.split(':')[0] : v.source)
      expect(sources.length, name).toBeGreaterThan(0)
      for (const source of sources) expect(declared, `${name} volume ${source}`).toContain(source)
    }
  })
})
