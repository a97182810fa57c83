// The organization's fleet at a glance (docs/presence.md): its devices counted by presence, by
// enrolment state and by group (GET /orgs/{org}/fleet/summary), and the devices that went offline
// in the last hour and are still offline: the fleet events `device.disconnected` of the hour
// (GET /orgs/{org}/events), each device's presence read to keep only those still offline since.
//
// Live: read again every few seconds while the browser tab is visible.
import { Link } from 'wouter';
import { api } from '../api/client';
import type { Presence } from '../api/types';
import { useOrg } from '../app';
import { ErrorNote, formatTime, useDeviceNames, useLoad, useTitle } from '../ui';
import { useTick } from './presence';
import { reasonText, sinceText, type PresenceState } from './presence-words';

const overviewPollMs = 5000;
const hourMs = 3_600_000;
const eventsAsked = 200; // disconnections of the hour read (newest first); a fleet losing more shows the newest
const devicesAsked = 50; // of those, the devices whose presence is read (one request each, every few seconds)
const presenceStates: PresenceState[] = ['online', 'idle', 'offline'];
const enrolmentWords = { none: 'Not enrolled (no registration)', pending: 'Pending enrolment', enrolled: 'Enrolled', suspended: 'Suspended', revoked: 'Revoked' } as const;

/** The devices whose last disconnection of the hour left them offline, newest first. */
function useGoneOffline(orgId: string, now: number) {
  return useLoad(async () => {
    const since = now - hourMs;
    const events = await api.GET('/orgs/{org}/events', { params: { path: { org: orgId }, query: { type: 'device.disconnected', from: new Date(since).toISOString(), limit: eventsAsked } } });
    if (!events.data) return { error: events.error };
    const all = [...new Set(events.data.events.filter((e) => e.subject.kind === 'device' && e.subject.id).map((e) => e.subject.id!))];
    const ids = all.slice(0, devicesAsked);
    const found = await Promise.all(ids.map((id) => api.GET('/orgs/{org}/devices/{id}/presence', { params: { path: { org: orgId, id } } }).then((r) => r.data)));
    const gone = found.filter((p): p is Presence => p !== undefined && p.state === 'offline' && p.since !== null && Date.parse(p.since) >= since);
    gone.sort((a, b) => Date.parse(b.since!) - Date.parse(a.since!));
    return { data: { devices: gone, more: events.data.total > events.data.events.length || all.length > ids.length } };
  }, [orgId, now]);
}

export function FleetOverview() {
  const { org } = useOrg();
  const now = useTick(overviewPollMs);
  const summary = useLoad(() => api.GET('/orgs/{org}/fleet/summary', { params: { path: { org: org.id } } }), [org.id, now]);
  const gone = useGoneOffline(org.id, now);
  const names = useDeviceNames(org.id, gone.data?.devices.map((d) => d.device_id) ?? []);
  useTitle(`Overview · ${org.name}`);
  const s = summary.data;
  return (
    <>
      <h2>Fleet overview</h2>
      <ErrorNote error={summary.error} />
      {s && (
        <>
          <section aria-labelledby="by-presence">
            <h3 id="by-presence">
              By presence <span className="muted">({s.total} devices)</span>
            </h3>
            <ul className="counts" data-testid="presence-counts">
              {presenceStates.map((state) => (
                <li key={state} data-testid={`count-${state}`}>
                  <strong>{s.presence[state]}</strong>
                  <Link href={`/devices?presence=${state}`} aria-label={`${s.presence[state]} ${state}: list them`}>
                    <span className={`presence ${state}`}>{state}</span>
                  </Link>
                </li>
              ))}
            </ul>
          </section>
          <section aria-labelledby="gone-offline">
            <h3 id="gone-offline">Gone offline in the last hour</h3>
            <ErrorNote error={gone.error} />
            {gone.data && gone.data.devices.length === 0 && <p className="muted">No device went offline in the last hour (or each came back).</p>}
            {gone.data && gone.data.devices.length > 0 && (
              <div className="scroll">
                <table aria-label="Gone offline in the last hour">
                  <thead>
                    <tr>
                      <th>Device</th>
                      <th>Offline since</th>
                      <th>Reason</th>
                    </tr>
                  </thead>
                  <tbody>
                    {gone.data.devices.map((p) => (
                      <tr key={p.device_id}>
                        <td>
                          <Link href={`/devices/${p.device_id}?view=presence`}>{names.get(p.device_id) ?? p.device_id}</Link>
                        </td>
                        <td>
                          {formatTime(p.since!)} <span className="muted">({sinceText(p.since, now).replace(/^for /, '')} ago)</span>
                        </td>
                        <td>{reasonText(p.reason) || '—'}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
            {gone.data?.more && <p className="muted">More devices disconnected this hour than this list reads: the newest are shown.</p>}
          </section>
          <section aria-labelledby="by-enrolment">
            <h3 id="by-enrolment">By enrolment</h3>
            <ul className="counts" data-testid="enrolment-counts">
              {(Object.keys(enrolmentWords) as (keyof typeof enrolmentWords)[]).map((k) => (
                <li key={k} data-testid={`enrolment-${k}`}>
                  <strong>{s.enrolment[k]}</strong> {enrolmentWords[k]}
                </li>
              ))}
            </ul>
          </section>
          <section aria-labelledby="by-group">
            <h3 id="by-group">By group</h3>
            {s.groups.length === 0 ? (
              <p className="muted">No groups yet.</p>
            ) : (
              <div className="scroll">
                <table aria-label="Devices by group">
                  <thead>
                    <tr>
                      <th>Group</th>
                      <th>Devices</th>
                      <th>Online</th>
                      <th>Idle</th>
                      <th>Offline</th>
                    </tr>
                  </thead>
                  <tbody>
                    {s.groups.map((g) => (
                      <tr key={g.id}>
                        <td>
                          <Link href={`/devices?group=${g.id}`}>{g.name}</Link>
                        </td>
                        <td>{g.devices}</td>
                        <td>{g.online}</td>
                        <td>{g.idle}</td>
                        <td>{g.offline}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </section>
        </>
      )}
    </>
  );
}
