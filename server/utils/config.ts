import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'

export interface NatterConfig {
  production: boolean
  port: number
  publicUrl: string
  publicOrigin: string
  secureCookies: boolean
  dataDir: string
  databaseUrl?: string
  redisUrl?: string
  kafkaBrokers?: string[]
  smtpUrl?: string
  mailFrom: string
  retentionDays: number
  sessionSecret: string
  metricsToken?: string
  /** Behind Traefik: take the client IP from X-Forwarded-For. Off when exposed directly. */
  trustProxy: boolean
  /**
   * How many proxies in front append to X-Forwarded-For (NATTER_TRUST_PROXY=1, or the count):
   * the client is the entry that many places from the right. 0 when exposed directly.
   */
  proxyHops: number
  /** In production without SMTP_URL, sign-in codes go to the log only with NATTER_DEV_MAIL=1. */
  devMail: boolean
  /** The HTTP edge's limits: see docs/security.md, "Request and connection limits". */
  limits: EdgeLimits
  /** How soon one address may ask for another code. */
  codeResendMs: number
  /**
   * Keeps this deployment's Redis keys, Kafka topics and consumer groups apart from another's on
   * the same servers (NATTER_NAMESPACE); unset, the names are the historical ones.
   */
  namespace?: string
  /** Open sockets on one instance: of one person, from one address, in all (keep the open-file limit above the last). */
  maxSocketsPerUser: number
  /** Search reads a person's own messages one by one up to this many, then uses the word indexes (search.ts). */
  searchScanUpTo: number
  maxSocketsPerIp: number
  maxSockets: number
}

export interface EdgeLimits {
  /** The whole request line and headers must arrive within this (slowloris). */
  headersTimeoutMs: number
  /** The whole request, body included, must arrive within this. */
  requestTimeoutMs: number
  /** An idle kept-alive connection is closed after this. */
  keepAliveTimeoutMs: number
  /** Open TCP connections, all clients together; lowered at start to fit the open-file limit. */
  maxConnections: number
  /** Open TCP connections from one address (one /64 for IPv6); 0 = no cap. Off behind a proxy. */
  maxConnectionsPerIp: number
}

let config: NatterConfig | undefined

/** Reads the contract's environment variables once; see docs/configuration.md. */
export function useConfig(): NatterConfig {
  // Written out in full so the production bundle inlines it: a built server is always production.
  config ??= servable(loadConfig(process.env, process.env.NODE_ENV === 'production'))
  return config
}

// What only a server needs (the scripts that migrate or purge send no mail).
function servable(config: NatterConfig): NatterConfig {
  if (config.production && !config.smtpUrl && !config.devMail) {
    throw new Error('SMTP_URL is required in production, or every sign-in code would be written to the server log; set SMTP_URL=smtp://user:password@host:587 (or smtps://…:465), or NATTER_DEV_MAIL=1 on a machine only you can reach to print the codes to the log')
  }
  return config
}

export function loadConfig(env: NodeJS.ProcessEnv, production = env.NODE_ENV === 'production'): NatterConfig {
  const port = Number(env.PORT || 3000)
  const publicUrl = (env.NATTER_PUBLIC_URL || `http://localhost:${port}`).replace(/\/+$/, '')
  const dataDir = resolve(env.NATTER_DATA_DIR || '.data')
  const retentionDays = Number(env.NATTER_RETENTION_DAYS || 7)
  if (!Number.isInteger(retentionDays) || retentionDays < 1) {
    throw new Error(`NATTER_RETENTION_DAYS must be a whole number of days >= 1, got "${env.NATTER_RETENTION_DAYS}"`)
  }
  const proxyHops = hopsFrom(env.NATTER_TRUST_PROXY)
  const namespace = env.NATTER_NAMESPACE || undefined
  if (namespace !== undefined && !/^[a-z0-9][a-z0-9-]{0,31}$/.test(namespace)) {
    throw new Error(`NATTER_NAMESPACE must be 1-32 lowercase letters, digits or dashes, got "${namespace}"`)
  }
  return {
    production,
    port,
    publicUrl,
    publicOrigin: new URL(publicUrl).origin,
    secureCookies: publicUrl.startsWith('https:'),
    dataDir,
    databaseUrl: env.DATABASE_URL || undefined,
    redisUrl: env.REDIS_URL || undefined,
    kafkaBrokers: env.KAFKA_BROKERS ? env.KAFKA_BROKERS.split(',').map(b => b.trim()).filter(Boolean) : undefined,
    smtpUrl: env.SMTP_URL || undefined,
    mailFrom: env.MAIL_FROM || 'Natter <no-reply@localhost>',
    retentionDays,
    sessionSecret: sessionSecret(env, production, dataDir),
    metricsToken: env.NATTER_METRICS_TOKEN || undefined,
    trustProxy: proxyHops > 0,
    proxyHops,
    devMail: env.NATTER_DEV_MAIL === '1' || env.NATTER_DEV_MAIL === 'true',
    searchScanUpTo: whole(env, 'NATTER_SEARCH_SCAN_UP_TO', 20_000, 0),
    limits: {
      headersTimeoutMs: whole(env, 'NATTER_HEADERS_TIMEOUT_MS', 10_000, 1),
      requestTimeoutMs: whole(env, 'NATTER_REQUEST_TIMEOUT_MS', 30_000, 1),
      keepAliveTimeoutMs: whole(env, 'NATTER_KEEP_ALIVE_TIMEOUT_MS', 5_000, 1),
      maxConnections: whole(env, 'NATTER_MAX_CONNECTIONS', 10_000, 1),
      maxConnectionsPerIp: whole(env, 'NATTER_MAX_CONNECTIONS_PER_IP', 128, 0)
    },
    codeResendMs: 1000 * Number(env.NATTER_CODE_RESEND_SECONDS || 60),
    namespace,
    maxSocketsPerUser: whole(env, 'NATTER_MAX_SOCKETS_PER_USER', 20, 1),
    maxSocketsPerIp: whole(env, 'NATTER_MAX_SOCKETS_PER_IP', 200, 1),
    maxSockets: whole(env, 'NATTER_MAX_SOCKETS', 10_000, 1)
  }
}

// NATTER_TRUST_PROXY: off (unset, 0, false), one proxy (1, true), or the number of proxies in a chain.
function hopsFrom(value: string | undefined): number {
  if (!value || value === '0' || value === 'false') return 0
  if (value === 'true') return 1
  const hops = Number(value)
  if (!Number.isInteger(hops) || hops < 0 || hops > 10) {
    throw new Error(`NATTER_TRUST_PROXY must be 1 (one proxy in front), the number of proxies (up to 10), or 0, got "${value}"`)
  }
  return hops
}

function whole(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const given = env[name]
  if (given === undefined || given === '') return fallback
  const value = Number(given)
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be a whole number >= ${min}, got "${given}"`)
  return value
}

function sessionSecret(env: NodeJS.ProcessEnv, production: boolean, dataDir: string): string {
  const given = env.NATTER_SESSION_SECRET
  if (given) {
    if (given.length < 32) throw new Error('NATTER_SESSION_SECRET must be at least 32 characters; make one with `openssl rand -base64 48`')
    return given
  }
  if (production) {
    throw new Error('NATTER_SESSION_SECRET is required in production; make one with `openssl rand -base64 48` and set it in the environment')
  }
  // Dev only: one secret per checkout, so sessions survive restarts of `npm run dev`.
  const file = join(dataDir, 'session-secret')
  if (existsSync(file)) return readFileSync(file, 'utf8').trim()
  mkdirSync(dataDir, { recursive: true })
  const secret = randomBytes(48).toString('base64')
  writeFileSync(file, secret, { mode: 0o600 })
  return secret
}
