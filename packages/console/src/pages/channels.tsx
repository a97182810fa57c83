import { useState, type FormEvent } from 'react';
import { Link } from 'wouter';
import { api, problemText } from '../api/client';
import type { ContentType } from '../api/types';
import { useOrg } from '../app';
import { ErrorNote, formatTime, useLoad, useTitle } from '../ui';

const contentTypes: Record<ContentType, string> = {
  'application/senml+json': 'SenML JSON (checked)',
  'application/json': 'JSON',
  'application/octet-stream': 'Opaque bytes',
};

export function Channels() {
  const { org, canEdit } = useOrg();
  const channels = useLoad(() => api.GET('/orgs/{org}/channels', { params: { path: { org: org.id }, query: { limit: 100, sort: 'name' } } }), [org.id]);
  const [error, setError] = useState<string>();
  useTitle(`Channels · ${org.name}`);

  async function create(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = e.currentTarget;
    const fields = new FormData(form);
    const body = { name: String(fields.get('name')).trim(), content_type: String(fields.get('content_type')) as ContentType };
    const { error: problem } = await api.POST('/orgs/{org}/channels', { params: { path: { org: org.id } }, body });
    if (problem) return setError(problemText(problem));
    setError(undefined);
    form.reset();
    channels.reload();
  }

  return (
    <>
      <h2>Channels</h2>
      {canEdit && (
        <form className="card inline" onSubmit={(e) => void create(e)} aria-label="New channel">
          <label>
            New channel
            <input name="name" required maxLength={256} placeholder="Name" />
          </label>
          <label>
            Content type
            <select name="content_type" defaultValue="application/senml+json">
              {Object.entries(contentTypes).map(([value, label]) => (
                <option key={value} value={value}>
                  {label}
                </option>
              ))}
            </select>
          </label>
          <button type="submit">Create channel</button>
          <ErrorNote error={error} />
        </form>
      )}
      <ErrorNote error={channels.error} />
      {channels.data && (
        <table aria-label="Channels">
          <thead>
            <tr>
              <th>Name</th>
              <th>Content type</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {channels.data.channels.map((c) => (
              <tr key={c.id}>
                <td>
                  <Link href={`/channels/${c.id}`}>{c.name}</Link>
                </td>
                <td>
                  <code>{c.content_type}</code>
                </td>
                <td>{formatTime(c.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {channels.data?.total === 0 && <p className="muted">No channels yet.</p>}
    </>
  );
}
