// The organization's fleet events and audit log (docs/events.md): the stored ones a page at a time
// (GET /orgs/{org}/events), and on the first page the ones that happen while it is open, over the
// WebSocket API (/ws/orgs/{org}/events) with the same filters, kept in the address as the other
// lists keep their view.
import { useEffect, useState, type FormEvent } from 'react';
import { Link, useLocation, useSearch } from 'wouter';
import { api, currentToken, renewSession } from '../api/client';
import type { paths } from '../api/schema';
import { useOrg } from '../app';
import { useSession } from '../session';
import { ErrorNote, formatTime, searchOf, useDeviceNames, useLoad, useTitle } from '../ui';
import { Pager, pageSize } from './pager';

type FleetEvent = paths['/orgs/{org}/events']['get']['responses'][200]['content']['application/json']['events'][number];

const sessionEnded = 4401; // docs/events.md: the login session of the socket's token ended
const keep = 200; // live events shown; older ones are on the stored pages
/** Filters people reach for; any type or prefix may be typed. */
const suggestions = ['device.*', 'device.created', 'device.enabled', 'device.disabled', 'device.deleted', 'device.connected', 'device.disconnected', 'device.enrolled', 'certificate.revoked', 'channel.*', 'group.*', 'connection.*', 'member.*', 'registration.*', 'twin.*', 'api.change'];

interface View {
  type: string;
  device: string;
  offset: number;
}

function readView(search: string): View {
  const q = new URLSearchParams(search);
  return { type: q.get('type') ?? '', device: q.get('device') ?? '', offset: Math.max(0, Number(q.get('offset')) || 0) };
}

/** Events as they happen, newest first, for as long as `on`. */
function useLiveEvents(orgId: string, view: View, on: boolean): { events: FleetEvent[]; state: 'connecting' | 'live' | 'closed'; reason: string | undefined } {
  const [events, setEvents] = useState<FleetEvent[]>([]);
  const [state, setState] = useState<'connecting' | 'live' | 'closed'>('connecting');
  const [reason, setReason] = useState<string>();
  useEffect(() => {
    setEvents([]);
    if (!on) return;
    let socket: WebSocket | undefined;
    let stopped = false;
    let retried = false;
    const open = () => {
      const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
      const query = new URLSearchParams({ token: currentToken() ?? '', ...(view.type ? { type: view.type } : {}), ...(view.device ? { device: view.device } : {}) });
      socket = new WebSocket(`${scheme}://${window.location.host}/ws/orgs/${encodeURIComponent(orgId)}/events?${query}`);
      setState('connecting');
      socket.onopen = () => {
        retried = false;
        setState('live');
        setReason(undefined);
      };
      socket.onmessage = (message) => setEvents((list) => [JSON.parse(String(message.data)) as FleetEvent, ...list].slice(0, keep));
      socket.onclose = (event) => {
        if (stopped) return;
        setState('closed');
        setReason(event.reason || `closed (${event.code})`);
        // the token's session ended, or the upgrade was refused (an expired token): renew and open again, once
        if (retried || (event.code !== sessionEnded && event.code !== 1006)) return;
        retried = true;
        void renewSession().then((ok) => ok && !stopped && open());
      };
    };
    open();
    return () => {
      stopped = true;
      socket?.close(1000);
    };
  }, [orgId, view.type, view.device, on]);
  return { events, state, reason };
}

/** An id shortened to its end: UUID v7s of one moment share their beginning (the time). */
const short = (id: string) => `…${id.slice(-8)}`;

/** Who did it, in words. */
function actorWords(e: FleetEvent, me: string | undefined): string {
  if (e.actor.kind === 'system') return 'the platform';
  if (!e.actor.id) return e.actor.kind;
  return e.actor.kind === 'user' && e.actor.id === me ? 'you' : `${e.actor.kind} ${short(e.actor.id)}`;
}

/** What it is about: a link to a device (by its name), channel or group page, the kind and id otherwise. */
function SubjectLink({ e, names }: { e: FleetEvent; names: Map<string, string> }) {
  const pages: Record<string, string> = { device: 'devices', channel: 'channels', group: 'groups' };
  const page = pages[e.subject.kind];
  const name = e.subject.kind === 'device' ? names.get(e.subject.id) : undefined;
  const text = name ? `device ${name}` : `${e.subject.kind} ${short(e.subject.id)}`;
  if (!page || e.type.endsWith('.deleted')) return <span title={e.subject.id}>{text}</span>;
  return (
    <Link href={`/${page}/${e.subject.id}`} title={e.subject.id}>
      {text}
    </Link>
  );
}

function detail(e: FleetEvent): string {
  const { method, route, status, request_id: _request, ...rest } = e.data as Record<string, unknown>;
  const call = method !== undefined ? `${String(method)} ${String(route)} → ${String(status)}` : '';
  const facts = Object.entries(rest).map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return [call, ...facts].filter(Boolean).join(' · ');
}

function EventRow({ e, live, names, me }: { e: FleetEvent; live?: boolean; names: Map<string, string>; me: string | undefined }) {
  return (
    <tr className={live ? 'fresh' : undefined}>
      <td className="nowrap">{formatTime(e.time)}</td>
      <td data-testid="fleet-event">{e.type}</td>
      <td>
        <SubjectLink e={e} names={names} />
      </td>
      <td className="optional">{actorWords(e, me)}</td>
      <td className="reason">{detail(e)}</td>
    </tr>
  );
}

export function FleetEvents() {
  const { org } = useOrg();
  const search = useSearch();
  const [, navigate] = useLocation();
  const view = readView(search);
  const show = (change: Partial<View>) => navigate(`/events${searchOf({ ...view, offset: 0, ...change })}`);
  const stored = useLoad(
    () => api.GET('/orgs/{org}/events', { params: { path: { org: org.id }, query: { offset: view.offset, limit: pageSize, ...(view.type ? { type: view.type } : {}), ...(view.device ? { device: view.device } : {}) } } }),
    [org.id, search],
  );
  // live on the first page only: later pages are history
  const live = useLiveEvents(org.id, view, view.offset === 0 && !stored.error);
  useTitle(`Events · ${org.name}`);
  const { user } = useSession();
  const names = useDeviceNames(org.id, (stored.data?.events ?? []).filter((e) => e.subject.kind === 'device').map((e) => e.subject.id));

  function applyFilters(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const fields = new FormData(e.currentTarget);
    show({ type: String(fields.get('type') ?? '').trim(), device: String(fields.get('device') ?? '').trim() });
  }

  // an event both seen live and on the page (stored meanwhile, the page reloaded) is shown once
  const liveIds = new Set(live.events.map((e) => e.id));
  const total = stored.data?.total ?? 0;
  return (
    <>
      <h2>Events</h2>
      <p className="muted">What happened in the organization, newest first: every change made through the API with who made it, and the devices&apos; lifecycle.</p>
      <form role="search" aria-label="Filter events" className="toolbar filters" onSubmit={applyFilters} key={search}>
        <label>
          Type
          <input name="type" defaultValue={view.type} list="event-types" placeholder="device.*" />
          <datalist id="event-types">
            {suggestions.map((s) => (
              <option key={s} value={s} />
            ))}
          </datalist>
        </label>
        <label>
          Device id
          <input name="device" defaultValue={view.device} placeholder="any" />
        </label>
        <button type="submit" className="secondary">
          Filter
        </button>
      </form>
      <ErrorNote error={stored.error} />
      {view.offset === 0 && !stored.error && (
        <p className="muted" data-testid="live-state">
          {live.state === 'live' ? 'Live: new events appear at the top.' : live.state === 'connecting' ? 'Connecting…' : `Not live: ${live.reason ?? 'closed'}`}
        </p>
      )}
      {stored.data && (
        <>
          <div className="scroll">
            <table aria-label="Events" className="fleet">
              <thead>
                <tr>
                  <th>Time</th>
                  <th>Type</th>
                  <th>About</th>
                  <th className="optional">By</th>
                  <th>Detail</th>
                </tr>
              </thead>
              <tbody>
                {live.events.map((e) => (
                  <EventRow key={e.id} e={e} live names={names} me={user?.id} />
                ))}
                {stored.data.events.filter((e) => !liveIds.has(e.id)).map((e) => (
                  <EventRow key={e.id} e={e} names={names} me={user?.id} />
                ))}
              </tbody>
            </table>
          </div>
          {total === 0 && live.events.length === 0 && <p className="muted">No event matches.</p>}
          <Pager offset={view.offset} total={total} onChange={(offset) => show({ offset })} label="events" always />
        </>
      )}
    </>
  );
}
