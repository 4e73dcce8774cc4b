/** What a guess at a one-time secret met; see {@link Store.guessSecret}. */
export interface SecretGuess {
  /** right or wrong: the guess was compared and counted; absent, used or void: refused without a comparison. */
  result: 'right' | 'wrong' | 'absent' | 'used' | 'void'
  /** Guesses compared against this secret so far, this one included. */
  guesses: number
  /** After a wrong guess, the misses counted at `missesKey` so far, this one included; otherwise 0. */
  misses: number
}

export interface GuessLimits {
  /** Compared guesses after which a secret is void. */
  maxGuesses: number
  /** A counter of wrong guesses that outlives the secret (across fresh ones); a right guess clears it. */
  missesKey: string
  /** The counter's window, from its first miss. */
  missesTtlMs: number
}

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
  /**
   * Stores a one-time secret by its digest (never the secret), pending with no guesses, replacing
   * whatever the key held. Only {@link Store.guessSecret} reads it.
   */
  setSecret(key: string, digest: string, ttlMs: number): Promise<void>
  /**
   * Checks a guess (its digest) in one atomic step: refuses, writing nothing, when the secret is
   * absent, used or void; otherwise counts the guess, compares, and marks the secret used on a
   * match or void at `maxGuesses`, and counts a miss at `missesKey`. However many callers race on
   * however many instances, at most `maxGuesses` guesses are ever compared against one secret.
   */
  guessSecret(key: string, digest: string, limits: GuessLimits): Promise<SecretGuess>
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
