/** Messages and events older than this are gone, whether or not the purge has run yet. */
export function retentionCutoff(retentionDays: number, now = Date.now()): Date {
  return new Date(now - retentionDays * 24 * 3600_000)
}
