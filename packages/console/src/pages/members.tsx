// The organization's people: its members and their roles, a page at a time, and the invitations
// sent and not yet answered. An owner or admin invites by email, changes a role, removes a member
// and revokes an invitation; everyone else sees the lists only. Only owners may grant, change or
// remove the owner role, and an organization keeps one owner at least: the platform says so when
// asked, and the page shows its answer.
import { useState, type FormEvent } from 'react';
import { api, problemText } from '../api/client';
import type { Role } from '../api/types';
import { useOrg } from '../app';
import { ErrorNote, formatTime, useLoad, useTitle } from '../ui';
import { Pager, pageSize } from './pager';

const roles: Role[] = ['owner', 'admin', 'operator', 'viewer'];

/** What the last change did, or why the platform refused it. */
type Note = { ok: string } | { error: string } | undefined;

export function NoteLine({ note }: { note: Note }) {
  if (!note) return null;
  if ('error' in note) return <ErrorNote error={note.error} />;
  return (
    <p role="status" className="outcome" data-testid="note">
      {note.ok}
    </p>
  );
}

export function Members() {
  const { org, role } = useOrg();
  // members:write is the admins' and owners' (a platform admin outside the organization acts as owner)
  const canManage = role === 'owner' || role === 'admin';
  const grantable = roles.filter((r) => r !== 'owner' || role === 'owner');
  const [offset, setOffset] = useState(0);
  const members = useLoad(() => api.GET('/orgs/{org}/members', { params: { path: { org: org.id }, query: { offset, limit: pageSize } } }), [org.id, offset]);
  const invitations = useLoad(() => api.GET('/orgs/{org}/invitations', { params: { path: { org: org.id }, query: { limit: 100 } } }), [org.id]);
  const [note, setNote] = useState<Note>();
  useTitle(`Members · ${org.name}`);

  async function invite(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = e.currentTarget;
    const fields = new FormData(form);
    const body = { email: String(fields.get('email')).trim(), role: String(fields.get('role')) as Role };
    const { data, error, response } = await api.POST('/orgs/{org}/members', { params: { path: { org: org.id } }, body });
    if (error) return setNote({ error: problemText(error) });
    form.reset();
    // a platform admin adds an existing user at once (201); anyone else sends an invitation (202)
    if (response.status === 201) {
      setNote({ ok: `${body.email} is now a member, as ${body.role}.` });
      members.reload();
    } else {
      setNote({ ok: `${body.email} is invited as ${body.role}, until ${'expires_at' in data ? formatTime(data.expires_at) : 'the invitation expires'}.` });
      invitations.reload();
    }
  }

  async function changeRole(userId: string, email: string, next: Role) {
    const { error } = await api.PATCH('/orgs/{org}/members/{user_id}', { params: { path: { org: org.id, user_id: userId } }, body: { role: next } });
    setNote(error ? { error: `${email} keeps their role: ${problemText(error)}` } : { ok: `${email} is now ${next}.` });
    members.reload();
  }

  async function remove(userId: string, email: string) {
    if (!window.confirm(`Remove ${email} from ${org.name}? They lose access to it at once.`)) return;
    const { error } = await api.DELETE('/orgs/{org}/members/{user_id}', { params: { path: { org: org.id, user_id: userId } } });
    setNote(error ? { error: `${email} stays a member: ${problemText(error)}` } : { ok: `${email} is no longer a member.` });
    if (!error && offset > 0 && members.data?.members.length === 1) setOffset(Math.max(0, offset - pageSize));
    else members.reload();
  }

  async function withdraw(id: string, email: string) {
    const { error } = await api.DELETE('/orgs/{org}/invitations/{id}', { params: { path: { org: org.id, id } } });
    setNote(error ? { error: problemText(error) } : { ok: `The invitation of ${email} is revoked: it can no longer be accepted.` });
    invitations.reload();
  }

  const list = members.data?.members ?? [];
  const pending = invitations.data?.invitations ?? [];
  return (
    <>
      <h2>Members</h2>
      {canManage && (
        <form className="card inline" onSubmit={(e) => void invite(e)} aria-label="Invite a member">
          <label>
            Email to invite
            <input name="email" type="email" required maxLength={320} autoComplete="off" placeholder="someone@example.com" />
          </label>
          <label>
            Role
            <select name="role" defaultValue="operator">
              {grantable.map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
          </label>
          <button type="submit">Invite</button>
        </form>
      )}
      <NoteLine note={note} />
      <ErrorNote error={members.error} />
      {members.data && (
        <>
          <table aria-label="Members" className="people">
            <thead>
              <tr>
                <th>Email</th>
                <th>Role</th>
                <th>Name</th>
                <th>Member since</th>
                {canManage && (
                  <th>
                    <span className="visually-hidden">Remove</span>
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {list.map((m) => {
                // an admin may not change or remove an owner: only owners may
                const editable = canManage && (m.role !== 'owner' || role === 'owner');
                return (
                  <tr key={m.user_id}>
                    <td className="email">{m.email}</td>
                    <td>
                      {editable ? (
                        <select aria-label={`Role of ${m.email}`} value={m.role} onChange={(e) => void changeRole(m.user_id, m.email, e.target.value as Role)}>
                          {grantable.map((r) => (
                            <option key={r} value={r}>
                              {r}
                            </option>
                          ))}
                        </select>
                      ) : (
                        m.role
                      )}
                    </td>
                    <td>{m.name}</td>
                    <td>{new Date(m.created_at).toLocaleDateString()}</td>
                    {canManage && (
                      <td>
                        {editable && (
                          <button type="button" className="danger" aria-label={`Remove ${m.email}`} onClick={() => void remove(m.user_id, m.email)}>
                            Remove
                          </button>
                        )}
                      </td>
                    )}
                  </tr>
                );
              })}
            </tbody>
          </table>
          <Pager offset={offset} total={members.data.total} onChange={setOffset} label="members" />
        </>
      )}
      <h3>Pending invitations</h3>
      <ErrorNote error={invitations.error} />
      {invitations.data && pending.length === 0 && <p className="muted">No invitation is waiting for an answer.</p>}
      {pending.length > 0 && (
        <table aria-label="Pending invitations" className="people">
          <thead>
            <tr>
              <th>Email</th>
              <th>Role</th>
              <th>Sent</th>
              <th>Expires</th>
              {canManage && (
                <th>
                  <span className="visually-hidden">Revoke</span>
                </th>
              )}
            </tr>
          </thead>
          <tbody>
            {pending.map((i) => (
              <tr key={i.id}>
                <td className="email">{i.email}</td>
                <td>{i.role}</td>
                <td>{new Date(i.created_at).toLocaleDateString()}</td>
                <td>{formatTime(i.expires_at)}</td>
                {canManage && (
                  <td>
                    <button type="button" className="secondary" aria-label={`Revoke the invitation of ${i.email}`} onClick={() => void withdraw(i.id, i.email)}>
                      Revoke
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {invitations.data && invitations.data.total > pending.length && (
        <p className="muted">
          The first {pending.length} of {invitations.data.total} invitations.
        </p>
      )}
    </>
  );
}
