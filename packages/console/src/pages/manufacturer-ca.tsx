// One manufacturer CA (docs/identity.md, "With a factory certificate"): its facts and PEM; with
// `identity:write`, a form that changes its name, allow-list, channels and groups (PATCH: for
// enrolments from then on), and its deletion, after a confirmation that says what stays: the
// devices it enrolled keep their certificates.
import { useState, type FormEvent } from 'react';
import { Link, useParams } from 'wouter';
import { api, problemText } from '../api/client';
import type { ManufacturerCa, ManufacturerCaChange } from '../api/types';
import { useOrg } from '../app';
import { ErrorNote, formatTime, useLoad, useTitle } from '../ui';
import { ChannelAndGroupChoices, useChannelAndGroupNames } from './channel-group-choices';
import { ExpiryMark } from './device-certificates';
import { serialsFromText, serialsToText, subjectLine } from './manufacturer-ca-form';
import { CopyButton, fieldedProblem, Patterns, useFieldProblems, type FieldedProblem } from './manufacturer-cas';

export function ManufacturerCaPage() {
  const { org, canWriteIdentity } = useOrg();
  const { id } = useParams<{ id: string }>();
  const ca = useLoad(() => api.GET('/orgs/{org}/manufacturer-cas/{id}', { params: { path: { org: org.id, id } } }), [org.id, id]);
  const names = useChannelAndGroupNames();
  const [now] = useState(() => Date.now());
  const [deleted, setDeleted] = useState<string>();
  const [problem, setProblem] = useState<string>();
  const [saved, setSaved] = useState<string>();
  const c = ca.data;
  useTitle(`${c?.name ?? 'Manufacturer CA'} · ${org.name}`);

  async function remove(target: ManufacturerCa) {
    if (!window.confirm(`Delete the manufacturer CA ${target.name}? Its factory certificates enrol no device from now on; the devices it enrolled keep their certificates.`)) return;
    const { error } = await api.DELETE('/orgs/{org}/manufacturer-cas/{id}', { params: { path: { org: org.id, id: target.id } } });
    if (error) return setProblem(problemText(error));
    setProblem(undefined);
    setDeleted(target.name);
  }

  const back = (
    <p>
      <Link href="/manufacturer-cas">← Manufacturer CAs</Link>
    </p>
  );
  if (deleted)
    return (
      <>
        {back}
        <p role="status" className="outcome">
          The manufacturer CA {deleted} is deleted: its factory certificates enrol no device from now on. The devices it enrolled keep their certificates.
        </p>
      </>
    );
  return (
    <>
      {back}
      <h2>Manufacturer CA {c?.name}</h2>
      <ErrorNote error={ca.error ?? problem} />
      {c && (
        <dl className="facts" aria-label="Manufacturer CA">
          <dt>Subject</dt>
          <dd>{subjectLine(c.subject)}</dd>
          <dt>Fingerprint (SHA-256)</dt>
          <dd>
            <code className="wrap">{c.fingerprint}</code> <CopyButton text={c.fingerprint} label="the fingerprint" />
          </dd>
          <dt>Not after</dt>
          <dd>
            {formatTime(c.not_after)} <ExpiryMark notAfter={c.not_after} now={now} />
          </dd>
          <dt>Serials allowed</dt>
          <dd>
            <Patterns serials={c.serials} />
          </dd>
          <dt>Channels</dt>
          <dd data-testid="ca-channels">{c.channel_ids.length ? c.channel_ids.map((i) => names.channel(i) ?? 'a channel').join(', ') : 'none'}</dd>
          <dt>Groups</dt>
          <dd data-testid="ca-groups">{c.group_ids.length ? c.group_ids.map((i) => names.group(i) ?? 'a group').join(', ') : 'none'}</dd>
          <dt>Added</dt>
          <dd>{formatTime(c.created_at)}</dd>
          <dt>Changed</dt>
          <dd>{formatTime(c.updated_at)}</dd>
        </dl>
      )}
      {c && (
        <details>
          <summary>The CA certificate (PEM)</summary>
          <CopyButton text={c.certificate} label="the PEM" />
          <pre className="command">
            <code>{c.certificate}</code>
          </pre>
        </details>
      )}
      {c && canWriteIdentity && (
        <>
          {/* keyed by its last change, so that the form starts again from what the platform keeps */}
          <EditForm
            key={c.updated_at}
            ca={c}
            onEdit={() => setSaved(undefined)}
            onDone={(name) => {
              setSaved(`${name} is saved: enrolments from now on follow it.`);
              ca.reload();
            }}
          />
          {saved && (
            <p role="status" className="outcome">
              {saved}
            </p>
          )}
          <section className="card stack" aria-label="Delete the CA">
            <h3>Delete the CA</h3>
            <p className="muted">Its factory certificates enrol nothing from then on. The devices it enrolled keep their registrations and certificates.</p>
            <div>
              <button type="button" className="danger" onClick={() => void remove(c)}>
                Delete {c.name}
              </button>
            </div>
          </section>
        </>
      )}
    </>
  );
}

function EditForm({ ca, onEdit, onDone }: { ca: ManufacturerCa; onEdit(): void; onDone(name: string): void }) {
  const { org } = useOrg();
  const [problem, setProblem] = useState<FieldedProblem>();
  const fields = useFieldProblems(problem);

  async function save(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const values = new FormData(e.currentTarget);
    const body: ManufacturerCaChange = {
      name: String(values.get('name') ?? '').trim(),
      serials: serialsFromText(String(values.get('serials') ?? '')),
      channel_ids: values.getAll('channel').map(String),
      group_ids: values.getAll('group').map(String),
    };
    onEdit();
    const { error } = await api.PATCH('/orgs/{org}/manufacturer-cas/{id}', { params: { path: { org: org.id, id: ca.id } }, body });
    if (error) return setProblem(fieldedProblem(error));
    onDone(body.name ?? ca.name);
  }

  return (
    <form className="card stack" aria-label="Change the CA" onSubmit={(e) => void save(e)}>
      <h3>Change the CA</h3>
      <p className="muted">For enrolments from now on: the devices it enrolled keep their certificates, channels and groups.</p>
      <label>
        Name
        <input name="name" required maxLength={200} defaultValue={ca.name} {...fields.input('name')} />
      </label>
      {fields.at('name')}
      <label>
        Serials it may enrol, one a line or separated by commas (* matches any run of characters)
        <textarea name="serials" rows={Math.min(8, ca.serials.length + 1)} required defaultValue={serialsToText(ca.serials)} {...fields.input('serials')} />
      </label>
      {fields.at('serials')}
      <ChannelAndGroupChoices
        channelsLegend="Channels its devices are connected to when they enrol"
        groupsLegend="Groups its devices join when they enrol"
        channelIds={ca.channel_ids}
        groupIds={ca.group_ids}
        channelsProblem={fields.describedBy('channels')}
        groupsProblem={fields.describedBy('groups')}
      />
      {fields.at('channels')}
      {fields.at('groups')}
      <button type="submit">Save</button>
      {fields.at()}
      {fields.at('certificate')}
    </form>
  );
}
