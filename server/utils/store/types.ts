/**
 * Short-lived shared state: sessions, sign-in codes, throttles, presence, typing.
 * Keys are plain strings; the implementation adds its own namespace.
 */
export interface Store {
  readonly mode: 'redis' | 'in-process'
  get(key: string): Promise<string | null>
  /** Stores a value; with ttlMs it disappears after that many milliseconds. */
  set(key: string, value: string, ttlMs?: number): Promise<void>
  /** Stores the value only when the key is absent; true when this call stored it. */
  setIfAbsent(key: string, value: string, ttlMs?: number): Promise<boolean>
  /**
   * Overwrites an existing key, keeping its TTL, and returns what it held, in one atomic step:
   * of racing callers exactly one sees the original value. Does nothing to a missing key (null).
   */
  swap(key: string, value: string): Promise<string | null>
  /** Adds one; the TTL is set when the increment creates the key, so a window starts at its first hit. */
  increment(key: string, ttlMs?: number): Promise<number>
  /**
   * A token bucket, checked and spent in one atomic step: up to `burst` at once, refilled at
   * `perSecond`. Spends `cost` tokens and answers allowed, or spends nothing and answers how long
   * until that many are there. The limit holds across every instance sharing the store.
   */
  takeTokens(key: string, perSecond: number, burst: number, cost?: number): Promise<{ allowed: boolean, retryAfterMs: number }>
  delete(...keys: string[]): Promise<void>
  /** Milliseconds left, -1 for no expiry, -2 when the key does not exist. */
  ttl(key: string): Promise<number>
  expire(key: string, ttlMs: number): Promise<boolean>
  /** Sorted sets (presence expiries): with onlyIfGreater an existing score only ever grows. */
  scoreAdd(key: string, member: string, score: number, onlyIfGreater?: boolean): Promise<void>
  /** True when this call removed the member: of racing callers, exactly one wins. */
  scoreRemove(key: string, member: string): Promise<boolean>
  /** Members with min <= score <= max, lowest score first. */
  scoreRange(key: string, min: number, max: number, limit?: number): Promise<string[]>
  scoreOf(key: string, member: string): Promise<number | null>
  publish(channel: string, message: string): Promise<void>
  /** Resolves once the subscription is live; the returned function ends it. */
  subscribe(channel: string, listener: (message: string) => void): Promise<() => Promise<void>>
  ping(): Promise<void>
  close(): Promise<void>
}
