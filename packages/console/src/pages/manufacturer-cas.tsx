// The organization's manufacturer CAs (docs/identity.md, "With a factory certificate"): device
// makers' CAs whose factory certificates enrol a device without a token, when its serial matches
// the CA's allow-list. The list, paged (name, subject, fingerprint with a copy button, serial
// patterns, when the CA expires as the certificates page marks it, channels), and a form that adds
// one (the PEM pasted or read from a file, the allow-list, what its devices join), showing the
// platform's refusal by the field it concerns. A CA's own page changes and deletes it
// (manufacturer-ca.tsx). Changing anything needs `identity:write`: without it no control is shown.
import { useId, useState, type FormEvent } from 'react';
import { Link } from 'wouter';
import { api, problemText } from '../api/client';
import type { ManufacturerCa, NewManufacturerCa } from '../api/types';
import { useOrg } from '../app';
import { ErrorNote, formatTime, useLoad, useTitle } from '../ui';
import { ChannelAndGroupChoices, useChannelAndGroupNames } from './channel-group-choices';
import { ExpiryMark } from './device-certificates';
import { fieldOfProblem, serialsFromText, shortFingerprint, subjectLine, type CaField } from './manufacturer-ca-form';
import { Pager, pageSize } from './pager';

/** A refusal of the platform, with the field it concerns (none: the form's as a whole). */
export interface FieldedProblem {
  field: CaField | undefined;
  text: string;
}

export function fieldedProblem(problem: unknown): FieldedProblem {
  return { field: fieldOfProblem(problem), text: problemText(problem) };
}

/**
 * The ids a form's fields point to (aria-describedby) when the refusal concerns them, and the
 * refusal itself where it is shown: under its field, or at the end of the form when it has none.
 */
export function useFieldProblems(problem: FieldedProblem | undefined) {
  const base = useId();
  const idOf = (field: CaField) => `${base}-${field}-problem`;
  return {
    /** The props of a field's input: marked invalid and described by the refusal when it concerns it. */
    input: (field: CaField) => (problem?.field === field ? { 'aria-invalid': true, 'aria-describedby': idOf(field) } : {}),
    /** The id a fieldset is described by, when the refusal concerns it. */
    describedBy: (field: CaField) => (problem?.field === field ? idOf(field) : undefined),
    /** The refusal, shown under `field` (or, without a field, where the form's own note goes). */
    at: (field?: CaField) =>
      problem && problem.field === field ? (
        <p role="alert" className="error field-problem" id={field ? idOf(field) : undefined} data-testid={field ? `${field}-problem` : 'form-problem'}>
          {problem.text}
        </p>
      ) : null,
  };
}

/** A button that copies `text`, saying so once it did. */
export function CopyButton({ text, label, className = 'secondary' }: { text: string; label: string; className?: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <button type="button" className={className} aria-label={`${copied ? 'Copied' : 'Copy'}: ${label}`} onClick={() => void navigator.clipboard.writeText(text).then(() => setCopied(true))}>
      {copied ? 'Copied' : 'Copy'}
    </button>
  );
}

/** The allow-list, one pattern a line. */
export function Patterns({ serials }: { serials: readonly string[] }) {
  return (
    <ul className="patterns" data-testid="patterns">
      {serials.map((s) => (
        <li key={s}>
          <code>{s}</code>
        </li>
      ))}
    </ul>
  );
}

export function ManufacturerCas() {
  const { org, canWriteIdentity } = useOrg();
  const [offset, setOffset] = useState(0);
  const list = useLoad(() => api.GET('/orgs/{org}/manufacturer-cas', { params: { path: { org: org.id }, query: { offset, limit: pageSize } } }), [org.id, offset]);
  const names = useChannelAndGroupNames();
  const [now] = useState(() => Date.now());
  useTitle(`Manufacturer CAs · ${org.name}`);

  const total = list.data?.total ?? 0;
  return (
    <>
      <h2>Manufacturer CAs</h2>
      <p className="muted">
        A device maker&apos;s CA whose factory certificates enrol a device without a token: the device presents its factory certificate as its TLS client certificate over HTTPS (<code>POST /enrol</code> or EST), and its serial must match the
        CA&apos;s allow-list. A device without a <Link href="/registrations">registration</Link> gets one, with the CA&apos;s channels and groups.
      </p>
      <ErrorNote error={list.error} />
      {list.data && (
        <>
          <div className="scroll">
            <table aria-label="Manufacturer CAs" className="fleet">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Subject</th>
                  <th>Fingerprint (SHA-256)</th>
                  <th>Serials allowed</th>
                  <th>Not after</th>
                  <th className="optional">Channels</th>
                </tr>
              </thead>
              <tbody>
                {list.data.manufacturer_cas.map((ca) => (
                  <tr key={ca.id}>
                    <td>
                      <Link href={`/manufacturer-cas/${ca.id}`}>{ca.name}</Link>
                    </td>
                    <td className="reason">{subjectLine(ca.subject)}</td>
                    <td>
                      <span className="fingerprint">
                        <code title={ca.fingerprint}>{shortFingerprint(ca.fingerprint)}</code>
                        <CopyButton text={ca.fingerprint} label={`the fingerprint of ${ca.name}`} />
                      </span>
                    </td>
                    <td>
                      <Patterns serials={ca.serials} />
                    </td>
                    <td>
                      {formatTime(ca.not_after)} <ExpiryMark notAfter={ca.not_after} now={now} />
                    </td>
                    <td className="optional" data-testid="ca-channels">
                      {ca.channel_ids.length ? ca.channel_ids.map((id) => names.channel(id) ?? 'a channel').join(', ') : '—'}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {total === 0 && <p className="muted">No manufacturer CAs yet: devices enrol with an enrolment token or a registered key.</p>}
          <Pager offset={offset} total={total} onChange={setOffset} label="manufacturer CAs" />
        </>
      )}
      {canWriteIdentity && <AddForm onDone={list.reload} />}
    </>
  );
}

/** The CA's PEM as the form sends it: the text pasted, or the file chosen (read into the text box, so that it shows). */
function AddForm({ onDone }: { onDone(): void }) {
  const { org } = useOrg();
  const [pem, setPem] = useState('');
  const [problem, setProblem] = useState<FieldedProblem>();
  const [made, setMade] = useState<ManufacturerCa>();
  const fields = useFieldProblems(problem);

  async function readFile(file: File | undefined) {
    if (!file) return;
    setPem(await file.text());
  }

  async function add(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = e.currentTarget;
    const values = new FormData(form);
    setMade(undefined);
    if (!pem.trim()) return setProblem({ field: 'certificate', text: 'Paste the CA certificate (PEM, -----BEGIN CERTIFICATE-----) or choose its file.' });
    const channels = values.getAll('channel').map(String);
    const groups = values.getAll('group').map(String);
    const body: NewManufacturerCa = {
      name: String(values.get('name') ?? '').trim(),
      certificate: pem,
      serials: serialsFromText(String(values.get('serials') ?? '')),
      ...(channels.length ? { channel_ids: channels } : {}),
      ...(groups.length ? { group_ids: groups } : {}),
    };
    const { data, error } = await api.POST('/orgs/{org}/manufacturer-cas', { params: { path: { org: org.id } }, body });
    if (error) return setProblem(fieldedProblem(error));
    setProblem(undefined);
    setMade(data);
    setPem('');
    form.reset();
    onDone();
  }

  return (
    <form className="card stack" aria-label="Add a manufacturer CA" onSubmit={(e) => void add(e)}>
      <h3>Add a manufacturer CA</h3>
      <label>
        Name
        <input name="name" required maxLength={200} placeholder="Acme" {...fields.input('name')} />
      </label>
      {fields.at('name')}
      <label>
        CA certificate (PEM)
        <textarea name="certificate" rows={6} value={pem} onChange={(e) => setPem(e.target.value)} placeholder={'-----BEGIN CERTIFICATE-----\n…\n-----END CERTIFICATE-----'} {...fields.input('certificate')} />
      </label>
      <label>
        Or its file
        <input name="file" type="file" accept=".pem,.crt,.cer,application/x-pem-file" onChange={(e) => void readFile(e.target.files?.[0])} />
      </label>
      {fields.at('certificate')}
      <label>
        Serials it may enrol, one a line or separated by commas (* matches any run of characters)
        <textarea name="serials" rows={3} required placeholder={'AC-*\nAC-LEGACY-7'} {...fields.input('serials')} />
      </label>
      {fields.at('serials')}
      <ChannelAndGroupChoices
        channelsLegend="Channels its devices are connected to when they enrol"
        groupsLegend="Groups its devices join when they enrol"
        channelsProblem={fields.describedBy('channels')}
        groupsProblem={fields.describedBy('groups')}
      />
      {fields.at('channels')}
      {fields.at('groups')}
      <p className="muted">A device that has a registration already enrols against it, with its own channels and groups.</p>
      <button type="submit">Add the CA</button>
      {fields.at()}
      {made && (
        <p role="status" className="outcome">
          {made.name} is added: its devices whose serial matches {made.serials.length === 1 ? 'the pattern' : `one of the ${made.serials.length} patterns`} enrol with their factory certificate.
        </p>
      )}
    </form>
  );
}
