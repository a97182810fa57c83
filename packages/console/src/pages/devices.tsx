// The organization's devices: paged, filtered and sorted by the platform (the page asks for one
// page at a time), the state in the address so a reload or a shared link shows the same page.
import { useState, type FormEvent } from 'react';
import { Link, useLocation, useSearch } from 'wouter';
import { api, problemText } from '../api/client';
import type { DeviceSort } from '../api/types';
import { useOrg } from '../app';
import { ErrorNote, SecretOnce, formatTime, useLoad, useTitle } from '../ui';

const pageSize = 20;
const sorts: Record<DeviceSort, string> = { name: 'Name', created_at: 'Created', updated_at: 'Updated' };

interface View {
  name: string;
  sort: DeviceSort;
  dir: 'asc' | 'desc';
  offset: number;
}

function readView(search: string): View {
  const q = new URLSearchParams(search);
  const sort = q.get('sort');
  return {
    name: q.get('name') ?? '',
    sort: sort === 'name' || sort === 'updated_at' ? sort : 'created_at',
    dir: q.get('dir') === 'desc' ? 'desc' : 'asc',
    offset: Math.max(0, Number(q.get('offset')) || 0),
  };
}

function viewSearch(v: View): string {
  const q = new URLSearchParams();
  if (v.name) q.set('name', v.name);
  if (v.sort !== 'created_at') q.set('sort', v.sort);
  if (v.dir !== 'asc') q.set('dir', v.dir);
  if (v.offset) q.set('offset', String(v.offset));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export function Devices() {
  const { org, canEdit } = useOrg();
  const search = useSearch();
  const [, navigate] = useLocation();
  const view = readView(search);
  const show = (change: Partial<View>) => navigate(`/devices${viewSearch({ ...view, offset: 0, ...change })}`);
  const page = useLoad(
    () =>
      api.GET('/orgs/{org}/devices', {
        params: { path: { org: org.id }, query: { offset: view.offset, limit: pageSize, sort: view.sort, dir: view.dir, ...(view.name ? { name: view.name } : {}) } },
      }),
    [org.id, search],
  );
  const [created, setCreated] = useState<{ id: string; secret: string }>();
  const [error, setError] = useState<string>();
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

  const total = page.data?.total ?? 0;
  return (
    <>
      <h2>Devices</h2>
      <div className="toolbar">
        <form
          role="search"
          onSubmit={(e) => {
            e.preventDefault();
            show({ name: String(new FormData(e.currentTarget).get('name')).trim() });
          }}
        >
          <label>
            Name
            <input name="name" type="search" defaultValue={view.name} key={view.name} placeholder="Filter by name" />
          </label>
          <button type="submit" className="secondary">
            Filter
          </button>
        </form>
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
      </div>

      {canEdit && (
        <form className="card inline" onSubmit={(e) => void create(e)} aria-label="New device">
          <label>
            New device
            <input name="name" required maxLength={256} placeholder="Name" />
          </label>
          <button type="submit">Create device</button>
          <ErrorNote error={error} />
        </form>
      )}
      {created && (
        <>
          <SecretOnce secret={created.secret} onDone={() => setCreated(undefined)} />
          <p>
            <Link href={`/devices/${created.id}`}>Open the new device</Link>
          </p>
        </>
      )}

      <ErrorNote error={page.error} />
      {page.data && (
        <>
          <table aria-label="Devices">
            <thead>
              <tr>
                <th>Name</th>
                <th>Status</th>
                <th>Tags</th>
                <th>Created</th>
              </tr>
            </thead>
            <tbody>
              {page.data.devices.map((d) => (
                <tr key={d.id}>
                  <td>
                    <Link href={`/devices/${d.id}`}>{d.name}</Link>
                  </td>
                  <td>
                    <span className={`status ${d.status}`}>{d.status}</span>
                  </td>
                  <td>{d.tags.join(', ')}</td>
                  <td>{formatTime(d.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {total === 0 && <p className="muted">{view.name ? 'No device matches the filter.' : 'No devices yet.'}</p>}
          <div className="pager">
            <button type="button" className="secondary" disabled={view.offset === 0} onClick={() => show({ offset: Math.max(0, view.offset - pageSize), name: view.name })}>
              Previous
            </button>
            <span data-testid="page-info">
              {total === 0 ? '0' : `${view.offset + 1}–${Math.min(view.offset + pageSize, total)}`} of {total}
            </span>
            <button type="button" className="secondary" disabled={view.offset + pageSize >= total} onClick={() => show({ offset: view.offset + pageSize, name: view.name })}>
              Next
            </button>
          </div>
        </>
      )}
    </>
  );
}
