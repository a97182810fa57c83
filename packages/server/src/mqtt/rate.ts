/**
 * Token buckets by key: `perSecond` tokens a second, at most `burst` saved up. For per-client
 * publish rates and per-address connect rates. Bounded: past `maxKeys` the buckets that are full
 * again are forgotten first, then all of them.
 */
export class TokenBuckets<K> {
  private readonly buckets = new Map<K, { tokens: number; at: number }>();

  constructor(
    readonly perSecond: number,
    readonly burst: number,
    private readonly maxKeys = 100_000,
  ) {}

  /** Takes one token at `now` (Unix ms, from the broker's clock); false when the key has none left. A rate of 0 always allows. */
  take(key: K, now: number): boolean {
    if (this.perSecond <= 0) return true;
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) this.prune(now);
      b = { tokens: this.burst, at: now };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  delete(key: K): void {
    this.buckets.delete(key);
  }

  /** Forgets buckets that have filled up again (they behave as new ones). */
  prune(now: number): void {
    for (const [k, b] of this.buckets) if (b.tokens + ((now - b.at) / 1000) * this.perSecond >= this.burst) this.buckets.delete(k);
    if (this.buckets.size >= this.maxKeys) this.buckets.clear();
  }

  get size(): number {
    return this.buckets.size;
  }
}
