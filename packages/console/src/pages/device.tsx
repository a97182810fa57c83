// A device: its details, its status and secret, its tags and metadata (edited in place), the
// channels it is connected to (connect and disconnect here), the groups it belongs to and, once it
// enrolled, its certificates; its twins on a tab of their own (device-twin.tsx, `?view=twin`), and
// its presence with the uptime strip on another (presence.tsx, `?view=presence`).
import { lazy, Suspense, useState, type FormEvent } from 'react';
import { Link, useParams, useSearch } from 'wouter';
import { api, problemText } from '../api/client';
import type { Device } from '../api/types';
import { useOrg } from '../app';
import { ConnectionTypeChoices, ErrorNote, SecretOnce, formatTime, useLoad, useTitle } from '../ui';
import { DeviceCertificates } from './device-certificates';
import { DevicePresence, PresenceBadge, useTick } from './presence';

// loaded when first shown, as a channel's data views are
const DeviceTwin = lazy(() => import('./device-twin').then((m) => ({ default: m.DeviceTwin })));

type View = 'details' | 'twin' | 'presence';
const views: readonly View[] = ['details', 'twin', 'presence'];

export function DevicePage() {
  const { org, canEdit } = useOrg();
  const { id } = useParams<{ id: string }>();
  const asked = new URLSearchParams(useSearch()).get('view') as View | null;
  const view: View = asked && views.includes(asked) ? asked : 'details';
  const path = { org: org.id, id };
  const device = useLoad(() => api.GET('/orgs/{org}/devices/{id}', { params: { path } }), [org.id, id]);
  const [secret, setSecret] = useState<string>();
  const [error, setError] = useState<string>();
  useTitle(device.data ? `${device.data.name} · ${org.name}` : undefined);

  async function setStatus(enable: boolean) {
    const { error: problem } = enable ? await api.POST('/orgs/{org}/devices/{id}/enable', { params: { path } }) : await api.POST('/orgs/{org}/devices/{id}/disable', { params: { path } });
    setError(problem ? problemText(problem) : undefined);
    device.reload();
  }

  async function rotate() {
    if (!window.confirm('Rotate the secret? The current one stops working at once, and the device is disconnected.')) return;
    const { data, error: problem } = await api.POST('/orgs/{org}/devices/{id}/secret', { params: { path } });
    if (problem) return setError(problemText(problem));
    setError(undefined);
    setSecret(data.secret);
  }

  const d = device.data;
  return (
    <>
      <p>
        <Link href="/devices">← Devices</Link>
      </p>
      <ErrorNote error={device.error} />
      {d && (
        <>
          <h2>{d.name}</h2>
          <p>
            <Link href={`/devices/${d.id}/connect`}>Connect</Link>: the commands that send its first message, with this platform's addresses.
          </p>
          <dl className="facts">
            <dt>Id</dt>
            <dd>
              <code>{d.id}</code>
            </dd>
            <dt>Status</dt>
            <dd>
              <span className={`status ${d.status}`} data-testid="device-status">
                {d.status}
              </span>
            </dd>
            <dt>Presence</dt>
            <dd>
              <PresenceNow deviceId={d.id} /> <Link href={`/devices/${d.id}?view=presence`}>uptime</Link>
            </dd>
            <dt>Tags</dt>
            <dd>{d.tags.length ? d.tags.join(', ') : '—'}</dd>
            <dt>Metadata</dt>
            <dd>
              <code>{JSON.stringify(d.metadata)}</code>
            </dd>
            <dt>Created</dt>
            <dd>{formatTime(d.created_at)}</dd>
          </dl>
          <nav className="views" aria-label="Device views">
            <Link href={`/devices/${d.id}`} aria-current={view === 'details' ? 'page' : undefined}>
              Details
            </Link>
            <Link href={`/devices/${d.id}?view=twin`} aria-current={view === 'twin' ? 'page' : undefined}>
              Twin
            </Link>
            <Link href={`/devices/${d.id}?view=presence`} aria-current={view === 'presence' ? 'page' : undefined}>
              Presence
            </Link>
          </nav>
          {view === 'presence' && <DevicePresence deviceId={d.id} />}
          {view === 'twin' && (
            <Suspense fallback={<p className="muted">Loading…</p>}>
              <DeviceTwin deviceId={d.id} />
            </Suspense>
          )}
          {view === 'details' && canEdit && (
            <div className="row">
              {d.status === 'enabled' ? (
                <button type="button" className="secondary" onClick={() => void setStatus(false)}>
                  Disable
                </button>
              ) : (
                <button type="button" onClick={() => void setStatus(true)}>
                  Enable
                </button>
              )}
              <button type="button" className="danger" onClick={() => void rotate()}>
                Rotate secret
              </button>
            </div>
          )}
          {view === 'details' && (
            <>
              <ErrorNote error={error} />
              {secret && <SecretOnce secret={secret} onDone={() => setSecret(undefined)} />}
              {canEdit && <EditLabels device={d} onSaved={device.reload} />}
              <Connections deviceId={d.id} />
              <DeviceGroups device={d} />
              <DeviceCertificates deviceId={d.id} />
            </>
          )}
        </>
      )}
    </>
  );
}

/** The device's presence in one line, read again every few seconds while the page is visible. */
function PresenceNow({ deviceId }: { deviceId: string }) {
  const { org } = useOrg();
  const now = useTick();
  const presence = useLoad(() => api.GET('/orgs/{org}/devices/{id}/presence', { params: { path: { org: org.id, id: deviceId } } }), [org.id, deviceId, now]);
  if (presence.error) return <span className="muted">unknown ({presence.error})</span>;
  return presence.data ? <PresenceBadge presence={presence.data} now={now} testId="device-presence-now" /> : <span className="muted">…</span>;
}

/** Tags and metadata, edited as text: tags separated by commas, metadata as a JSON object. */
function EditLabels({ device, onSaved }: { device: Device; onSaved(): void }) {
  const { org } = useOrg();
  const [problem, setProblem] = useState<string>();
  const [saved, setSaved] = useState(false);

  async function save(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const fields = new FormData(e.currentTarget);
    const tags = String(fields.get('tags') ?? '')
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean);
    let metadata: unknown;
    try {
      metadata = JSON.parse(String(fields.get('metadata') ?? '').trim() || '{}');
    } catch {
      return setProblem('The metadata is not JSON.');
    }
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) return setProblem('The metadata is a JSON object, such as {"floor": 2}.');
    const { error } = await api.PATCH('/orgs/{org}/devices/{id}', { params: { path: { org: org.id, id: device.id } }, body: { tags, metadata: metadata as Record<string, unknown> } });
    setProblem(error ? problemText(error) : undefined);
    setSaved(!error);
    if (!error) onSaved();
  }

  return (
    <form className="card stack" aria-label="Tags and metadata" onSubmit={(e) => void save(e)} key={device.updated_at}>
      <h3>Tags and metadata</h3>
      <label>
        Tags (separated by commas)
        <input name="tags" defaultValue={device.tags.join(', ')} onChange={() => setSaved(false)} />
      </label>
      <label>
        Metadata (a JSON object)
        <textarea name="metadata" rows={3} defaultValue={JSON.stringify(device.metadata, null, 1)} onChange={() => setSaved(false)} />
      </label>
      <div className="row">
        <button type="submit">Save</button>
        {saved && (
          <span role="status" className="muted">
            Saved.
          </span>
        )}
      </div>
      <ErrorNote error={problem} />
    </form>
  );
}

type ConnectionType = 'publish' | 'subscribe';

/** The channels the device may publish or subscribe to; an editor connects it to more, or disconnects it. */
function Connections({ deviceId }: { deviceId: string }) {
  const { org, canEdit } = useOrg();
  const connected = useLoad(() => api.GET('/orgs/{org}/devices/{id}/channels', { params: { path: { org: org.id, id: deviceId }, query: { limit: 100 } } }), [org.id, deviceId]);
  const channels = useLoad(
    () => (canEdit ? api.GET('/orgs/{org}/channels', { params: { path: { org: org.id }, query: { limit: 100, sort: 'name' } } }) : Promise.resolve({ data: undefined })),
    [org.id, canEdit],
  );
  const [problem, setProblem] = useState<string>();

  async function change(method: 'POST' | 'DELETE', channelId: string, types: ConnectionType[]) {
    const init = { params: { path: { org: org.id } }, body: { device_ids: [deviceId], channel_ids: [channelId], types } };
    const { error } = method === 'POST' ? await api.POST('/orgs/{org}/connections', init) : await api.DELETE('/orgs/{org}/connections', init);
    setProblem(error ? problemText(error) : undefined);
    connected.reload();
  }

  function connect(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const fields = new FormData(e.currentTarget);
    const channel = String(fields.get('channel') ?? '');
    const types = fields.getAll('type').map(String) as ConnectionType[];
    if (!channel || !types.length) return setProblem('Choose a channel and at least one of publish and subscribe.');
    void change('POST', channel, types);
  }

  const list = connected.data?.channels ?? [];
  return (
    <section aria-label="Connections">
      <h3>Connections</h3>
      <ErrorNote error={connected.error} />
      {connected.data && list.length === 0 && <p className="muted">Not connected to any channel: the device can publish and subscribe nowhere.</p>}
      {list.length > 0 && (
        <table aria-label="Connected channels">
          <thead>
            <tr>
              <th>Channel</th>
              <th>May</th>
              {canEdit && <th>Change</th>}
            </tr>
          </thead>
          <tbody>
            {list.map((c) => (
              <tr key={c.channel_id}>
                <td>
                  <Link href={`/channels/${c.channel_id}`}>{c.name}</Link>
                </td>
                <td>{c.types.join(', ')}</td>
                {canEdit && (
                  <td>
                    <button type="button" className="danger" aria-label={`Disconnect from ${c.name}`} onClick={() => void change('DELETE', c.channel_id, ['publish', 'subscribe'])}>
                      Disconnect
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {canEdit && (
        <form className="card inline" aria-label="Connect to a channel" onSubmit={connect}>
          <label>
            Channel
            <select name="channel" defaultValue="">
              <option value="">Choose a channel…</option>
              {channels.data?.channels.map((c) => (
                <option key={c.id} value={c.id}>
                  {c.name}
                </option>
              ))}
            </select>
          </label>
          <ConnectionTypeChoices />
          <button type="submit">Connect</button>
        </form>
      )}
      <ErrorNote error={problem} />
    </section>
  );
}

/**
 * The groups the device belongs to. The API lists a group's devices but not a device's groups, so
 * the page asks, for each of the organization's groups (the first 100), whether its devices of
 * this name include this one.
 */
function DeviceGroups({ device }: { device: Device }) {
  const { org } = useOrg();
  const groups = useLoad(async () => {
    const all = await api.GET('/orgs/{org}/groups', { params: { path: { org: org.id }, query: { limit: 100, sort: 'name' } } });
    if (!all.data) return { error: all.error };
    const member = await Promise.all(
      all.data.groups.map(async (g) => {
        const { data } = await api.GET('/orgs/{org}/devices', { params: { path: { org: org.id }, query: { group_id: g.id, name: device.name, limit: 100 } } });
        return data?.devices.some((d) => d.id === device.id) ? [g] : [];
      }),
    );
    return { data: member.flat() };
  }, [org.id, device.id, device.name]);
  return (
    <section aria-label="Groups">
      <h3>Groups</h3>
      <ErrorNote error={groups.error} />
      {groups.data && (groups.data.length === 0 ? <p className="muted">In no group.</p> : (
        <ul>
          {groups.data.map((g) => (
            <li key={g.id}>
              <Link href={`/groups/${g.id}`}>{g.name}</Link>
            </li>
          ))}
        </ul>
      ))}
    </section>
  );
}
