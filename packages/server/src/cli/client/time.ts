// Lifetimes and instants as people type them on a command line: `15m`, `30d`, or an ISO 8601 time.
import { InvalidArgumentError } from 'commander';

const unitSeconds: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `90s`, `15m`, `12h`, `30d`, or a bare number of seconds; undefined when it is none of those. */
export function parseSeconds(raw: string): number | undefined {
  const m = /^(\d+)([smhd]?)$/.exec(raw.trim());
  return m ? Number(m[1]) * unitSeconds[m[2] || 's']! : undefined;
}

/** An option's parser: a lifetime from `min` to `max` seconds, else commander's usage error (exit 2). */
export function lifetime(name: string, min: number, max: number, range: string) {
  return (raw: string): number => {
    const s = parseSeconds(raw);
    if (s === undefined) throw new InvalidArgumentError(`${name} is a lifetime such as 15m, 12h or 7d (or a number of seconds), from ${range}`);
    if (s < min || s > max) throw new InvalidArgumentError(`${name} is from ${range}`);
    return s;
  };
}

/**
 * A time for the platform (ISO 8601, UTC): an ISO 8601 date or time as it is, or a lifetime from
 * `now` (`30d` is thirty days from now), which is what "expiring before" is mostly asked with.
 */
export function parseInstant(raw: string, now: number): string | undefined {
  const ahead = parseSeconds(raw);
  if (ahead !== undefined && /[smhd]$/.test(raw.trim())) return new Date(now + ahead * 1000).toISOString();
  // a bare number is not taken for a date: Date.parse reads "2026" as a year
  if (!/^\d{4}-\d{2}-\d{2}/.test(raw.trim())) return undefined;
  const t = Date.parse(raw.trim());
  return Number.isNaN(t) ? undefined : new Date(t).toISOString();
}

export function instant(raw: string): string {
  const t = parseInstant(raw, Date.now());
  if (t === undefined) throw new InvalidArgumentError('the time is ISO 8601 (2027-01-31, 2027-01-31T12:00:00Z) or from now (12h, 30d)');
  return t;
}
