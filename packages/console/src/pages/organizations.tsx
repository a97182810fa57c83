import { useState, type FormEvent } from 'react';
import { Link, useLocation } from 'wouter';
import { api, problemText } from '../api/client';
import { ErrorNote, useLoad, useTitle } from '../ui';
import { ReceivedInvitations } from './invitations';

export function Organizations() {
  const orgs = useLoad(() => api.GET('/orgs', { params: { query: { limit: 100 } } }), []);
  const [, navigate] = useLocation();
  const [error, setError] = useState<string>();
  useTitle('Organizations');

  async function create(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const name = String(new FormData(e.currentTarget).get('name')).trim();
    const { data, error: problem } = await api.POST('/orgs', { body: { name } });
    if (problem) return setError(problemText(problem));
    // the new organization becomes the current one
    navigate(`/organizations/${data.id}/devices`);
  }

  return (
    <>
      <h1>Organizations</h1>
      <ReceivedInvitations onAccepted={orgs.reload} />
      <ErrorNote error={orgs.error} />
      {orgs.data && orgs.data.orgs.length === 0 && <p className="muted">You are in no organization yet: create one.</p>}
      {orgs.data && orgs.data.orgs.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Your role</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {orgs.data.orgs.map((o) => (
              <tr key={o.id}>
                <td>
                  <Link href={`/organizations/${o.id}/devices`}>{o.name}</Link>
                </td>
                <td>{o.role ?? '—'}</td>
                <td>{new Date(o.created_at).toLocaleDateString()}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form className="card inline" onSubmit={(e) => void create(e)} aria-label="New organization">
        <label>
          New organization
          <input name="name" required maxLength={256} placeholder="Name" />
        </label>
        <button type="submit">Create organization</button>
        <ErrorNote error={error} />
      </form>
    </>
  );
}
