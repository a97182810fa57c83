// One-time enrolment tokens (docs/identity.md): make one (a lifetime, optionally a serial pattern)
// and see it once, in a dialog, with the commands a device runs to enrol with it (filled in with
// the platform's address from GET /endpoints); the list of tokens (never the tokens themselves:
// the platform keeps their hashes), whether and by which registration each was used; withdraw one.
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { Link } from 'wouter';
import { api, problemText } from '../api/client';
import type { EnrolmentToken } from '../api/types';
import { useOrg } from '../app';
import { ErrorNote, formatTime, useLoad, useTitle } from '../ui';
import { Pager, pageSize } from './pager';
import { opensslCurlCommands } from './enrol-commands';

const lifetimes: [seconds: number, label: string][] = [
  [15 * 60, '15 minutes'],
  [60 * 60, '1 hour'],
  [24 * 3600, '1 day'],
  [7 * 86_400, '7 days'],
  [30 * 86_400, '30 days'], // the API's longest
];

/** How long a new enrolment token lasts: a select of `expires_in` seconds. */
export function TokenLifetime({ label, defaultSeconds }: { label: string; defaultSeconds: number }) {
  return (
    <label>
      {label}
      <select name="expires_in" defaultValue={String(defaultSeconds)}>
        {lifetimes.map(([seconds, text]) => (
          <option key={seconds} value={seconds}>
            {text}
          </option>
        ))}
      </select>
    </label>
  );
}

/** A serial for the example command: the pattern with its `*` filled in, or a placeholder. */
function exampleSerial(pattern: string | null): string {
  return pattern ? pattern.replaceAll('*', '42') : 'SN-42';
}

export function EnrolmentTokens() {
  const { org, canWriteIdentity } = useOrg();
  const [offset, setOffset] = useState(0);
  const list = useLoad(() => api.GET('/orgs/{org}/enrolment-tokens', { params: { path: { org: org.id }, query: { offset, limit: pageSize } } }), [org.id, offset]);
  const [made, setMade] = useState<EnrolmentToken & { token: string }>();
  const [problem, setProblem] = useState<string>();
  useTitle(`Enrolment tokens · ${org.name}`);

  async function create(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = e.currentTarget;
    const fields = new FormData(form);
    const pattern = String(fields.get('serial_pattern') ?? '').trim();
    const body = { expires_in: Number(fields.get('expires_in')), ...(pattern ? { serial_pattern: pattern } : {}) };
    const { data, error } = await api.POST('/orgs/{org}/enrolment-tokens', { params: { path: { org: org.id } }, body });
    if (error) return setProblem(problemText(error));
    setProblem(undefined);
    form.reset();
    setMade(data);
    list.reload();
  }

  async function withdraw(t: EnrolmentToken) {
    const { error } = await api.DELETE('/orgs/{org}/enrolment-tokens/{id}', { params: { path: { org: org.id, id: t.id } } });
    setProblem(error ? problemText(error) : undefined);
    list.reload();
  }

  const total = list.data?.total ?? 0;
  const now = Date.now();
  return (
    <>
      <h2>Enrolment tokens</h2>
      <p className="muted">
        A token enrols one device, once, before it expires: a device without a registered key sends it with its certificate request. A serial without a <Link href="/registrations">registration</Link> is registered then.
      </p>
      {canWriteIdentity && (
        <form className="card inline" aria-label="New enrolment token" onSubmit={(e) => void create(e)}>
          <TokenLifetime label="Valid for" defaultSeconds={15 * 60} />
          <label>
            Serial pattern (optional, * matches anything)
            <input name="serial_pattern" maxLength={128} pattern="[\x21-\x7e]+" title="Printable characters, no spaces" placeholder="SN-*" />
          </label>
          <button type="submit">Make a token</button>
        </form>
      )}
      <ErrorNote error={problem} />
      {made && <TokenDialog token={made} onClose={() => setMade(undefined)} />}
      <ErrorNote error={list.error} />
      {list.data && (
        <>
          <div className="scroll">
            <table aria-label="Enrolment tokens" className="fleet">
              <thead>
                <tr>
                  <th>Created</th>
                  <th>Expires</th>
                  <th>Serial pattern</th>
                  <th>Used</th>
                  {canWriteIdentity && (
                    <th>
                      <span className="visually-hidden">Actions</span>
                    </th>
                  )}
                </tr>
              </thead>
              <tbody>
                {list.data.tokens.map((t) => {
                  const expired = Date.parse(t.expires_at) <= now;
                  return (
                    <tr key={t.id}>
                      <td className="nowrap">{formatTime(t.created_at)}</td>
                      <td className="nowrap">
                        {formatTime(t.expires_at)}
                        {expired && !t.used_at && <span className="muted"> (expired)</span>}
                      </td>
                      <td>{t.serial_pattern ? <code>{t.serial_pattern}</code> : 'any serial'}</td>
                      <td data-testid="token-use">{t.used_at ? <UsedBy at={t.used_at} registrationId={t.registration_id} /> : 'not yet'}</td>
                      {canWriteIdentity && (
                        <td>
                          {!t.used_at && (
                            <button type="button" className="danger" aria-label={`Withdraw the token made ${formatTime(t.created_at)}`} onClick={() => void withdraw(t)}>
                              Withdraw
                            </button>
                          )}
                        </td>
                      )}
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          {total === 0 && <p className="muted">No enrolment tokens.</p>}
          <Pager offset={offset} total={total} onChange={setOffset} label="enrolment tokens" />
        </>
      )}
    </>
  );
}

/** When a token was used and the registration it enrolled, by its serial (linked to the registrations filtered to it). */
function UsedBy({ at, registrationId }: { at: string; registrationId: string | null }) {
  const { org } = useOrg();
  const registration = useLoad(
    () => (registrationId ? api.GET('/orgs/{org}/registrations/{id}', { params: { path: { org: org.id, id: registrationId } } }) : Promise.resolve({ data: undefined })),
    [org.id, registrationId],
  );
  const serial = registration.data?.serial;
  return (
    <>
      {formatTime(at)}
      {serial && (
        <>
          {' by '}
          <Link href={`/registrations?serial=${encodeURIComponent(serial)}`}>{serial}</Link>
        </>
      )}
      {registration.error && <span className="muted"> (its registration was deleted)</span>}
    </>
  );
}

/** The new token, shown once in a modal dialog, with a copy button and the commands that enrol a device with it. */
function TokenDialog({ token, onClose }: { token: EnrolmentToken & { token: string }; onClose(): void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const endpoints = useLoad(() => api.GET('/endpoints'), []);
  const [copied, setCopied] = useState<string>();
  useEffect(() => {
    const d = dialog.current;
    // removed from the page with the component, the dialog's modal state ends with it: no close() on unmount
    if (d && !d.open) d.showModal();
  }, []);
  const copy = (what: string, text: string) => void navigator.clipboard.writeText(text).then(() => setCopied(what));
  const http = endpoints.data?.http ?? location.origin;
  return (
    <dialog ref={dialog} className="token-dialog" aria-labelledby="token-title" data-testid="token-dialog" onClose={onClose}>
      <h3 id="token-title">The enrolment token, shown only now</h3>
      <p>
        It enrols one device{token.serial_pattern ? <> whose serial matches <code>{token.serial_pattern}</code></> : null} until {formatTime(token.expires_at)}. The platform keeps only its hash: copy it now.
      </p>
      <div className="row">
        <code data-testid="token-value">{token.token}</code>
        <button type="button" onClick={() => copy('token', token.token)}>
          {copied === 'token' ? 'Copied' : 'Copy'}
        </button>
      </div>
      {opensslCurlCommands(http, token.token, exampleSerial(token.serial_pattern)).map((c) => (
        <figure className="command" key={c.title}>
          <figcaption className="row">
            <strong>{c.title}</strong>
            <button type="button" className="secondary" aria-label={`${copied === c.title ? 'Copied' : 'Copy'}: ${c.title}`} onClick={() => copy(c.title, c.text)}>
              {copied === c.title ? 'Copied' : 'Copy'}
            </button>
          </figcaption>
          <pre className="command" data-testid="command">
            <code>{c.text}</code>
          </pre>
        </figure>
      ))}
      <p className="muted">
        Then the device connects to MQTT over TLS with <code>device.pem</code> and <code>device.key</code>
        {endpoints.data?.mqtts ? (
          <>
            {' '}
            at <code>{endpoints.data.mqtts}</code>
          </>
        ) : null}
        .
      </p>
      <button type="button" className="secondary" onClick={() => dialog.current?.close()}>
        Done
      </button>
    </dialog>
  );
}
