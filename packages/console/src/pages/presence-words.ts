// Presence in words and in time (docs/presence.md): why a device went offline, how long ago, and
// the uptime strip's stretches from a history of changes. Pure, for the console's unit tests.

export type PresenceState = 'online' | 'idle' | 'offline';

/** Each reason of the API for being offline, as a person would say it. */
export const reasonWords: Record<string, string> = {
  client_disconnect: 'disconnected by the device',
  keepalive_timeout: 'went silent (keep-alive or reporting interval passed)',
  connection_lost: 'connection lost',
  taken_over: 'connection taken over',
  kicked: 'cut off by an access change',
  revoked: 'certificate revoked',
  server_shutdown: 'server shut down',
};

/** A reason in words; one the console does not know yet reads as itself, with `_` as spaces. */
export function reasonText(reason: string | null | undefined): string {
  if (!reason) return '';
  return reasonWords[reason] ?? reason.replaceAll('_', ' ');
}

/** A length of time, in its largest units: `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`. */
export function durationText(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 24) return min % 60 ? `${h} h ${min % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

/** How long ago a time was, from `now` (ms): `for 12 min`; a time not known (never heard from) is ''. */
export function sinceText(since: string | null | undefined, now: number): string {
  if (!since) return '';
  return `for ${durationText(now - Date.parse(since))}`;
}

type Brief = { state: PresenceState; since: string | null; reason: string | null };

/** What follows the state: `for 3 min, connection lost`; `never seen` for a device never heard from. */
export function presenceDetail(p: Brief, now: number): string {
  if (p.state === 'offline' && !p.since) return 'never seen';
  const parts = [sinceText(p.since, now)];
  if (p.state === 'offline' && p.reason) parts.push(reasonText(p.reason));
  return parts.filter(Boolean).join(', ');
}

/** One line for a device's presence: `offline for 3 min, connection lost`; `offline, never seen` without a since. */
export function presenceLine(p: Brief, now: number): string {
  const detail = presenceDetail(p, now);
  return !detail ? p.state : detail.startsWith('for ') ? `${p.state} ${detail}` : `${p.state}, ${detail}`;
}

/** An uptime fraction (0 to 1) as a percentage with at most one decimal: `99.5 %`, `100 %`; never rounded to 0 or 100 when it is not. */
export function percentText(fraction: number): string {
  const f = Math.min(1, Math.max(0, fraction));
  const p = Math.round(f * 1000) / 10;
  if (p === 0 && f > 0) return '< 0.1 %';
  if (p === 100 && f < 1) return '> 99.9 %';
  return `${p} %`;
}

/** A stretch of the strip: a state from `start` to `end` (Unix ms), and its share of the strip (0 to 1). */
export interface Segment {
  state: PresenceState;
  start: number;
  end: number;
  share: number;
}

/**
 * The strip's stretches from GET …/presence/history: the state at `from` (`initial`), then each
 * change, up to `to` (or `now`, if earlier: the time still to come is not drawn). Changes outside
 * the range are ignored, neighbours in the same state merge, and an empty stretch is dropped.
 */
export function uptimeSegments(history: { initial: PresenceState; changes: { state: PresenceState; at: string }[] }, from: number, to: number, now = to): Segment[] {
  const end = Math.min(to, now);
  const length = to - from;
  if (!(length > 0) || end <= from) return [];
  const out: Segment[] = [];
  let state = history.initial;
  let start = from;
  const close = (at: number) => {
    if (at <= start) return;
    const last = out[out.length - 1];
    if (last && last.state === state && last.end === start) last.end = at;
    else out.push({ state, start, end: at, share: 0 });
  };
  for (const change of [...history.changes].sort((a, b) => Date.parse(a.at) - Date.parse(b.at))) {
    const at = Math.min(Math.max(Date.parse(change.at), from), end);
    close(at);
    start = Math.max(start, at);
    state = change.state;
  }
  close(end);
  for (const s of out) s.share = (s.end - s.start) / length;
  return out;
}

/** The strip's text alternative: each stretch's state and times, e.g. `online from 10:00 to 11:30`. */
export function segmentsText(segments: Segment[], time: (ms: number) => string): string {
  return segments.map((s) => `${s.state} from ${time(s.start)} to ${time(s.end)}`).join('; ');
}
