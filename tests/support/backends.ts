import { randomUUID } from 'node:crypto'
import { createKafkaBus } from '../../server/utils/bus/kafka'
import { createMemoryBus } from '../../server/utils/bus/memory'
import type { Bus } from '../../server/utils/bus/types'
import { createPGliteDatabase, createPostgresDatabase, type DatabaseHandle } from '../../server/utils/database'
import { createMemoryStore } from '../../server/utils/store/memory'
import { createRedisStore } from '../../server/utils/store/redis'
import type { Store } from '../../server/utils/store/types'

/** True in the `services` project: the suites then run against the real backends. */
export const realServices = process.env.NATTER_TEST_SERVICES === '1'

export const serviceUrls = {
  DATABASE_URL: process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/natter_test',
  REDIS_URL: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
  KAFKA_BROKERS: process.env.KAFKA_BROKERS || '127.0.0.1:9092'
}

/** The environment a server under test gets: real services in the services project, none otherwise. */
export function backendEnv(): Record<string, string> {
  // NATTER_NAMESPACE lets two test runs share one Redis and Kafka without meeting.
  const namespace: Record<string, string> = process.env.NATTER_NAMESPACE ? { NATTER_NAMESPACE: process.env.NATTER_NAMESPACE } : {}
  return realServices ? { ...serviceUrls, ...namespace } : {}
}

/** A unique prefix so runs never see each other's keys, topics or groups. */
export function uniqueName(label: string): string {
  return `${label}-${randomUUID().slice(0, 8)}`
}

export function testStore(): Store {
  return realServices ? createRedisStore(serviceUrls.REDIS_URL, `test:${uniqueName('store')}:`) : createMemoryStore()
}

export function testBus(): Bus {
  return realServices ? createKafkaBus(serviceUrls.KAFKA_BROKERS.split(','), uniqueName('test')) : createMemoryBus()
}

export async function testDatabase(): Promise<DatabaseHandle> {
  return realServices ? createPostgresDatabase(serviceUrls.DATABASE_URL) : createPGliteDatabase('memory://')
}
