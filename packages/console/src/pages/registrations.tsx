// The organization's device registrations (docs/identity.md): the devices it expects, paged and
// filtered by state and serial (in the address, as the devices page keeps its view), each with the
// transitions its state allows; a form that registers one, an import of a CSV file (the CLI's
// columns, previewed row by row, all or nothing), and below them the enrolment attempts the
// platform refused, which is where an operator looks when a device does not come up.
// Changing anything needs `identity:write` (docs/permissions.md): without it no control is shown.
import { useState, type FormEvent } from 'react';
import { Link, useLocation, useSearch } from 'wouter';
import { api, problemText } from '../api/client';
import type { NewRegistration, Registration, RegistrationState } from '../api/types';
import { useOrg } from '../app';
import { registrationsFromCsv, publicKeyOf, type RegistrationRow } from '../registration-csv';
import { ErrorNote, formatTime, useDeviceNames, useLoad, useTitle, searchOf } from '../ui';
import { OutcomeNote } from './devices';
import { ChannelAndGroupChoices } from './channel-group-choices';
import { Pager, pageSize } from './pager';

const states: RegistrationState[] = ['pending', 'enrolled', 'suspended', 'revoked'];
const devices = (n: number) => `${n} device${n === 1 ? '' : 's'}`;
const bulkLimit = 1000; // registrations a request, the API's POST …/registrations/bulk maxItems

type Transition = 'suspend' | 'resume' | 'reset' | 'revoke';

/**
 * What an operator may do to a registration in each state (the platform's moves, docs/identity.md).
 * A pending one is not offered a reset (it is pending already); delete only when nothing depends on it.
 */
const allowed: Record<RegistrationState, (Transition | 'delete')[]> = {
  pending: ['revoke', 'delete'],
  enrolled: ['suspend', 'reset', 'revoke'],
  suspended: ['resume', 'reset', 'revoke'],
  revoked: ['delete'],
};

/** Asked before the moves that cannot be taken back by another click. */
const confirmations: Partial<Record<Transition | 'delete', (serial: string) => string>> = {
  reset: (s) => `Reset ${s}? Its certificates are revoked and its key forgotten: the device is disconnected and must enrol again with a token.`,
  revoke: (s) => `Revoke ${s}? Its certificates are revoked, the device is disconnected, and it can never enrol again.`,
  delete: (s) => `Delete the registration of ${s}? Its device (if any) stays.`,
};

const actionLabels: Record<Transition | 'delete', string> = { suspend: 'Suspend', resume: 'Resume', reset: 'Reset', revoke: 'Revoke', delete: 'Delete' };

interface View {
  state: RegistrationState | '';
  serial: string;
  offset: number;
}

function readView(search: string): View {
  const q = new URLSearchParams(search);
  const state = q.get('state') as RegistrationState | null;
  return { state: state && states.includes(state) ? state : '', serial: q.get('serial') ?? '', offset: Math.max(0, Number(q.get('offset')) || 0) };
}

function viewSearch(v: View): string {
  return searchOf({ state: v.state, serial: v.serial, offset: v.offset });
}

export function Registrations() {
  const { org, canWriteIdentity } = useOrg();
  const search = useSearch();
  const [, navigate] = useLocation();
  const view = readView(search);
  const show = (change: Partial<View>) => navigate(`/registrations${viewSearch({ ...view, offset: 0, ...change })}`);
  const page = useLoad(
    () =>
      api.GET('/orgs/{org}/registrations', {
        params: { path: { org: org.id }, query: { offset: view.offset, limit: pageSize, ...(view.state ? { state: view.state } : {}), ...(view.serial ? { serial: view.serial } : {}) } },
      }),
    [org.id, search],
  );
  const names = useDeviceNames(org.id, page.data?.registrations.flatMap((r) => (r.device_id ? [r.device_id] : [])) ?? []);
  const [outcome, setOutcome] = useState<{ action: string; done: number; failures: { name: string; reason: string }[] }>();
  useTitle(`Registrations · ${org.name}`);

  async function act(r: Registration, action: Transition | 'delete') {
    const ask = confirmations[action];
    if (ask && !window.confirm(ask(r.serial))) return;
    const path = { params: { path: { org: org.id, id: r.id } } };
    const { error } =
      action === 'delete'
        ? await api.DELETE('/orgs/{org}/registrations/{id}', path)
        : action === 'suspend'
          ? await api.POST('/orgs/{org}/registrations/{id}/suspend', path)
          : action === 'resume'
            ? await api.POST('/orgs/{org}/registrations/{id}/resume', path)
            : action === 'reset'
              ? await api.POST('/orgs/{org}/registrations/{id}/reset', path)
              : await api.POST('/orgs/{org}/registrations/{id}/revoke', path);
    setOutcome({ action: `${actionLabels[action]} ${r.serial}`, done: error ? 0 : 1, failures: error ? [{ name: r.serial, reason: problemText(error) }] : [] });
    page.reload();
  }

  function applyFilters(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const fields = new FormData(e.currentTarget);
    show({ state: String(fields.get('state') ?? '') as View['state'], serial: String(fields.get('serial') ?? '').trim() });
  }

  const total = page.data?.total ?? 0;
  const filtered = Boolean(view.state || view.serial);
  return (
    <>
      <h2>Registrations</h2>
      <p className="muted">
        The devices the organization expects. A device enrols against its registration with a key of its own (registered here, or with an <Link href="/enrolment-tokens">enrolment token</Link>) and gets a{' '}
        <Link href="/certificates">certificate</Link>.
      </p>
      <form role="search" aria-label="Filter registrations" className="toolbar filters" onSubmit={applyFilters} key={search}>
        <label>
          State
          <select name="state" defaultValue={view.state}>
            <option value="">Any</option>
            {states.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Serial
          <input name="serial" type="search" defaultValue={view.serial} placeholder="The exact serial" />
        </label>
        <button type="submit" className="secondary">
          Filter
        </button>
        {filtered && (
          <button type="button" className="secondary" onClick={() => show({ state: '', serial: '' })}>
            Show all registrations
          </button>
        )}
      </form>
      <OutcomeNote outcome={outcome} />
      <ErrorNote error={page.error} />
      {page.data && (
        <>
          <div className="scroll">
            <table aria-label="Registrations" className="fleet">
              <thead>
                <tr>
                  <th>Serial</th>
                  <th>Model</th>
                  <th>State</th>
                  <th>Device</th>
                  <th className="optional">Enrolled</th>
                  {canWriteIdentity && (
                    <th>
                      <span className="visually-hidden">Actions</span>
                    </th>
                  )}
                </tr>
              </thead>
              <tbody>
                {page.data.registrations.map((r) => (
                  <tr key={r.id}>
                    <td>
                      <code>{r.serial}</code>
                    </td>
                    <td>{r.model || '—'}</td>
                    <td>
                      <span className={`status ${r.state}`} data-testid="registration-state">
                        {r.state}
                      </span>
                    </td>
                    <td>{r.device_id ? <Link href={`/devices/${r.device_id}`}>{names.get(r.device_id) ?? 'device'}</Link> : '—'}</td>
                    <td className="optional">{r.enrolled_at ? formatTime(r.enrolled_at) : '—'}</td>
                    {canWriteIdentity && (
                      <td>
                        <div className="row">
                          {allowed[r.state].map((action) => (
                            <button key={action} type="button" className={action === 'revoke' || action === 'delete' || action === 'reset' ? 'danger' : 'secondary'} aria-label={`${actionLabels[action]} ${r.serial}`} onClick={() => void act(r, action)}>
                              {actionLabels[action]}
                            </button>
                          ))}
                        </div>
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {total === 0 && <p className="muted">{filtered ? 'No registration matches the filter.' : 'No registrations yet.'}</p>}
          <Pager offset={view.offset} total={total} onChange={(offset) => show({ offset })} label="registrations" always />
        </>
      )}
      {canWriteIdentity && (
        <>
          <RegisterForm onDone={page.reload} />
          <ImportForm onDone={page.reload} />
        </>
      )}
      <RefusedAttempts />
    </>
  );
}

function RegisterForm({ onDone }: { onDone(): void }) {
  const { org } = useOrg();
  const [problem, setProblem] = useState<string>();
  const [made, setMade] = useState<string>();

  async function register(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = e.currentTarget;
    const fields = new FormData(form);
    const key = publicKeyOf(String(fields.get('public_key') ?? ''));
    if (key.error) return setProblem('The public key is a PEM public key (-----BEGIN PUBLIC KEY-----, as openssl pkey -pubout writes it) or the hex SHA-256 of its DER.');
    const model = String(fields.get('model') ?? '').trim();
    const channels = fields.getAll('channel').map(String);
    const groups = fields.getAll('group').map(String);
    const body: NewRegistration = {
      serial: String(fields.get('serial') ?? '').trim(),
      ...(model ? { model } : {}),
      ...(key.key ? { public_key: key.key } : {}),
      ...(channels.length ? { channel_ids: channels } : {}),
      ...(groups.length ? { group_ids: groups } : {}),
    };
    const { data, error } = await api.POST('/orgs/{org}/registrations', { params: { path: { org: org.id } }, body });
    if (error) {
      setMade(undefined);
      return setProblem(problemText(error));
    }
    setProblem(undefined);
    setMade(`${data.serial} is registered (pending): it enrols ${data.key_fingerprint ? 'with its key alone' : 'with an enrolment token'}.`);
    form.reset();
    onDone();
  }

  return (
    <form className="card stack" aria-label="Register a device" onSubmit={(e) => void register(e)}>
      <h3>Register a device</h3>
      <div className="row">
        <label>
          Serial
          <input name="serial" required maxLength={128} pattern="[\x21-\x7e]+" title="Printable characters, no spaces" placeholder="SN-42" />
        </label>
        <label>
          Model
          <input name="model" maxLength={128} placeholder="meter" />
        </label>
      </div>
      <label>
        Public key (PEM) or its SHA-256 fingerprint, optional
        <textarea name="public_key" rows={4} placeholder={'-----BEGIN PUBLIC KEY-----\n…\n-----END PUBLIC KEY-----'} />
      </label>
      <p className="muted">With its key registered, the device enrols with its certificate request alone; without one, it needs an enrolment token.</p>
      <ChannelAndGroupChoices />
      <button type="submit">Register</button>
      {made && (
        <p role="status" className="outcome">
          {made}
        </p>
      )}
      <ErrorNote error={problem} />
    </form>
  );
}

/** Registrations from a pasted or chosen CSV file: previewed row by row, then sent in one request (all or nothing). */
function ImportForm({ onDone }: { onDone(): void }) {
  const { org } = useOrg();
  const [rows, setRows] = useState<RegistrationRow[]>();
  const [problem, setProblem] = useState<string>();
  const [refused, setRefused] = useState<string[]>();
  const [made, setMade] = useState<number>();
  const [sending, setSending] = useState(false);

  async function preview(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const fields = new FormData(e.currentTarget);
    setProblem(undefined);
    setRefused(undefined);
    setMade(undefined);
    setRows(undefined);
    const file = fields.get('file');
    const pasted = String(fields.get('csv') ?? '');
    try {
      const text = file instanceof File && file.size > 0 ? await file.text() : pasted;
      if (!text.trim()) throw new Error('Paste the CSV text or choose a file.');
      setRows(registrationsFromCsv(text));
    } catch (err) {
      setProblem(err instanceof Error ? err.message : String(err));
    }
  }

  async function send() {
    if (!rows) return;
    setSending(true);
    const registrations = rows.flatMap((r) => (r.registration ? [r.registration] : []));
    const { data, error } = await api.POST('/orgs/{org}/registrations/bulk', { params: { path: { org: org.id } }, body: { registrations } });
    setSending(false);
    if (error) {
      const serials = (error as { serials?: unknown }).serials;
      setRefused(Array.isArray(serials) ? serials.map(String) : undefined);
      return setProblem(`Nothing was registered: ${problemText(error)}`);
    }
    setRows(undefined);
    setMade(data.registrations.length);
    onDone();
  }

  const bad = rows?.filter((r) => r.error) ?? [];
  const tooMany = (rows?.length ?? 0) > bulkLimit;
  return (
    <section className="card stack" aria-label="Import registrations">
      <h3>Import registrations</h3>
      <form className="stack" aria-label="Registrations to import" onSubmit={(e) => void preview(e)}>
        <p className="muted">
          A header line naming the columns, in any order: <code>serial</code> (required), <code>model</code>, <code>public_key</code> (a PEM public key in quotes, or its SHA-256 in hex), <code>channel_ids</code> and{' '}
          <code>group_ids</code> (separated by <code>;</code>), as <code>fleetwire registrations import</code> takes them. At most {bulkLimit} rows: all are registered, or none.
        </p>
        <label>
          CSV text
          <textarea name="csv" rows={4} placeholder={'serial,model\nSN-1,meter\nSN-2,meter'} />
        </label>
        <label>
          Or a CSV file
          <input name="file" type="file" accept=".csv,text/csv" />
        </label>
        <button type="submit" className="secondary">
          Preview
        </button>
      </form>
      <ErrorNote error={problem} />
      {refused && refused.length > 0 && (
        <div role="alert" className="outcome failed" data-testid="refused-serials">
          <p>Registered already, or given twice:</p>
          <ul>
            {refused.map((s) => (
              <li key={s}>
                <code>{s}</code>
              </li>
            ))}
          </ul>
        </div>
      )}
      {made !== undefined && (
        <p role="status" className="outcome">
          {devices(made)} registered.
        </p>
      )}
      {rows && (
        <section aria-label="Preview">
          <h4>Preview: {devices(rows.length)}</h4>
          {bad.length > 0 && (
            <p role="alert" className="error">
              {bad.length} of the rows cannot be registered (below); correct them and preview again.
            </p>
          )}
          {tooMany && (
            <p role="alert" className="error">
              At most {bulkLimit} registrations at once; split the file.
            </p>
          )}
          <div className="scroll">
            <table aria-label="Registrations to import">
              <thead>
                <tr>
                  <th>Line</th>
                  <th>Serial</th>
                  <th>Model</th>
                  <th>Key</th>
                  <th>Problem</th>
                </tr>
              </thead>
              <tbody>
                {rows.slice(0, 200).map((r) => (
                  <tr key={r.line} className={r.error || refused?.includes(r.serial) ? 'bad' : undefined}>
                    <td>{r.line}</td>
                    <td>{r.serial}</td>
                    <td>{r.registration?.model}</td>
                    <td>{r.registration?.public_key ? (r.registration.public_key.startsWith('-----') ? 'PEM' : 'fingerprint') : ''}</td>
                    <td>{r.error ?? (refused?.includes(r.serial) ? 'registered already' : '')}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {rows.length > 200 && <p className="muted">The first 200 rows of {rows.length} are shown{bad.length ? `; the bad ones: lines ${bad.map((r) => r.line).join(', ')}` : ''}.</p>}
          <button type="button" disabled={bad.length > 0 || tooMany || sending} onClick={() => void send()}>
            Register {devices(rows.length)}
          </button>
        </section>
      )}
    </section>
  );
}

/** The enrolment attempts the platform refused, newest first: what an operator checks when a device does not come up. */
function RefusedAttempts() {
  const { org } = useOrg();
  const [offset, setOffset] = useState(0);
  const events = useLoad(() => api.GET('/orgs/{org}/identity-events', { params: { path: { org: org.id }, query: { action: 'enrol', outcome: 'refused', offset, limit: pageSize } } }), [org.id, offset]);
  const total = events.data?.total ?? 0;
  return (
    <section aria-label="Failed enrolment attempts">
      <h3>Failed enrolment attempts</h3>
      <p className="muted">Refusals, newest first, with the code of the step that failed (docs/identity.md lists them) and where the attempt came from.</p>
      <ErrorNote error={events.error} />
      {events.data && (
        <>
          {total === 0 ? (
            <p className="muted">No refused attempt.</p>
          ) : (
            <div className="scroll">
              <table aria-label="Failed enrolment attempts" className="fleet">
                <thead>
                  <tr>
                    <th>Time</th>
                    <th>Code</th>
                    <th>Detail</th>
                    <th className="optional">From</th>
                  </tr>
                </thead>
                <tbody>
                  {events.data.events.map((e) => (
                    <tr key={e.id}>
                      <td className="nowrap">{formatTime(e.created_at)}</td>
                      <td>
                        <code>{e.code ?? e.action}</code>
                      </td>
                      <td className="reason">{e.detail}</td>
                      <td className="optional">{e.remote ?? '—'}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <Pager offset={offset} total={total} onChange={setOffset} label="failed enrolment attempts" testId="refused-page-info" />
        </>
      )}
    </section>
  );
}
