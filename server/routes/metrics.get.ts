import { timingSafeEqual } from 'node:crypto'
import { getRequestHeader, setResponseHeader } from 'h3'

// Private and loopback ranges: where a cluster's Prometheus scrapes from.
const INTERNAL = /^(?:::ffff:)?(?:127\.|10\.|192\.168\.|172\.(?:1[6-9]|2\d|3[01])\.)|^(?:::1|f[cd][0-9a-f]{2}:)/i

// Prometheus text format, for a scraper inside the cluster or one holding NATTER_METRICS_TOKEN.
// A request that came through the ingress carries X-Forwarded-For and is never "internal".
export default defineEventHandler(async (event) => {
  const { metricsToken } = useConfig()
  const given = getRequestHeader(event, 'authorization')?.replace(/^Bearer\s+/i, '') ?? ''
  const tokenOk = !!metricsToken && given.length === metricsToken.length && timingSafeEqual(Buffer.from(given), Buffer.from(metricsToken))
  const internal = INTERNAL.test(event.node.req.socket.remoteAddress ?? '') && !getRequestHeader(event, 'x-forwarded-for')
  if (!tokenOk && !internal) throw fail(403, 'forbidden', 'Metrics are served to the cluster or with NATTER_METRICS_TOKEN.')
  setResponseHeader(event, 'Content-Type', metrics.contentType)
  return metrics.metrics()
})
