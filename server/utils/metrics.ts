import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'

export const metrics = new Registry()
collectDefaultMetrics({ register: metrics })

const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

export const signInCodesSent = new Counter({ name: 'natter_signin_codes_sent_total', help: 'Sign-in codes handed to the mail server', registers: [metrics] })
export const signInCodesFailed = new Counter({ name: 'natter_signin_codes_failed_total', help: 'Sign-in code mails that failed to send', registers: [metrics] })
export const openSockets = new Gauge({ name: 'natter_open_sockets', help: 'WebSocket connections open on this instance', registers: [metrics] })
export const messagesAccepted = new Counter({ name: 'natter_messages_accepted_total', help: 'chat.send frames accepted onto the bus', registers: [metrics] })
export const messagesPersisted = new Counter({ name: 'natter_messages_persisted_total', help: 'Messages newly stored by the persister', registers: [metrics] })
export const messagesDelivered = new Counter({ name: 'natter_messages_delivered_total', help: 'chat.receive frames written to sockets', registers: [metrics] })
export const rateLimited = new Counter({ name: 'natter_rate_limited_total', help: 'Frames or requests refused by a rate limit', labelNames: ['what'] as const, registers: [metrics] })
export const sendToPersist = new Histogram({ name: 'natter_send_to_persist_seconds', help: 'From chat.send at the gateway to the committed row', buckets: latencyBuckets, registers: [metrics] })
export const sendToDeliver = new Histogram({ name: 'natter_send_to_deliver_seconds', help: 'From chat.send at the gateway to chat.receive written to a socket', buckets: latencyBuckets, registers: [metrics] })
let lagSource: (() => Promise<number>) | undefined
/** The persister group's lag, asked of the bus when Prometheus scrapes. */
export function measureBusLag(source: () => Promise<number>) {
  lagSource = source
}
export const busLag = new Gauge({
  name: 'natter_bus_consumer_lag',
  help: 'Messages on the bus not yet committed by the persister group',
  registers: [metrics],
  async collect() {
    if (!lagSource) return
    try {
      this.set(await lagSource())
    }
    catch {
      // The bus is down: readiness says so; the gauge keeps its last value.
    }
  }
})
export const httpDuration = new Histogram({
  name: 'natter_http_request_duration_seconds',
  help: 'HTTP request durations by route and status',
  labelNames: ['route', 'method', 'status'] as const,
  buckets: latencyBuckets,
  registers: [metrics]
})
