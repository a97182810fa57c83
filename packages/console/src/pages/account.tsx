// The signed-in user's own page: their profile, a new password, signing out everywhere, and their
// personal access tokens (for scripts and the CLI: a token acts for this user in one organization,
// with only the actions chosen here; it is shown once, when made, and can be revoked at any time).
import { useState, type FormEvent } from 'react';
import { api, problemText } from '../api/client';
import type { paths } from '../api/schema';
import { useSession } from '../session';
import { ErrorNote, formatTime, useLoad, useTitle } from '../ui';

type TokenAction = paths['/users/me/tokens']['post']['requestBody']['content']['application/json']['actions'][number];

/**
 * Every action a token may be given: a record keyed by the API's own list, so that the typecheck
 * fails when the platform adds or drops one (the order is the one docs/permissions.md shows).
 */
const actionsInOrder: Record<TokenAction, number> = {
  'org:read': 0, 'org:update': 1, 'org:delete': 2, 'members:read': 3, 'members:write': 4,
  'devices:read': 5, 'devices:write': 6, 'channels:read': 7, 'channels:write': 8, 'groups:read': 9,
  'groups:write': 10, 'connections:read': 11, 'connections:write': 12, 'messages:read': 13,
  'messages:publish': 14, 'dead-letters:read': 15, 'dead-letters:write': 16, 'identity:read': 17, 'identity:write': 18,
  'twins:read': 19, 'twins:write': 20,
};
const tokenActions = (Object.keys(actionsInOrder) as TokenAction[]).sort((a, b) => actionsInOrder[a] - actionsInOrder[b]);

const day = 86_400;
const lifetimes = [
  { label: '7 days', seconds: 7 * day },
  { label: '30 days', seconds: 30 * day },
  { label: '90 days', seconds: 90 * day },
  { label: '366 days', seconds: 366 * day },
];

export function Account() {
  const { user, signIn, signOut } = useSession();
  useTitle('Your account');
  const [note, setNote] = useState<string>();
  const [error, setError] = useState<string>();

  async function changePassword(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const target = e.currentTarget;
    const password = String(form.get('new'));
    const { error: problem } = await api.POST('/users/me/password', {
      body: { current_password: String(form.get('current')), new_password: password },
    });
    if (problem) return setError(problemText(problem));
    target.reset();
    setError(undefined);
    // the change ended every session of the account, this one too: it signs in again with the new password
    const again = user ? await signIn(user.email, password) : 'not signed in';
    if (again !== undefined) return setError(`Your password is changed and every session is ended; sign in again with the new password (${again}).`);
    setNote('Your password is changed: every other session is ended, and this one continues with the new password.');
  }

  async function signOutEverywhere() {
    const { error: problem } = await api.DELETE('/users/me/sessions');
    if (problem) return setError(problemText(problem));
    // this session is among those ended
    await signOut();
  }

  return (
    <>
      <h1>Your account</h1>
      <section className="card" aria-labelledby="profile">
        <h2 id="profile">Profile</h2>
        <p>
          {user?.email}
          {user?.role === 'admin' && <span className="muted"> · platform admin</span>}
        </p>
      </section>
      <form className="card" onSubmit={(e) => void changePassword(e)} aria-labelledby="password">
        <h2 id="password">Password</h2>
        <label>
          Current password
          <input name="current" type="password" autoComplete="current-password" required />
        </label>
        <label>
          New password
          <input name="new" type="password" autoComplete="new-password" required />
        </label>
        <button type="submit">Change password</button>
        {note && <p role="status">{note}</p>}
      </form>
      <section className="card" aria-labelledby="sessions">
        <h2 id="sessions">Sessions</h2>
        <p className="muted">Ends every session of yours, in every browser and the CLI, this one included.</p>
        <button type="button" className="secondary" onClick={() => void signOutEverywhere()}>
          Sign out everywhere
        </button>
      </section>
      <ErrorNote error={error} />
      <Tokens />
    </>
  );
}

function Tokens() {
  const tokens = useLoad(() => api.GET('/users/me/tokens', { params: { query: { limit: 100 } } }), []);
  const orgs = useLoad(() => api.GET('/orgs', { params: { query: { limit: 100 } } }), []);
  const [shown, setShown] = useState<string>();
  const [copied, setCopied] = useState(false);
  const [error, setError] = useState<string>();

  async function create(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const actions = form.getAll('action').map(String) as TokenAction[];
    if (actions.length === 0) return setError('Choose at least one action for the token');
    const { data, error: problem } = await api.POST('/users/me/tokens', {
      body: { name: String(form.get('name')).trim(), org_id: String(form.get('org')), actions, expires_in: Number(form.get('expires')) },
    });
    if (problem) return setError(problemText(problem));
    setError(undefined);
    setCopied(false);
    setShown(data.token);
    tokens.reload();
  }

  async function revoke(id: string) {
    const { error: problem } = await api.DELETE('/users/me/tokens/{id}', { params: { path: { id } } });
    if (problem) return setError(problemText(problem));
    tokens.reload();
  }

  const orgName = (id: string) => orgs.data?.orgs.find((o) => o.id === id)?.name ?? id;
  return (
    <section aria-labelledby="tokens">
      <h2 id="tokens">Personal access tokens</h2>
      <ErrorNote error={tokens.error} />
      {shown && (
        <section className="secret" aria-label="New token" data-testid="token">
          <p>
            <strong>The token, shown only now.</strong> Store it where your script reads it: it cannot be read again.
          </p>
          <div className="row">
            <code data-testid="token-value">{shown}</code>
            <button type="button" onClick={() => void navigator.clipboard.writeText(shown).then(() => setCopied(true))}>
              {copied ? 'Copied' : 'Copy'}
            </button>
            <button type="button" className="secondary" onClick={() => setShown(undefined)}>
              Done
            </button>
          </div>
        </section>
      )}
      {tokens.data && tokens.data.tokens.length === 0 && <p className="muted">You have no token yet.</p>}
      {tokens.data && tokens.data.tokens.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Organization</th>
              <th>Actions</th>
              <th>Expires</th>
              <th>Last used</th>
              <th>
                <span className="visually-hidden">Revoke</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {tokens.data.tokens.map((t) => (
              <tr key={t.id}>
                <td>{t.name}</td>
                <td>{orgName(t.org_id)}</td>
                <td>{t.actions.join(', ')}</td>
                <td>{formatTime(t.expires_at)}</td>
                <td>{t.last_used_at ? formatTime(t.last_used_at) : 'never'}</td>
                <td>
                  {t.revoked_at ? (
                    <span className="muted">revoked</span>
                  ) : (
                    <button type="button" className="secondary" aria-label={`Revoke ${t.name}`} onClick={() => void revoke(t.id)}>
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form className="card" onSubmit={(e) => void create(e)} aria-label="New token">
        <label>
          Token name
          <input name="name" required maxLength={128} />
        </label>
        <label>
          Token organization
          <select name="org" required>
            {orgs.data?.orgs.map((o) => (
              <option key={o.id} value={o.id}>
                {o.name}
              </option>
            ))}
          </select>
        </label>
        <fieldset>
          <legend>Actions</legend>
          {tokenActions.map((a) => (
            <label key={a} className="check">
              <input type="checkbox" name="action" value={a} /> {a}
            </label>
          ))}
        </fieldset>
        <label>
          Expires after
          <select name="expires" defaultValue={String(30 * day)}>
            {lifetimes.map((l) => (
              <option key={l.seconds} value={l.seconds}>
                {l.label}
              </option>
            ))}
          </select>
        </label>
        <button type="submit">Create token</button>
        <ErrorNote error={error} />
      </form>
    </section>
  );
}
