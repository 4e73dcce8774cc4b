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
  /** How soon one address may ask for another code. */
  codeResendMs: number
  /**
   * Keeps this deployment's Redis keys, Kafka topics and consumer groups apart from another's on
   * the same servers (NATTER_NAMESPACE); unset, the names are the historical ones.
   */
  namespace?: string
  /** Open sockets on one instance: of one person, from one address, in all (keep the open-file limit above the last). */
  maxSocketsPerUser: number
  maxSocketsPerIp: number
  maxSockets: number
}

let config: NatterConfig | undefined

/** Reads the contract's environment variables once; see shared/CONTRACT.md and docs/configuration.md. */
export function useConfig(): NatterConfig {
  // Written out in full so the production bundle inlines it: a built server is always production.
  config ??= loadConfig(process.env, process.env.NODE_ENV === 'production')
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
    trustProxy: env.NATTER_TRUST_PROXY === '1' || env.NATTER_TRUST_PROXY === 'true',
    codeResendMs: 1000 * Number(env.NATTER_CODE_RESEND_SECONDS || 60),
    namespace,
    maxSocketsPerUser: positive(env, 'NATTER_MAX_SOCKETS_PER_USER', 20),
    maxSocketsPerIp: positive(env, 'NATTER_MAX_SOCKETS_PER_IP', 200),
    maxSockets: positive(env, 'NATTER_MAX_SOCKETS', 10_000)
  }
}

function positive(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const value = Number(env[name] || fallback)
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a whole number >= 1, got "${env[name]}"`)
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
