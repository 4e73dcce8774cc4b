// The server's own view, from its Prometheus endpoint (open to loopback): where the time goes
// inside the pipeline, and how late its event loop ran.

export interface ServerMetrics {
  accepted: number
  persisted: number
  delivered: number
  rateLimited: number
  /** Upper bounds of the histogram buckets holding p50 / p99 (the buckets are coarse). */
  sendToPersist: { count: number, p50: string, p99: string }
  sendToDeliver: { count: number, p50: string, p99: string }
  /** Since the previous scrape: prom-client resets its event-loop histogram on every scrape. */
  eventLoopLagMs: { p50: number, p99: number, max: number }
  gcSeconds: number
}

type Sample = { name: string, labels: string, value: number }

function parse(text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue
    const match = /^([\w:]+)(\{[^}]*\})?\s+(\S+)/.exec(line)
    if (match) samples.push({ name: match[1]!, labels: match[2] ?? '', value: Number(match[3]) })
  }
  return samples
}

const sum = (samples: Sample[], name: string) => samples.filter(s => s.name === name).reduce((total, s) => total + s.value, 0)

function quantiles(samples: Sample[], name: string, before?: Sample[]) {
  const buckets = samples.filter(s => s.name === `${name}_bucket`).map(s => ({ le: /le="([^"]+)"/.exec(s.labels)![1]!, count: s.value - (before?.find(b => b.name === s.name && b.labels === s.labels)?.value ?? 0) }))
  const count = buckets.find(b => b.le === '+Inf')?.count ?? 0
  const at = (q: number) => {
    const found = buckets.find(b => b.count >= q * count)
    if (!found) return '–'
    return found.le === '+Inf' ? `> ${buckets[buckets.length - 2]?.le ?? '?'} s` : `≤ ${Number(found.le) * 1000} ms`
  }
  return { count, p50: count ? at(0.5) : '–', p99: count ? at(0.99) : '–' }
}

export async function scrape(url: string): Promise<Sample[]> {
  const response = await fetch(`${url}/metrics`)
  if (!response.ok) return []
  return parse(await response.text())
}

/** The difference between two scrapes of one server. */
export function difference(before: Sample[], after: Sample[]): ServerMetrics {
  const delta = (name: string) => sum(after, name) - sum(before, name)
  const lag = (name: string) => Math.round(sum(after, name) * 1e5) / 100
  return {
    accepted: delta('natter_messages_accepted_total'),
    persisted: delta('natter_messages_persisted_total'),
    delivered: delta('natter_messages_delivered_total'),
    rateLimited: delta('natter_rate_limited_total'),
    sendToPersist: quantiles(after, 'natter_send_to_persist_seconds', before),
    sendToDeliver: quantiles(after, 'natter_send_to_deliver_seconds', before),
    eventLoopLagMs: { p50: lag('nodejs_eventloop_lag_p50_seconds'), p99: lag('nodejs_eventloop_lag_p99_seconds'), max: lag('nodejs_eventloop_lag_max_seconds') },
    gcSeconds: Math.round((sum(after, 'nodejs_gc_duration_seconds_sum') - sum(before, 'nodejs_gc_duration_seconds_sum')) * 100) / 100
  }
}
