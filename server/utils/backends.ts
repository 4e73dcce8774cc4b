import { join } from 'node:path'
import { createMemoryBus } from './bus/memory'
import { createKafkaBus } from './bus/kafka'
import { namespaced, type Bus } from './bus/types'
import { useConfig, type NatterConfig } from './config'
import { createPGliteDatabase, createPostgresDatabase, defaultPGliteDir, type DatabaseHandle } from './database'
import { log } from './log'
import { createOutboxMailer } from './mail/outbox'
import { createSmtpMailer } from './mail/smtp'
import type { Mailer } from './mail/types'
import { createMemoryStore } from './store/memory'
import { createRedisStore } from './store/redis'
import type { Store } from './store/types'
import { migrateToLatest } from '../database/migrate'

export interface Backends {
  database: DatabaseHandle
  store: Store
  bus: Bus
  mailer: Mailer
}

export type BackendPart = keyof Backends

let opening: Promise<Backends> | undefined

/** Picks each seam's implementation from the environment, as docs/configuration.md says. */
export async function createBackends(config: NatterConfig): Promise<Backends> {
  const database = config.databaseUrl
    ? createPostgresDatabase(config.databaseUrl)
    : await createPGliteDatabase(config.dataDir === 'memory://' ? 'memory://' : defaultPGliteDir(config.dataDir))
  // Embedded, the keys go to a file beside the database, so a restart keeps people signed in.
  const store = config.redisUrl
    ? createRedisStore(config.redisUrl, `${config.namespace ?? 'natter'}:`)
    : createMemoryStore({ file: config.dataDir === 'memory://' ? undefined : join(config.dataDir, 'store.json') })
  const bus = config.kafkaBrokers ? namespaced(createKafkaBus(config.kafkaBrokers), config.namespace) : createMemoryBus()
  const mailer = config.smtpUrl ? createSmtpMailer(config.smtpUrl, config.mailFrom) : createOutboxMailer()
  log.info(`database: ${database.mode}`)
  log.info(`store: ${store.mode}`)
  log.info(`bus: ${bus.mode}`)
  log.info(`mail: ${mailer.mode}`)
  return { database, store, bus, mailer }
}

/** The process's backends, opened once and migrated. */
export function useBackends(): Promise<Backends> {
  opening ??= (async () => {
    const backends = await createBackends(useConfig())
    const applied = await migrateToLatest(backends.database.db)
    if (applied.length) log.info('migrations applied', { applied })
    return backends
  })()
  opening.catch(() => {
    opening = undefined
  })
  return opening
}

export async function closeBackends() {
  if (!opening) return
  const backends = await opening.catch(() => undefined)
  opening = undefined
  if (!backends) return
  // The bus first: consumers finish and commit their batch while the database still answers.
  await backends.bus.close()
  await Promise.allSettled([backends.store.close(), backends.mailer.close(), backends.database.close()])
}

export interface PartHealth { mode: string, ok: boolean, error?: string }

/** Asks each backend with a short deadline; /api/ready serves the answer. */
export async function checkBackends(): Promise<Record<BackendPart, PartHealth>> {
  const config = useConfig()
  const backends = await withDeadline(useBackends(), 5000).catch(() => undefined)
  const modes: Record<BackendPart, string> = {
    database: backends?.database.mode ?? (config.databaseUrl ? 'postgres' : 'pglite'),
    store: backends?.store.mode ?? (config.redisUrl ? 'redis' : 'in-process'),
    bus: backends?.bus.mode ?? (config.kafkaBrokers ? 'kafka' : 'in-process'),
    mailer: backends?.mailer.mode ?? (config.smtpUrl ? 'smtp' : 'log')
  }
  async function check(part: BackendPart): Promise<PartHealth> {
    if (!backends) return { mode: modes[part], ok: false, error: 'not started' }
    // Mail is reported but never blocks readiness: a down SMTP server must not stop people chatting.
    if (part === 'mailer') return { mode: modes[part], ok: true }
    try {
      await withDeadline(backends[part].ping(), 2000)
      return { mode: modes[part], ok: true }
    }
    catch (error) {
      return { mode: modes[part], ok: false, error: error instanceof Error ? error.message : String(error) }
    }
  }
  const [database, store, bus, mailer] = await Promise.all((['database', 'store', 'bus', 'mailer'] as const).map(check))
  return { database: database!, store: store!, bus: bus!, mailer: mailer! }
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
    })
  ])
}
