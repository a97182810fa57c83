/**
 * How long to wait before the next connection attempt: exponential growth from `minDelayMs` to
 * `maxDelayMs`, with random jitter so that a fleet that lost the platform at the same moment does
 * not come back at the same moment.
 */
export interface BackoffOptions {
  /** Delay before the first retry, ms (before jitter). */
  minDelayMs?: number;
  /** Longest delay, ms (before jitter). */
  maxDelayMs?: number;
  /** Growth per failed attempt. */
  factor?: number;
  /**
   * Share of the delay drawn at random, 0 to 1: the delay is uniform in
   * [base × (1 − jitter), base]. 0 waits exactly the base delay.
   */
  jitter?: number;
}

export const defaultBackoff: Required<BackoffOptions> = {
  minDelayMs: 500,
  maxDelayMs: 30_000,
  factor: 2,
  jitter: 0.5,
};

/** The settings with defaults filled in; throws a RangeError naming the bad one. */
export function resolveBackoff(options: BackoffOptions = {}): Required<BackoffOptions> {
  const b = { ...defaultBackoff, ...definedOnly(options) };
  if (!Number.isFinite(b.minDelayMs) || b.minDelayMs < 0) throw new RangeError(`reconnect.minDelayMs must be a number ≥ 0, got ${b.minDelayMs}`);
  if (!Number.isFinite(b.maxDelayMs) || b.maxDelayMs < b.minDelayMs) throw new RangeError(`reconnect.maxDelayMs must be a number ≥ minDelayMs (${b.minDelayMs}), got ${b.maxDelayMs}`);
  if (!Number.isFinite(b.factor) || b.factor < 1) throw new RangeError(`reconnect.factor must be a number ≥ 1, got ${b.factor}`);
  if (!Number.isFinite(b.jitter) || b.jitter < 0 || b.jitter > 1) throw new RangeError(`reconnect.jitter must be between 0 and 1, got ${b.jitter}`);
  return b;
}

/** The fields that are set: an option given as undefined leaves its default. */
export function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * The delay before retry number `attempt` (0 for the first retry after a failure).
 * @param random a number in [0, 1), `Math.random` unless a test fixes it
 */
export function backoffDelay(attempt: number, options: Required<BackoffOptions>, random: () => number = Math.random): number {
  // min × factor^attempt, capped at max (a power that overflows to Infinity is capped too)
  const base = Math.min(options.maxDelayMs, options.minDelayMs * options.factor ** Math.max(0, attempt));
  return Math.round(base * (1 - options.jitter * random()));
}
