import type { Clock } from '../core/clock.js';

/**
 * Fixed-window counters per key (an account, a client address), in memory and bounded: when
 * more than `maxKeys` keys are tracked the oldest windows are dropped first.
 */
export class WindowCounter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly clock: Clock,
    private readonly maxKeys = 100_000,
  ) {}

  /** Milliseconds until `key` may try again, or 0 when it is under the limit. */
  retryAfter(key: string): number {
    const w = this.windows.get(key);
    if (!w) return 0;
    const now = this.clock.now();
    if (now - w.start >= this.windowMs) {
      this.windows.delete(key);
      return 0;
    }
    return w.count >= this.limit ? w.start + this.windowMs - now : 0;
  }

  hit(key: string): void {
    const now = this.clock.now();
    const w = this.windows.get(key);
    if (!w || now - w.start >= this.windowMs) {
      this.windows.delete(key);
      this.windows.set(key, { start: now, count: 1 });
      if (this.windows.size > this.maxKeys) this.windows.delete(this.windows.keys().next().value!);
    } else {
      w.count++;
    }
  }

  reset(key: string): void {
    this.windows.delete(key);
  }
}

export interface LoginLimits {
  maxPerAccount: number;
  maxPerAddress: number;
  windowMs: number;
}

/** Login throttling: failed attempts per account, and all attempts per source address. */
export class LoginLimiter {
  private readonly accounts: WindowCounter;
  private readonly addresses: WindowCounter;

  constructor(limits: LoginLimits, clock: Clock) {
    this.accounts = new WindowCounter(limits.maxPerAccount, limits.windowMs, clock);
    this.addresses = new WindowCounter(limits.maxPerAddress, limits.windowMs, clock);
  }

  /** Milliseconds to wait before this attempt may be made, 0 when it may go ahead. Counts the attempt against the address. */
  check(account: string, address: string): number {
    const wait = Math.max(this.accounts.retryAfter(account), this.addresses.retryAfter(address));
    if (wait === 0) this.addresses.hit(address);
    return wait;
  }

  failed(account: string): void {
    this.accounts.hit(account);
  }

  succeeded(account: string): void {
    this.accounts.reset(account);
  }
}
