// The identity audit trail (GET /orgs/{org}/identity-events): every registration, token,
// enrolment, renewal, supersession and revocation, newest first, in words (identity-words.ts),
// filtered by action and outcome (in the address, as the other lists keep their view).
import type { FormEvent } from 'react';
import { useLocation, useSearch } from 'wouter';
import { api } from '../api/client';
import { useOrg } from '../app';
import { ErrorNote, formatTime, searchOf, useLoad, useTitle } from '../ui';
import { actionWords, actions, actorWords, eventWords, type IdentityAction } from './identity-words';
import { Pager, pageSize } from './pager';

interface View {
  action: IdentityAction | '';
  outcome: 'ok' | 'refused' | '';
  offset: number;
}

function readView(search: string): View {
  const q = new URLSearchParams(search);
  const action = q.get('action') as IdentityAction | null;
  const outcome = q.get('outcome');
  return { action: action && actions.includes(action) ? action : '', outcome: outcome === 'ok' || outcome === 'refused' ? outcome : '', offset: Math.max(0, Number(q.get('offset')) || 0) };
}

export function IdentityEvents() {
  const { org } = useOrg();
  const search = useSearch();
  const [, navigate] = useLocation();
  const view = readView(search);
  const show = (change: Partial<View>) => navigate(`/identity-events${searchOf({ ...view, offset: 0, ...change })}`);
  const events = useLoad(
    () =>
      api.GET('/orgs/{org}/identity-events', {
        params: { path: { org: org.id }, query: { offset: view.offset, limit: pageSize, ...(view.action ? { action: view.action } : {}), ...(view.outcome ? { outcome: view.outcome } : {}) } },
      }),
    [org.id, search],
  );
  useTitle(`Identity events · ${org.name}`);

  function applyFilters(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const fields = new FormData(e.currentTarget);
    show({ action: String(fields.get('action') ?? '') as View['action'], outcome: String(fields.get('outcome') ?? '') as View['outcome'] });
  }

  const total = events.data?.total ?? 0;
  return (
    <>
      <h2>Identity events</h2>
      <p className="muted">The audit trail of device identity, newest first: who did what, from where, and for a refusal the code of the step that failed.</p>
      <form role="search" aria-label="Filter identity events" className="toolbar filters" onSubmit={applyFilters} key={search}>
        <label>
          Event
          <select name="action" defaultValue={view.action}>
            <option value="">Any</option>
            {actions.map((a) => (
              <option key={a} value={a}>
                {actionWords[a]}
              </option>
            ))}
          </select>
        </label>
        <label>
          Outcome
          <select name="outcome" defaultValue={view.outcome}>
            <option value="">Any</option>
            <option value="ok">Done</option>
            <option value="refused">Refused</option>
          </select>
        </label>
        <button type="submit" className="secondary">
          Filter
        </button>
      </form>
      <ErrorNote error={events.error} />
      {events.data && (
        <>
          <div className="scroll">
            <table aria-label="Identity events" className="fleet">
              <thead>
                <tr>
                  <th>Time</th>
                  <th>Event</th>
                  <th>Detail</th>
                  <th className="optional">By</th>
                  <th className="optional">From</th>
                </tr>
              </thead>
              <tbody>
                {events.data.events.map((e) => (
                  <tr key={e.id} className={e.outcome === 'refused' ? 'bad' : undefined}>
                    <td className="nowrap">{formatTime(e.created_at)}</td>
                    <td data-testid="event">{eventWords(e)}</td>
                    <td className="reason">{e.detail}</td>
                    <td className="optional">{actorWords(e.actor)}</td>
                    <td className="optional">{e.remote ?? '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {total === 0 && <p className="muted">No event matches.</p>}
          <Pager offset={view.offset} total={total} onChange={(offset) => show({ offset })} label="identity events" always />
        </>
      )}
    </>
  );
}
