import { createServer } from 'node:net'
import { createError } from 'h3'
import { Redis } from 'ioredis'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { isBackendOutage } from '../../server/utils/outage'

/** A loopback port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise(resolve => server.close(resolve))
  return port
}

// The errors the real drivers throw when their server is away, as the API error handler gets them
// (h3 wraps a handler's error and keeps it as the cause).
describe('isBackendOutage', () => {
  it('recognises pg failing to connect', async () => {
    const client = new pg.Client({ host: '127.0.0.1', port: await closedPort(), user: 'x', database: 'x', connectionTimeoutMillis: 2000 })
    const error = await client.connect().then(() => undefined, (e: unknown) => e)
    expect(error).toBeDefined()
    expect(isBackendOutage(error)).toBe(true)
    expect(isBackendOutage(createError(error as Error))).toBe(true)
  })

  it('recognises pg-pool failing to connect', async () => {
    const pool = new pg.Pool({ host: '127.0.0.1', port: await closedPort(), user: 'x', database: 'x', connectionTimeoutMillis: 2000 })
    const error = await pool.query('select 1').then(() => undefined, (e: unknown) => e)
    await pool.end()
    expect(isBackendOutage(createError(error as Error))).toBe(true)
  })

  it('recognises ioredis giving up on a command', async () => {
    const redis = new Redis({ host: '127.0.0.1', port: await closedPort(), maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true })
    redis.on('error', () => {})
    const error = await redis.get('k').then(() => undefined, (e: unknown) => e)
    redis.disconnect()
    expect(error).toBeDefined()
    expect(isBackendOutage(createError(error as Error))).toBe(true)
  })

  it('recognises PostgreSQL shutting down and refusing connections by SQLSTATE', () => {
    for (const code of ['57P01', '57P03', '08006', '53300']) expect(isBackendOutage(Object.assign(new Error('x'), { code }))).toBe(true)
  })

  it('does not take a bug or a bad request for an outage', () => {
    expect(isBackendOutage(new TypeError('Cannot read properties of undefined'))).toBe(false)
    // A syntax error, a unique violation, a data exception: the request or the code is wrong.
    for (const code of ['42601', '23505', '22P02']) expect(isBackendOutage(Object.assign(new Error('x'), { code }))).toBe(false)
    expect(isBackendOutage(createError({ statusCode: 400, message: 'bad' }))).toBe(false)
    expect(isBackendOutage(undefined)).toBe(false)
    const loop: { cause?: unknown, message: string } = { message: 'loop' }
    loop.cause = loop
    expect(isBackendOutage(loop)).toBe(false)
  })
})
