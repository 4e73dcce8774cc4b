import { promisify } from 'node:util'
import { brotliCompress, constants, gzip } from 'node:zlib'
import { getRequestHeader } from 'h3'
import { pickEncoding } from '../utils/compression'

const brotli = promisify(brotliCompress)
const gzipAsync = promisify(gzip)

// Below this, compressing costs more than it saves.
const MIN_BYTES = 1024

// The server-rendered pages (HTML, 44 KB for the sign-in page) went out uncompressed: Nitro
// compresses only the built assets (nuxt.config.ts, compressPublicAssets). This plugin is named to
// run after csp-nonce.ts, which edits the HTML before it is compressed. Brotli at quality 5 is
// a few milliseconds for a page and within a few percent of the best ratio.
export default defineNitroPlugin((nitroApp) => {
  nitroApp.hooks.hook('render:response', async (response, { event }) => {
    if (typeof response.body !== 'string' || Buffer.byteLength(response.body) < MIN_BYTES) return
    const headers = (response.headers ??= {}) as Record<string, string>
    const vary = headers.vary ?? headers.Vary
    headers.vary = vary ? `${vary}, Accept-Encoding` : 'Accept-Encoding'
    if (headers['content-encoding']) return
    const encoding = pickEncoding(getRequestHeader(event, 'accept-encoding'))
    if (!encoding) return
    const body = encoding === 'br'
      ? await brotli(response.body, { params: { [constants.BROTLI_PARAM_QUALITY]: 5, [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT } })
      : await gzipAsync(response.body, { level: 6 })
    headers['content-encoding'] = encoding
    delete headers['content-length']
    response.body = body as unknown as string
  })
})
