// The invitations addressed to the signed-in user, shown above their organizations: accepting one
// makes them a member with its role (the organization joins their list), declining drops it.
import { useState } from 'react';
import { api, problemText } from '../api/client';
import { ErrorNote, formatTime, useLoad } from '../ui';

/** Told when the user's organizations change here (an invitation accepted): the top bar's menu reloads. */
export const orgsChangedEvent = 'fleetwire:orgs-changed';

export function ReceivedInvitations({ onAccepted }: { onAccepted(): void }) {
  const invitations = useLoad(() => api.GET('/users/me/invitations', { params: { query: { limit: 100 } } }), []);
  const [note, setNote] = useState<string>();
  const [error, setError] = useState<string>();

  async function answer(id: string, orgName: string, accept: boolean) {
    const path = { params: { path: { id } } };
    const { error: problem } = accept ? await api.POST('/users/me/invitations/{id}/accept', path) : await api.POST('/users/me/invitations/{id}/decline', path);
    if (problem) {
      setError(problemText(problem));
    } else {
      setError(undefined);
      setNote(accept ? `You are now a member of ${orgName}.` : `You declined the invitation into ${orgName}.`);
      if (accept) {
        onAccepted();
        window.dispatchEvent(new Event(orgsChangedEvent));
      }
    }
    invitations.reload();
  }

  const list = invitations.data?.invitations ?? [];
  if (list.length === 0 && !note && !error && !invitations.error) return null;
  return (
    <section aria-labelledby="invitations-heading">
      <h2 id="invitations-heading">Your invitations</h2>
      <ErrorNote error={invitations.error ?? error} />
      {note && (
        <p role="status" className="outcome">
          {note}
        </p>
      )}
      {list.length > 0 && (
        <table aria-label="Your invitations" className="people">
          <thead>
            <tr>
              <th>Organization</th>
              <th>Role</th>
              <th>Expires</th>
              <th>
                <span className="visually-hidden">Answer</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.map((i) => (
              <tr key={i.id}>
                <td>{i.org_name}</td>
                <td>{i.role}</td>
                <td>{formatTime(i.expires_at)}</td>
                <td>
                  <div className="row">
                    <button type="button" aria-label={`Accept the invitation into ${i.org_name}`} onClick={() => void answer(i.id, i.org_name, true)}>
                      Accept
                    </button>
                    <button type="button" className="secondary" aria-label={`Decline the invitation into ${i.org_name}`} onClick={() => void answer(i.id, i.org_name, false)}>
                      Decline
                    </button>
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
