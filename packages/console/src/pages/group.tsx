// A group: renamed or deleted here, its devices listed (a page at a time), added by name and removed.
import { useState, type FormEvent } from 'react';
import { Link, useLocation, useParams } from 'wouter';
import { api, problemText } from '../api/client';
import { useOrg } from '../app';
import { ErrorNote, useLoad, useTitle } from '../ui';
import { Pager, pageSize } from './pager';


export function GroupPage() {
  const { org, canEdit } = useOrg();
  const { id } = useParams<{ id: string }>();
  const [, navigate] = useLocation();
  const path = { org: org.id, id };
  const group = useLoad(() => api.GET('/orgs/{org}/groups/{id}', { params: { path } }), [org.id, id]);
  const [offset, setOffset] = useState(0);
  const devices = useLoad(() => api.GET('/orgs/{org}/groups/{id}/devices', { params: { path, query: { offset, limit: pageSize, sort: 'name' } } }), [org.id, id, offset]);
  const [error, setError] = useState<string>();
  const [found, setFound] = useState<{ id: string; name: string }[]>();
  useTitle(group.data ? `${group.data.name} · ${org.name}` : undefined);

  async function rename(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const name = String(new FormData(e.currentTarget).get('name')).trim();
    const { error: problem } = await api.PATCH('/orgs/{org}/groups/{id}', { params: { path }, body: { name } });
    setError(problem ? problemText(problem) : undefined);
    group.reload();
  }

  async function remove() {
    if (!window.confirm('Delete the group? Its devices stay, outside it.')) return;
    const { error: problem } = await api.DELETE('/orgs/{org}/groups/{id}', { params: { path } });
    if (problem) return setError(problemText(problem));
    navigate('/groups');
  }

  async function find(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const name = String(new FormData(e.currentTarget).get('name')).trim();
    const { data, error: problem } = await api.GET('/orgs/{org}/devices', { params: { path: { org: org.id }, query: { name, limit: 20, sort: 'name' } } });
    setError(problem ? problemText(problem) : undefined);
    setFound(data?.devices.map((d) => ({ id: d.id, name: d.name })));
  }

  async function members(method: 'POST' | 'DELETE', deviceIds: string[]) {
    const init = { params: { path }, body: { device_ids: deviceIds } };
    const { error: problem } = method === 'POST' ? await api.POST('/orgs/{org}/groups/{id}/devices', init) : await api.DELETE('/orgs/{org}/groups/{id}/devices', init);
    setError(problem ? problemText(problem) : undefined);
    devices.reload();
  }

  const g = group.data;
  const total = devices.data?.total ?? 0;
  const inGroup = new Set(devices.data?.devices.map((d) => d.id));
  return (
    <>
      <p>
        <Link href="/groups">← Groups</Link>
      </p>
      <ErrorNote error={group.error} />
      {g && (
        <>
          <h2>{g.name}</h2>
          {g.description && <p>{g.description}</p>}
          {canEdit && (
            <div className="row">
              <form className="card inline grow" aria-label="Rename the group" onSubmit={(e) => void rename(e)} key={g.name}>
                <label>
                  Name
                  <input name="name" required maxLength={256} defaultValue={g.name} />
                </label>
                <button type="submit" className="secondary">
                  Rename
                </button>
              </form>
              <button type="button" className="danger" onClick={() => void remove()}>
                Delete group
              </button>
            </div>
          )}
          <ErrorNote error={error} />
          <h3>Devices in the group</h3>
          <ErrorNote error={devices.error} />
          {devices.data && (
            <>
              <table aria-label="Devices in the group">
                <thead>
                  <tr>
                    <th>Name</th>
                    <th>Status</th>
                    {canEdit && <th>Change</th>}
                  </tr>
                </thead>
                <tbody>
                  {devices.data.devices.map((d) => (
                    <tr key={d.id}>
                      <td>
                        <Link href={`/devices/${d.id}`}>{d.name}</Link>
                      </td>
                      <td>
                        <span className={`status ${d.status}`}>{d.status}</span>
                      </td>
                      {canEdit && (
                        <td>
                          <button type="button" className="danger" aria-label={`Remove ${d.name} from the group`} onClick={() => void members('DELETE', [d.id])}>
                            Remove
                          </button>
                        </td>
                      )}
                    </tr>
                  ))}
                </tbody>
              </table>
              {total === 0 && <p className="muted">No devices in the group yet.</p>}
              <Pager offset={offset} total={total} onChange={setOffset} label="devices in the group" always testId="group-page-info" />
            </>
          )}
          {canEdit && (
            <section className="card" aria-label="Add devices">
              <form className="inline row" role="search" aria-label="Find devices to add" onSubmit={(e) => void find(e)}>
                <label>
                  Add devices named
                  <input name="name" type="search" placeholder="Part of a name" />
                </label>
                <button type="submit" className="secondary">
                  Find
                </button>
              </form>
              <p className="muted">
                To add many at once, select them on the <Link href="/devices">devices</Link> page and choose “Add to group”.
              </p>
              {found && found.length === 0 && <p className="muted">No device of that name.</p>}
              {found && found.length > 0 && (
                <ul className="plain">
                  {found.map((d) => (
                    <li key={d.id} className="row">
                      <span>{d.name}</span>
                      {inGroup.has(d.id) ? (
                        <span className="muted">in the group</span>
                      ) : (
                        <button type="button" className="secondary" aria-label={`Add ${d.name}`} onClick={() => void members('POST', [d.id])}>
                          Add
                        </button>
                      )}
                    </li>
                  ))}
                </ul>
              )}
            </section>
          )}
        </>
      )}
    </>
  );
}
