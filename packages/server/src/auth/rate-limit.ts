import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Clock } from '../core/clock.js';
import type { Database } from '../db/index.js';

export interface LoginLimits {
  maxPerAccount: number;
  maxPerAddress: number;
  windowMs: number;
}

/** Expired windows are deleted after this many attempts counted by one process. */
const purgeEvery = 1000;

/**
 * Login throttling: attempts per account that did not succeed, and all attempts per source
 * address, in fixed windows. The counters live in the database (`login_windows`), so that every
 * process sharing it enforces one limit: N processes behind a load balancer do not allow N times
 * the attempts.
 *
 * An attempt is counted before its password is checked, with one atomic statement that also
 * returns the new count: concurrent attempts, on one process or many, cannot all pass the check
 * before any failure is recorded. A login that succeeds clears its account's window.
 */
export class LoginLimiter {
  private counted = 0;

  constructor(
    private readonly db: Database,
    private readonly limits: LoginLimits,
    private readonly clock: Clock,
    /** Keeps the counters of another use (enrolment attempts) apart from the logins'. */
    private readonly scope = '',
  ) {}

  /**
   * Counts this attempt against the address, then (when the address is under its limit) against
   * the account. Resolves to the milliseconds to wait before trying again, 0 when it may go ahead.
   */
  async check(account: string, address: string): Promise<number> {
    const now = this.clock.now();
    const byAddress = await this.hit(windowKey('address', address, this.scope), now);
    if (byAddress.count > this.limits.maxPerAddress) return byAddress.start + this.limits.windowMs - now;
    const byAccount = await this.hit(windowKey('account', account, this.scope), now);
    if (byAccount.count > this.limits.maxPerAccount) return byAccount.start + this.limits.windowMs - now;
    return 0;
  }

  /** Counts this attempt against the address only; the milliseconds to wait, 0 when it may go ahead. */
  async checkAddress(address: string): Promise<number> {
    const now = this.clock.now();
    const byAddress = await this.hit(windowKey('address', address, this.scope), now);
    return byAddress.count > this.limits.maxPerAddress ? byAddress.start + this.limits.windowMs - now : 0;
  }

  /** The attempt succeeded: the account's failures are forgiven. */
  async succeeded(account: string): Promise<void> {
    await this.db.kysely.deleteFrom('login_windows').where('key', '=', windowKey('account', account, this.scope)).execute();
  }

  /** Adds one to the key's window, starting a new window when the last one has passed; returns the window. */
  private async hit(key: string, now: number): Promise<{ start: number; count: number }> {
    const expired = now - this.limits.windowMs;
    const row = await this.db.kysely
      .insertInto('login_windows')
      .values({ key, window_start: now, count: 1 })
      .onConflict((oc) =>
        oc.column('key').doUpdateSet({
          window_start: sql<number>`CASE WHEN login_windows.window_start <= ${expired} THEN ${now} ELSE login_windows.window_start END`,
          count: sql<number>`CASE WHEN login_windows.window_start <= ${expired} THEN 1 ELSE login_windows.count + 1 END`,
        }),
      )
      .returning(['window_start', 'count'])
      .executeTakeFirstOrThrow();
    if (++this.counted % purgeEvery === 0) await this.db.kysely.deleteFrom('login_windows').where('window_start', '<=', expired).execute();
    // PostgreSQL's BIGINT arrives as a string
    return { start: Number(row.window_start), count: Number(row.count) };
  }
}

/**
 * The row key of a counter: a digest, so that the table holds neither the email addresses people
 * tried nor their IP addresses, and every key has the same size.
 */
function windowKey(kind: 'account' | 'address', value: string, scope: string): string {
  return createHash('sha256').update(scope ? `${scope}\0${kind}\0${value}` : `${kind}\0${value}`).digest('base64url');
}

/** What a limiter of attempts per address answers: the milliseconds to wait, 0 when the attempt may go ahead. */
export interface AddressLimit {
  checkAddress(address: string): Promise<number>;
}

/**
 * Attempts per source address in fixed windows, counted in this process's memory: a shield for work
 * a flood would make (enrolments verify and sign), not a guard of secrets (an enrolment token has
 * 256 random bits). N processes allow N times the attempts, each no more than it can take; a
 * database row per attempt would cost more than half of an enrolment's database time. At most
 * `maxAddresses` windows are kept: when full, the expired go, then the oldest.
 */
export class MemoryAddressLimiter implements AddressLimit {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly limits: { maxPerAddress: number; windowMs: number },
    private readonly clock: Clock,
    private readonly maxAddresses = 100_000,
  ) {}

  async checkAddress(address: string): Promise<number> {
    const now = this.clock.now();
    let w = this.windows.get(address);
    if (!w || w.start <= now - this.limits.windowMs) {
      if (w) this.windows.delete(address); // re-inserted: the map stays in order of window start
      w = { start: now, count: 0 };
      if (this.windows.size >= this.maxAddresses) this.makeRoom(now);
      this.windows.set(address, w);
    }
    w.count++;
    return w.count > this.limits.maxPerAddress ? w.start + this.limits.windowMs - now : 0;
  }

  private makeRoom(now: number): void {
    // in order of window start: the expired are at the front
    for (const [key, w] of this.windows) {
      if (w.start > now - this.limits.windowMs) break;
      this.windows.delete(key);
    }
    if (this.windows.size >= this.maxAddresses) this.windows.delete(this.windows.keys().next().value!);
  }
}
