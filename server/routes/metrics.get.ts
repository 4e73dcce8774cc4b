import { setResponseHeader } from 'h3'

// Prometheus text format, for a scraper inside the cluster or one holding NATTER_METRICS_TOKEN.
// A request that carries any proxy header (X-Forwarded-For, X-Real-IP, Forwarded, ...) came
// through an ingress and is never "internal" (server/utils/http.ts `isOperator`).
export default defineEventHandler(async (event) => {
  if (!isOperator(event)) throw fail(403, 'forbidden', 'Metrics are served to the cluster or with NATTER_METRICS_TOKEN.')
  setResponseHeader(event, 'Content-Type', metrics.contentType)
  return metrics.metrics()
})
