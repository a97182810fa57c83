// A device's presence (docs/presence.md): the badge the device list and the device page show, the
// uptime strip, and the Presence tab of the device page: state, since, last seen, protocol, node,
// the reason in words, the reporting interval (set by `devices:write`), its live connections, and
// its uptime over the last 24 hours and 7 days.
//
// Live: the tab reads the presence and the history again every few seconds while the browser tab
// is visible, as the twin tab does.
import { useEffect, useState, type FormEvent } from 'react';
import { api, problemText } from '../api/client';
import type { Presence, PresenceHistory } from '../api/types';
import { useOrg } from '../app';
import { ErrorNote, formatTime, useLoad } from '../ui';
import { durationText, percentText, presenceDetail, reasonText, segmentsText, uptimeSegments, type PresenceState } from './presence-words';

export const presencePollMs = 3000; // how often an open page reads presence again
const hourMs = 3_600_000;
const ranges = [
  { key: '24h', label: 'the last 24 hours', ms: 24 * hourMs },
  { key: '7d', label: 'the last 7 days', ms: 7 * 24 * hourMs },
] as const;

/** The time now, moved on every `everyMs` while the page is visible (for "for 3 min" and polling). */
export function useTick(everyMs = presencePollMs): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => {
      if (!document.hidden) setNow(Date.now());
    }, everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}

/** A device's presence in one line: the state as a badge, then how long and, offline, why. */
export function PresenceBadge({ presence, now, testId }: { presence: { state: PresenceState; since: string | null; reason: string | null }; now: number; testId?: string }) {
  const rest = presenceDetail(presence, now);
  return (
    <span className="presence-line" data-testid={testId}>
      <span className={`presence ${presence.state}`}>{presence.state}</span>
      {rest && <span className="muted"> {rest}</span>}
    </span>
  );
}

/** The uptime strip of one range: a bar coloured by state over time, the uptime percentage, and the same in words. */
export function UptimeStrip({ history, from, to, now, label }: { history: PresenceHistory; from: number; to: number; now: number; label: string }) {
  const segments = uptimeSegments(history, from, to, now);
  const words = segmentsText(segments, (ms) => new Date(ms).toLocaleString());
  const uptime = percentText(history.uptime_fraction);
  return (
    <figure className="uptime" aria-label={`Uptime over ${label}`} data-testid="uptime">
      <figcaption>
        <strong data-testid="uptime-percent">{uptime}</strong> up over {label}
        {history.truncated && <span className="muted"> (more changes than one answer holds: the strip shows the first 1000)</span>}
      </figcaption>
      <div className="strip" role="img" aria-label={`Presence over ${label}: ${words || 'nothing recorded'}`}>
        {segments.map((s) => (
          <span key={s.start} className={`segment ${s.state}`} style={{ width: `${s.share * 100}%` }} title={`${s.state}, ${formatTime(new Date(s.start).toISOString())} – ${formatTime(new Date(s.end).toISOString())} (${durationText(s.end - s.start)})`} data-state={s.state} />
        ))}
      </div>
      <div className="strip-ends muted" aria-hidden="true">
        <span>{new Date(from).toLocaleString()}</span>
        <span>now</span>
      </div>
      <details>
        <summary>The changes in words</summary>
        {segments.length === 0 ? (
          <p className="muted">Nothing recorded in this range.</p>
        ) : (
          <ul data-testid="uptime-words">
            {segments.map((s) => (
              <li key={s.start}>
                {s.state} from {new Date(s.start).toLocaleString()} to {new Date(s.end).toLocaleString()} ({durationText(s.end - s.start)})
              </li>
            ))}
          </ul>
        )}
      </details>
    </figure>
  );
}

const legend: PresenceState[] = ['online', 'idle', 'offline'];

/** The Presence tab of the device page. */
export function DevicePresence({ deviceId }: { deviceId: string }) {
  const { org, canEdit } = useOrg();
  const now = useTick();
  const path = { org: org.id, id: deviceId };
  const presence = useLoad(() => api.GET('/orgs/{org}/devices/{id}/presence', { params: { path } }), [org.id, deviceId, now]);
  // the history is asked for the range ending now; each tick asks again (one request per range)
  const histories = useLoad(async () => {
    const answers = await Promise.all(ranges.map((r) => api.GET('/orgs/{org}/devices/{id}/presence/history', { params: { path, query: { from: new Date(now - r.ms).toISOString(), to: new Date(now).toISOString() } } })));
    const failed = answers.find((a) => a.error);
    return failed ? { error: failed.error } : { data: answers.map((a) => a.data!) };
  }, [org.id, deviceId, now]);
  const p = presence.data;
  return (
    <section aria-label="Presence">
      <h3>Presence</h3>
      <ErrorNote error={presence.error} />
      {p && (
        <>
          <dl className="facts">
            <dt>State</dt>
            <dd>
              <PresenceBadge presence={p} now={now} testId="device-presence" />
            </dd>
            <dt>Since</dt>
            <dd>{p.since ? formatTime(p.since) : 'never seen'}</dd>
            <dt>Last seen</dt>
            <dd>{p.last_seen ? formatTime(p.last_seen) : '—'}</dd>
            <dt>Protocol</dt>
            <dd>{p.protocol ?? '—'}</dd>
            <dt>Node</dt>
            <dd>{p.node ? <code>{p.node}</code> : '—'}</dd>
            {p.state === 'offline' && (
              <>
                <dt>Reason</dt>
                <dd data-testid="presence-reason">{p.reason ? reasonText(p.reason) : '—'}</dd>
              </>
            )}
            <dt>Reporting interval</dt>
            <dd data-testid="presence-interval">{p.interval ? `${durationText(p.interval * 1000)} (${p.interval} s)` : 'the platform default'}</dd>
            {p.expires_at && (
              <>
                <dt>Offline if silent until</dt>
                <dd>{formatTime(p.expires_at)}</dd>
              </>
            )}
          </dl>
          {canEdit && <IntervalForm deviceId={deviceId} presence={p} onSaved={presence.reload} />}
          <Connections presence={p} />
        </>
      )}
      <h3>Uptime</h3>
      <p className="legend muted" aria-hidden="true">
        {legend.map((s) => (
          <span key={s}>
            <span className={`swatch ${s}`} /> {s}
          </span>
        ))}
      </p>
      <ErrorNote error={histories.error} />
      {histories.data?.map((h, i) => (
        <UptimeStrip key={ranges[i]!.key} history={h} from={Date.parse(h.from)} to={Date.parse(h.to)} now={now} label={ranges[i]!.label} />
      ))}
    </section>
  );
}

/** The device's live MQTT connections (any client id, any node). */
function Connections({ presence }: { presence: Presence }) {
  return (
    <>
      <h3>Live connections</h3>
      {presence.connections.length === 0 ? (
        <p className="muted">No connection open.</p>
      ) : (
        <div className="scroll">
          <table aria-label="Live connections">
            <thead>
              <tr>
                <th>Client id</th>
                <th>Node</th>
                <th>Protocol</th>
                <th>Since</th>
              </tr>
            </thead>
            <tbody>
              {presence.connections.map((c) => (
                <tr key={`${c.node}/${c.client_id}`}>
                  <td>
                    <code>{c.client_id}</code>
                  </td>
                  <td>{c.node}</td>
                  <td>{c.protocol}</td>
                  <td>{formatTime(c.since)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

/** `devices:write`: gives the device its reporting interval (seconds), or takes it back to the default. */
function IntervalForm({ deviceId, presence, onSaved }: { deviceId: string; presence: Presence; onSaved(): void }) {
  const { org } = useOrg();
  const [problem, setProblem] = useState<string>();
  const [saved, setSaved] = useState(false);

  async function put(interval: number | null) {
    const { error } = await api.PUT('/orgs/{org}/devices/{id}/presence', { params: { path: { org: org.id, id: deviceId } }, body: { interval } });
    setProblem(error ? problemText(error) : undefined);
    setSaved(!error);
    if (!error) onSaved();
  }

  function save(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const text = String(new FormData(e.currentTarget).get('interval') ?? '').trim();
    const seconds = Number(text);
    if (!/^\d+$/.test(text) || seconds < 1 || seconds > 604_800) return setProblem('The interval is a whole number of seconds, 1 to 604800 (7 days).');
    void put(seconds);
  }

  return (
    <form className="card inline" aria-label="Reporting interval" onSubmit={save} key={presence.interval ?? 'default'}>
      <label>
        Reporting interval (seconds)
        <input name="interval" inputMode="numeric" defaultValue={presence.interval ?? ''} placeholder="e.g. 300" onChange={() => setSaved(false)} />
      </label>
      <button type="submit">Set interval</button>
      {presence.interval !== null && (
        <button type="button" className="secondary" onClick={() => void put(null)}>
          Use the default
        </button>
      )}
      {saved && (
        <span role="status" className="muted">
          Saved.
        </span>
      )}
      <ErrorNote error={problem} />
    </form>
  );
}
