// The organization's devices: paged, filtered and sorted by the platform (the page asks for one
// page at a time), the state in the address (presence included: online, idle, offline) so a reload or a shared link shows the same page.
// An editor selects rows of the page and acts on them at once (enable, disable, connect to
// channels, add to a group, delete), and is told what was done and what was refused.
import { useState, type FormEvent, type ReactNode } from 'react';
import { Link, useLocation, useSearch } from 'wouter';
import { api, problemText } from '../api/client';
import type { Device, DeviceSort } from '../api/types';
import { useOrg } from '../app';
import { ConnectionTypeChoices, ErrorNote, SecretOnce, formatTime, useLoad, useTitle, searchOf } from '../ui';
import { PresenceBadge, useTick } from './presence';
import type { PresenceState } from './presence-words';

const pageSize = 20;
const listPollMs = 5000; // how often the open list reads its page again (presence changes show)
const sorts: Record<DeviceSort, string> = { name: 'Name', created_at: 'Created', updated_at: 'Updated' };
type Status = 'enabled' | 'disabled';
const presenceStates: readonly PresenceState[] = ['online', 'idle', 'offline'];

interface View {
  name: string;
  tag: string;
  /** As typed: `key=value` pairs separated by commas (see metadataQuery). */
  metadata: string;
  status: Status | '';
  group: string;
  presence: PresenceState | '';
  sort: DeviceSort;
  dir: 'asc' | 'desc';
  offset: number;
}

function readView(search: string): View {
  const q = new URLSearchParams(search);
  const sort = q.get('sort');
  const status = q.get('status');
  const presence = q.get('presence') as PresenceState | null;
  return {
    name: q.get('name') ?? '',
    tag: q.get('tag') ?? '',
    metadata: q.get('metadata') ?? '',
    status: status === 'enabled' || status === 'disabled' ? status : '',
    group: q.get('group') ?? '',
    presence: presence && presenceStates.includes(presence) ? presence : '',
    sort: sort === 'name' || sort === 'updated_at' ? sort : 'created_at',
    dir: q.get('dir') === 'desc' ? 'desc' : 'asc',
    offset: Math.max(0, Number(q.get('offset')) || 0),
  };
}

function viewSearch(v: View): string {
  return searchOf({ name: v.name, tag: v.tag, metadata: v.metadata, status: v.status, group: v.group, presence: v.presence, sort: v.sort !== 'created_at' ? v.sort : undefined, dir: v.dir !== 'asc' ? v.dir : undefined, offset: v.offset });
}

/**
 * The API's metadata filter (a JSON object of top-level keys and scalar values) from what an
 * operator types: `floor=2, zone=north`. A value that reads as a JSON scalar (a number, true,
 * false, null) is that value, anything else a string, so `floor=2` finds `{"floor":2}`.
 */
export function metadataQuery(text: string): { json?: string; error?: string } {
  if (!text.trim()) return {};
  const match: Record<string, unknown> = {};
  for (const pair of text.split(',')) {
    const at = pair.indexOf('=');
    const key = pair.slice(0, at).trim();
    if (at < 0 || !key) return { error: `The metadata filter is key=value pairs separated by commas, not “${pair.trim()}”` };
    const raw = pair.slice(at + 1).trim();
    let value: unknown = raw;
    try {
      const parsed: unknown = JSON.parse(raw);
      if (parsed === null || ['number', 'boolean', 'string'].includes(typeof parsed)) value = parsed;
    } catch {
      // not JSON: the text itself
    }
    match[key] = value;
  }
  return { json: JSON.stringify(match) };
}

/** What a bulk action did: how many devices it changed, and each refusal by device name. */
interface Outcome {
  action: string;
  done: number;
  failures: { name: string; reason: string }[];
}

export function OutcomeNote({ outcome }: { outcome: Outcome | undefined }) {
  if (!outcome) return null;
  return (
    <div role="status" className={outcome.failures.length ? 'outcome failed' : 'outcome'} data-testid="outcome">
      <p>
        {outcome.action}: {outcome.done} done{outcome.failures.length ? `, ${outcome.failures.length} failed` : ''}.
      </p>
      {outcome.failures.length > 0 && (
        <ul>
          {outcome.failures.map((f) => (
            <li key={f.name}>
              {f.name}: {f.reason}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** A column heading that sorts by it: the first click ascending, the next the other way. */
function SortHeading({ view, sort, show, children }: { view: View; sort: DeviceSort; show(change: Partial<View>): void; children: ReactNode }) {
  const current = view.sort === sort;
  return (
    <th aria-sort={current ? (view.dir === 'asc' ? 'ascending' : 'descending') : undefined}>
      <button type="button" className="link" onClick={() => show({ sort, dir: current && view.dir === 'asc' ? 'desc' : 'asc' })}>
        {children}
        <span aria-hidden="true">{current ? (view.dir === 'asc' ? ' ▲' : ' ▼') : ''}</span>
      </button>
    </th>
  );
}

export function Devices() {
  const { org, canEdit, canWriteIdentity } = useOrg();
  const search = useSearch();
  const [, navigate] = useLocation();
  const view = readView(search);
  const now = useTick(listPollMs); // the page is read again every few seconds while visible: presence changes show
  const show = (change: Partial<View>) => navigate(`/devices${viewSearch({ ...view, offset: 0, ...change })}`);
  const metadata = metadataQuery(view.metadata);
  const page = useLoad(() => {
    if (metadata.error) return Promise.resolve({ error: metadata.error });
    const query = {
      offset: view.offset,
      limit: pageSize,
      sort: view.sort,
      dir: view.dir,
      ...(view.name ? { name: view.name } : {}),
      ...(view.tag ? { tag: view.tag } : {}),
      ...(metadata.json ? { metadata: metadata.json } : {}),
      ...(view.status ? { status: view.status } : {}),
      ...(view.group ? { group_id: view.group } : {}),
      ...(view.presence ? { presence: view.presence } : {}),
    };
    return api.GET('/orgs/{org}/devices', { params: { path: { org: org.id }, query } });
  }, [org.id, search, now]);
  const groups = useLoad(() => api.GET('/orgs/{org}/groups', { params: { path: { org: org.id }, query: { limit: 100, sort: 'name' } } }), [org.id]);
  const [created, setCreated] = useState<{ id: string; secret: string }>();
  const [error, setError] = useState<string>();
  const [selected, setSelected] = useState<ReadonlySet<string>>(new Set());
  const [outcome, setOutcome] = useState<Outcome>();
  useTitle(`Devices · ${org.name}`);

  async function create(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = e.currentTarget;
    const name = String(new FormData(form).get('name')).trim();
    const { data, error: problem } = await api.POST('/orgs/{org}/devices', { params: { path: { org: org.id } }, body: { name } });
    if (problem) return setError(problemText(problem));
    setError(undefined);
    form.reset();
    setCreated({ id: data.id, secret: data.secret });
    page.reload();
  }

  function applyFilters(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const fields = new FormData(e.currentTarget);
    const text = (key: string) => String(fields.get(key) ?? '').trim();
    setSelected(new Set());
    show({ name: text('name'), tag: text('tag'), metadata: text('metadata'), status: text('status') as View['status'], group: text('group'), presence: text('presence') as View['presence'] });
  }

  const devices = page.data?.devices ?? [];
  const presence = page.data?.presence ?? {};
  const chosen = devices.filter((d) => selected.has(d.id));
  const toggle = (id: string, on: boolean) =>
    setSelected((s) => {
      const next = new Set(s);
      if (on) next.add(id);
      else next.delete(id);
      return next;
    });

  /** Runs a change for each chosen device (the API has no bulk route for it), then reloads the page. */
  async function eachDevice(action: string, change: (d: Device) => Promise<{ error?: unknown }>) {
    const failures: Outcome['failures'] = [];
    let done = 0;
    for (const d of chosen) {
      const { error: problem } = await change(d);
      if (problem) failures.push({ name: d.name, reason: problemText(problem) });
      else done++;
    }
    setOutcome({ action, done, failures });
    setSelected(new Set());
    page.reload();
  }

  /** A change the API makes for all the chosen devices in one request: all of them or none. */
  async function allDevices(action: string, request: (ids: string[]) => Promise<{ error?: unknown }>) {
    const { error: problem } = await request(chosen.map((d) => d.id));
    setOutcome(problem ? { action, done: 0, failures: chosen.map((d) => ({ name: d.name, reason: problemText(problem) })) } : { action, done: chosen.length, failures: [] });
    if (!problem) setSelected(new Set());
    page.reload();
  }

  const path = (d: Device) => ({ params: { path: { org: org.id, id: d.id } } });
  const total = page.data?.total ?? 0;
  const filtered = Boolean(view.name || view.tag || view.metadata || view.status || view.group || view.presence);
  return (
    <>
      <h2>Devices</h2>
      <form role="search" aria-label="Filter devices" className="toolbar filters" onSubmit={applyFilters} key={search}>
        <label>
          Name
          <input name="name" type="search" defaultValue={view.name} placeholder="Filter by name" />
        </label>
        <label>
          Tag
          <input name="tag" type="search" defaultValue={view.tag} placeholder="Exact tag" />
        </label>
        <label>
          Metadata
          <input name="metadata" type="search" defaultValue={view.metadata} placeholder="floor=2, zone=north" />
        </label>
        <label>
          Status
          <select name="status" defaultValue={view.status}>
            <option value="">Any</option>
            <option value="enabled">Enabled</option>
            <option value="disabled">Disabled</option>
          </select>
        </label>
        <label>
          Group
          <select name="group" defaultValue={view.group}>
            <option value="">Any</option>
            {groups.data?.groups.map((g) => (
              <option key={g.id} value={g.id}>
                {g.name}
              </option>
            ))}
            {view.group && !groups.data?.groups.some((g) => g.id === view.group) && <option value={view.group}>(a group not listed)</option>}
          </select>
        </label>
        <label>
          Presence
          <select name="presence" defaultValue={view.presence}>
            <option value="">All</option>
            {presenceStates.map((p) => (
              <option key={p} value={p}>
                {p[0]!.toUpperCase() + p.slice(1)}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" className="secondary">
          Filter
        </button>
      </form>
      <div className="toolbar">
        <label>
          Sort by
          <select value={view.sort} onChange={(e) => show({ sort: e.target.value as DeviceSort })}>
            {Object.entries(sorts).map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        </label>
        <button type="button" className="secondary" aria-label={view.dir === 'asc' ? 'Ascending: sort descending' : 'Descending: sort ascending'} onClick={() => show({ dir: view.dir === 'asc' ? 'desc' : 'asc' })}>
          {view.dir === 'asc' ? '↑ ascending' : '↓ descending'}
        </button>
        {filtered && (
          <button type="button" className="secondary" onClick={() => show({ name: '', tag: '', metadata: '', status: '', group: '', presence: '' })}>
            Show all devices
          </button>
        )}
        <span className="grow" />
        <Link href="/devices/twins">Find devices by twin fields</Link>
      </div>

      {canEdit && (
        <div className="row">
          <form className="card inline grow" onSubmit={(e) => void create(e)} aria-label="New device">
            <label>
              New device
              <input name="name" required maxLength={256} placeholder="Name" />
            </label>
            <button type="submit">Create device</button>
            <ErrorNote error={error} />
          </form>
          <p>
            <Link href="/devices/import">Create many or import a CSV file</Link>
            {canWriteIdentity && (
              <>
                {' · '}
                <Link href="/connect">Enrol a device with a certificate</Link>
              </>
            )}
          </p>
        </div>
      )}
      {created && (
        <>
          <SecretOnce secret={created.secret} onDone={() => setCreated(undefined)} />
          <p>
            <Link href={`/devices/${created.id}`}>Open the new device</Link>
          </p>
        </>
      )}

      {canEdit && chosen.length > 0 && (
        <BulkActions
          count={chosen.length}
          groups={groups.data?.groups ?? []}
          onEnable={() => void eachDevice('Enable', (d) => api.POST('/orgs/{org}/devices/{id}/enable', path(d)))}
          onDisable={() => void eachDevice('Disable', (d) => api.POST('/orgs/{org}/devices/{id}/disable', path(d)))}
          onDelete={() => {
            if (window.confirm(`Delete ${chosen.length} device${chosen.length === 1 ? '' : 's'}? Their connections go with them; this cannot be undone.`))
              void eachDevice('Delete', (d) => api.DELETE('/orgs/{org}/devices/{id}', path(d)));
          }}
          onConnect={(channelIds, types) => void allDevices('Connect', (ids) => api.POST('/orgs/{org}/connections', { params: { path: { org: org.id } }, body: { device_ids: ids, channel_ids: channelIds, types } }))}
          onAddToGroup={(groupId) => void allDevices('Add to group', (ids) => api.POST('/orgs/{org}/groups/{id}/devices', { params: { path: { org: org.id, id: groupId } }, body: { device_ids: ids } }))}
        />
      )}
      <OutcomeNote outcome={outcome} />

      <ErrorNote error={page.error} />
      {page.data && (
        <>
          <div className="scroll">
            <table aria-label="Devices" className="fleet">
              <thead>
                <tr>
                  {canEdit && (
                    <th className="pick">
                      <input
                        type="checkbox"
                        aria-label="Select all on this page"
                        checked={devices.length > 0 && chosen.length === devices.length}
                        onChange={(e) => setSelected(e.target.checked ? new Set(devices.map((d) => d.id)) : new Set())}
                      />
                    </th>
                  )}
                  <SortHeading view={view} sort="name" show={show}>
                    Name
                  </SortHeading>
                  <th>Status</th>
                  <th>Presence</th>
                  <th className="optional">Tags</th>
                  <SortHeading view={view} sort="created_at" show={show}>
                    Created
                  </SortHeading>
                </tr>
              </thead>
              <tbody>
                {devices.map((d) => (
                  <tr key={d.id}>
                    {canEdit && (
                      <td className="pick">
                        <input type="checkbox" aria-label={`Select ${d.name}`} checked={selected.has(d.id)} onChange={(e) => toggle(d.id, e.target.checked)} />
                      </td>
                    )}
                    <td>
                      <Link href={`/devices/${d.id}`}>{d.name}</Link>
                    </td>
                    <td>
                      <span className={`status ${d.status}`}>{d.status}</span>
                    </td>
                    <td data-testid="presence">{presence[d.id] ? <PresenceBadge presence={presence[d.id]!} now={now} /> : <span className="muted">—</span>}</td>
                    <td className="optional">{d.tags.join(', ')}</td>
                    <td>{formatTime(d.created_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {total === 0 && <p className="muted">{filtered ? 'No device matches the filter.' : 'No devices yet.'}</p>}
          <div className="pager">
            <button type="button" className="secondary" disabled={view.offset === 0} onClick={() => show({ offset: Math.max(0, view.offset - pageSize) })}>
              Previous
            </button>
            <span data-testid="page-info">
              {total === 0 ? '0' : `${view.offset + 1}–${Math.min(view.offset + pageSize, total)}`} of {total}
            </span>
            <button type="button" className="secondary" disabled={view.offset + pageSize >= total} onClick={() => show({ offset: view.offset + pageSize })}>
              Next
            </button>
          </div>
        </>
      )}
    </>
  );
}

type ConnectionType = 'publish' | 'subscribe';

/** The actions on the selected devices; connecting and grouping first ask for the channels or the group. */
function BulkActions(props: {
  count: number;
  groups: { id: string; name: string }[];
  onEnable(): void;
  onDisable(): void;
  onDelete(): void;
  onConnect(channelIds: string[], types: ConnectionType[]): void;
  onAddToGroup(groupId: string): void;
}) {
  const { org } = useOrg();
  const [asking, setAsking] = useState<'connect' | 'group'>();
  const channels = useLoad(
    () => (asking === 'connect' ? api.GET('/orgs/{org}/channels', { params: { path: { org: org.id }, query: { limit: 100, sort: 'name' } } }) : Promise.resolve({ data: undefined })),
    [org.id, asking],
  );
  const [problem, setProblem] = useState<string>();

  function connect(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const fields = new FormData(e.currentTarget);
    const channelIds = fields.getAll('channel').map(String);
    const types = fields.getAll('type').map(String) as ConnectionType[];
    if (!channelIds.length || !types.length) return setProblem('Choose at least one channel and one of publish and subscribe.');
    setProblem(undefined);
    setAsking(undefined);
    props.onConnect(channelIds, types);
  }

  function addToGroup(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const group = String(new FormData(e.currentTarget).get('group') ?? '');
    if (!group) return setProblem('Choose a group.');
    setProblem(undefined);
    setAsking(undefined);
    props.onAddToGroup(group);
  }

  return (
    <section className="card bulk" aria-label="Selected devices">
      <div className="row">
        <strong data-testid="selected-count">{props.count} selected</strong>
        <button type="button" className="secondary" onClick={props.onEnable}>
          Enable
        </button>
        <button type="button" className="secondary" onClick={props.onDisable}>
          Disable
        </button>
        <button type="button" className="secondary" aria-expanded={asking === 'connect'} onClick={() => setAsking(asking === 'connect' ? undefined : 'connect')}>
          Connect to channels…
        </button>
        <button type="button" className="secondary" aria-expanded={asking === 'group'} onClick={() => setAsking(asking === 'group' ? undefined : 'group')}>
          Add to group…
        </button>
        <button type="button" className="danger" onClick={props.onDelete}>
          Delete
        </button>
      </div>
      {asking === 'connect' && (
        <form onSubmit={connect} aria-label="Connect to channels">
          <fieldset>
            <legend>Channels</legend>
            {channels.data?.channels.length === 0 && <p className="muted">The organization has no channels yet.</p>}
            {channels.data?.channels.map((c) => (
              <label key={c.id} className="check">
                <input type="checkbox" name="channel" value={c.id} /> {c.name}
              </label>
            ))}
          </fieldset>
          <fieldset>
            <legend>The devices may</legend>
            <ConnectionTypeChoices />
          </fieldset>
          <button type="submit">Connect</button>
        </form>
      )}
      {asking === 'group' && (
        <form onSubmit={addToGroup} aria-label="Add to group" className="row">
          <label>
            Group
            <select name="group" defaultValue="">
              <option value="">Choose a group…</option>
              {props.groups.map((g) => (
                <option key={g.id} value={g.id}>
                  {g.name}
                </option>
              ))}
            </select>
          </label>
          <button type="submit">Add</button>
        </form>
      )}
      <ErrorNote error={problem} />
    </section>
  );
}
