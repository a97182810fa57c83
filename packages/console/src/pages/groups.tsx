// The organization's groups of devices: listed, created, renamed and deleted (deleting a group
// leaves its devices as they are).
import { useState, type FormEvent } from 'react';
import { Link } from 'wouter';
import { api, problemText } from '../api/client';
import { useOrg } from '../app';
import { ErrorNote, formatTime, useLoad, useTitle } from '../ui';

export function Groups() {
  const { org, canEdit } = useOrg();
  const groups = useLoad(() => api.GET('/orgs/{org}/groups', { params: { path: { org: org.id }, query: { limit: 100, sort: 'name' } } }), [org.id]);
  const [error, setError] = useState<string>();
  useTitle(`Groups · ${org.name}`);

  async function create(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = e.currentTarget;
    const fields = new FormData(form);
    const body = { name: String(fields.get('name')).trim(), description: String(fields.get('description') ?? '').trim() };
    const { error: problem } = await api.POST('/orgs/{org}/groups', { params: { path: { org: org.id } }, body });
    if (problem) return setError(problemText(problem));
    setError(undefined);
    form.reset();
    groups.reload();
  }

  const list = groups.data?.groups ?? [];
  return (
    <>
      <h2>Groups</h2>
      {canEdit && (
        <form className="card inline" onSubmit={(e) => void create(e)} aria-label="New group">
          <label>
            New group
            <input name="name" required maxLength={256} placeholder="Name" />
          </label>
          <label>
            Description
            <input name="description" maxLength={4096} placeholder="Optional" />
          </label>
          <button type="submit">Create group</button>
          <ErrorNote error={error} />
        </form>
      )}
      <ErrorNote error={groups.error} />
      {groups.data && (
        <>
          <table aria-label="Groups" className="fleet">
            <thead>
              <tr>
                <th>Name</th>
                <th>Description</th>
                <th className="optional">Created</th>
              </tr>
            </thead>
            <tbody>
              {list.map((g) => (
                <tr key={g.id}>
                  <td>
                    <Link href={`/groups/${g.id}`}>{g.name}</Link>
                  </td>
                  <td>{g.description}</td>
                  <td className="optional">{formatTime(g.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {list.length === 0 && <p className="muted">No groups yet.</p>}
          {groups.data.total > list.length && <p className="muted">The first {list.length} of {groups.data.total} groups, by name.</p>}
        </>
      )}
    </>
  );
}
