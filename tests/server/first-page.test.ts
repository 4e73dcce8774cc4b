import { request } from 'node:http'
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pickEncoding } from '../../server/utils/compression'
import { startServer, type TestServer } from '../support/server'

// Issue 21, the first page: compressed answers, robots.txt as a file, a meta description.

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server?.stop())

/** A GET with exactly these headers (fetch would add and undo Accept-Encoding itself). */
function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number, headers: Record<string, string | string[] | undefined>, body: Buffer }> {
  return new Promise((resolve, reject) => {
    request(`${server.url}${path}`, { headers }, (response) => {
      const chunks: Buffer[] = []
      response.on('data', chunk => chunks.push(chunk))
      response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body: Buffer.concat(chunks) }))
    }).on('error', reject).end()
  })
}

describe('the rendered sign-in page', () => {
  it('goes out brotli- or gzip-compressed as the browser asks, and plain otherwise', async () => {
    const plain = await get('/login')
    expect(plain.status).toBe(200)
    expect(plain.headers['content-encoding']).toBeUndefined()
    const html = plain.body.toString()
    expect(html).toMatch(/<meta name="description" content="[^"]{20,}"/)

    const br = await get('/login', { 'accept-encoding': 'gzip, deflate, br, zstd' })
    expect(br.headers['content-encoding']).toBe('br')
    expect(br.headers.vary).toMatch(/Accept-Encoding/i)
    expect(br.body.length).toBeLessThan(plain.body.length / 3)
    expect(brotliDecompressSync(br.body).toString()).toContain('<meta name="description"')

    const gzip = await get('/login', { 'accept-encoding': 'gzip' })
    expect(gzip.headers['content-encoding']).toBe('gzip')
    expect(gunzipSync(gzip.body).toString()).toContain('<meta name="description"')
  })

  it('serves its built JavaScript precompressed', async () => {
    const html = (await get('/login')).body.toString()
    const script = /<script[^>]*\bsrc="(\/_nuxt\/[^"]+\.js)"/.exec(html)?.[1]
    expect(script).toBeDefined()
    const plain = await get(script!)
    const br = await get(script!, { 'accept-encoding': 'br, gzip' })
    expect(br.headers['content-encoding']).toBe('br')
    expect(brotliDecompressSync(br.body).equals(plain.body)).toBe(true)
  })
})

describe('robots.txt', () => {
  it('is a file, not a redirect to the sign-in page', async () => {
    const robots = await get('/robots.txt')
    expect(robots.status).toBe(200)
    expect(robots.headers['content-type']).toMatch(/^text\/plain/)
    expect(robots.body.toString()).toMatch(/^User-agent: \*/m)
  })
})

describe('pickEncoding', () => {
  it('prefers br, then gzip, and honours q=0', () => {
    expect(pickEncoding('gzip, deflate, br')).toBe('br')
    expect(pickEncoding('gzip')).toBe('gzip')
    expect(pickEncoding('br;q=0, gzip;q=0.5')).toBe('gzip')
    expect(pickEncoding('*')).toBe('br')
    expect(pickEncoding('identity')).toBeUndefined()
    expect(pickEncoding(undefined)).toBeUndefined()
  })
})
