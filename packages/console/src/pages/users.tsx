// The platform's accounts, for platform admins: a page at a time, found by email, created with a
// password, made admin or user, given a new password (which ends their sessions) and deleted. It
// lives at /admin/users, since /users is the API's own path. The platform refuses anyone else
// (403); the page tells them so instead of asking.
import { useState, type FormEvent } from 'react';
import { api, problemText } from '../api/client';
import type { User } from '../api/types';
import { useSession } from '../session';
import { ErrorNote, useLoad, useTitle } from '../ui';
import { NoteLine } from './members';
import { Pager, pageSize } from './pager';

type PlatformRole = User['role'];

export function Users() {
  const { user } = useSession();
  useTitle('Users');
  if (user?.role !== 'admin') {
    return (
      <>
        <h1>Users</h1>
        <p role="alert" className="error">
          Only platform admins may see the platform&apos;s users. Ask one if you need an account made or changed.
        </p>
      </>
    );
  }
  return <UserList me={user.id} />;
}

function UserList({ me }: { me: string }) {
  const [offset, setOffset] = useState(0);
  const [email, setEmail] = useState('');
  const users = useLoad(() => api.GET('/users', { params: { query: { offset, limit: pageSize, ...(email ? { email } : {}) } } }), [offset, email]);
  const [note, setNote] = useState<{ ok: string } | { error: string }>();
  const [passwordFor, setPasswordFor] = useState<User>();

  function find(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    setOffset(0);
    setEmail(String(new FormData(e.currentTarget).get('email') ?? '').trim());
  }

  async function create(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = e.currentTarget;
    const fields = new FormData(form);
    const body = {
      email: String(fields.get('email')).trim(),
      name: String(fields.get('name') ?? '').trim(),
      password: String(fields.get('password')),
      role: String(fields.get('role')) as PlatformRole,
    };
    const { error } = await api.POST('/users', { body });
    if (error) return setNote({ error: problemText(error) });
    form.reset();
    setNote({ ok: `${body.email} can now sign in${body.role === 'admin' ? ', as a platform admin' : ''}.` });
    users.reload();
  }

  async function changeRole(u: User, role: PlatformRole) {
    const { error } = await api.PATCH('/users/{id}', { params: { path: { id: u.id } }, body: { role } });
    setNote(error ? { error: `${u.email} keeps their role: ${problemText(error)}` } : { ok: `${u.email} is now ${role === 'admin' ? 'a platform admin' : 'a user'}.` });
    users.reload();
  }

  async function setPassword(e: FormEvent<HTMLFormElement>, u: User) {
    e.preventDefault();
    const password = String(new FormData(e.currentTarget).get('password'));
    const { error } = await api.PATCH('/users/{id}', { params: { path: { id: u.id } }, body: { password } });
    setNote(error ? { error: problemText(error) } : { ok: `${u.email} has a new password; their sessions are ended.` });
    if (!error) setPasswordFor(undefined);
  }

  async function remove(u: User) {
    if (!window.confirm(`Delete the account ${u.email}? They lose every organization and token; this cannot be undone.`)) return;
    const { error } = await api.DELETE('/users/{id}', { params: { path: { id: u.id } } });
    setNote(error ? { error: `${u.email} is not deleted: ${problemText(error)}` } : { ok: `${u.email} is deleted.` });
    users.reload();
  }

  const list = users.data?.users ?? [];
  return (
    <>
      <h1>Users</h1>
      <form role="search" aria-label="Find a user" className="toolbar" onSubmit={find}>
        <label>
          Find by email
          <input name="email" type="search" defaultValue={email} placeholder="The whole address" />
        </label>
        <button type="submit" className="secondary">
          Find
        </button>
        {email && (
          <button
            type="button"
            className="secondary"
            onClick={() => {
              setOffset(0);
              setEmail('');
            }}
          >
            Show all users
          </button>
        )}
      </form>
      <NoteLine note={note} />
      <ErrorNote error={users.error} />
      {passwordFor && (
        <form className="card inline" aria-label={`New password for ${passwordFor.email}`} onSubmit={(e) => void setPassword(e, passwordFor)}>
          <label>
            New password for {passwordFor.email}
            <input name="password" type="password" autoComplete="new-password" required autoFocus />
          </label>
          <button type="submit">Set password</button>
          <button type="button" className="secondary" onClick={() => setPasswordFor(undefined)}>
            Cancel
          </button>
        </form>
      )}
      {users.data && (
        <>
          <table aria-label="Users" className="people">
            <thead>
              <tr>
                <th>Email</th>
                <th>Platform role</th>
                <th>Name</th>
                <th>Created</th>
                <th>
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.map((u) => (
                <tr key={u.id}>
                  <td className="email">{u.email}</td>
                  <td>
                    {u.id === me ? (
                      `${u.role} (you)`
                    ) : (
                      <select aria-label={`Platform role of ${u.email}`} value={u.role} onChange={(e) => void changeRole(u, e.target.value as PlatformRole)}>
                        <option value="user">user</option>
                        <option value="admin">admin</option>
                      </select>
                    )}
                  </td>
                  <td>{u.name}</td>
                  <td>{new Date(u.created_at).toLocaleDateString()}</td>
                  <td>
                    {u.id !== me && (
                      <div className="row">
                        <button type="button" className="secondary" aria-label={`Set password for ${u.email}`} onClick={() => setPasswordFor(u)}>
                          Set password
                        </button>
                        <button type="button" className="danger" aria-label={`Delete ${u.email}`} onClick={() => void remove(u)}>
                          Delete
                        </button>
                      </div>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {list.length === 0 && <p className="muted">{email ? `No user has the email ${email}.` : 'No users.'}</p>}
          <Pager offset={offset} total={users.data.total} onChange={setOffset} label="users" />
        </>
      )}
      <form className="card" aria-labelledby="new-user" onSubmit={(e) => void create(e)}>
        <h2 id="new-user">New user</h2>
        <div className="row">
          <label>
            Email
            <input name="email" type="email" required maxLength={320} autoComplete="off" />
          </label>
          <label>
            Name
            <input name="name" maxLength={256} placeholder="Optional" autoComplete="off" />
          </label>
          <label>
            Password
            <input name="password" type="password" required autoComplete="new-password" />
          </label>
          <label>
            Platform role
            <select name="role" defaultValue="user">
              <option value="user">user</option>
              <option value="admin">admin</option>
            </select>
          </label>
          <button type="submit">Create user</button>
        </div>
      </form>
    </>
  );
}
