// Many devices at once: N named with a prefix, a pasted list of names, or a CSV file (the columns
// of the CLI's `devices import`). Every row is previewed with what is wrong with it before anything
// is sent; the platform then creates them all in one request, all or none, and their secrets are
// shown once, with a CSV file of id, name and secret to download (made in the browser: a blob: URL
// behind a download link, which the Content-Security-Policy allows as it runs no script).
import { useEffect, useState, type FormEvent } from 'react';
import { Link } from 'wouter';
import { api, problemText } from '../api/client';
import { useOrg } from '../app';
import { devicesFromCsv, toCsv, type CsvRow } from '../csv';
import { ErrorNote, useTitle } from '../ui';

const bulkLimit = 1000; // devices a request, the API's POST /orgs/{org}/devices/bulk maxItems

type Source = 'prefix' | 'list' | 'csv';

function namedRows(names: string[]): CsvRow[] {
  return names.map((name, i) => {
    const row = { line: i + 1, name };
    if (!name) return { ...row, error: 'the name is empty' };
    if (name.length > 256) return { ...row, error: 'the name is longer than 256 characters' };
    return { ...row, device: { name } };
  });
}

interface Created {
  id: string;
  name: string;
  secret: string;
}

/** The created devices with their secrets, shown once, and the same as a CSV file to download. */
function CreatedSecrets({ devices, onDone }: { devices: Created[]; onDone(): void }) {
  const [href, setHref] = useState<string>();
  useEffect(() => {
    const blob = new Blob([toCsv(['id', 'name', 'secret'], devices.map((d) => [d.id, d.name, d.secret]))], { type: 'text/csv' });
    const url = URL.createObjectURL(blob);
    setHref(url);
    return () => URL.revokeObjectURL(url);
  }, [devices]);
  return (
    <section className="secret" aria-label="Device secrets" data-testid="secrets">
      <p>
        <strong>{devices.length} devices created. Their secrets, shown only now:</strong> download them or copy them to the devices; they cannot be read again.
      </p>
      <div className="row">
        {href && (
          <a className="button" href={href} download="device-secrets.csv">
            Download id, name, secret (CSV)
          </a>
        )}
        <button type="button" className="secondary" onClick={onDone}>
          Done
        </button>
      </div>
      <div className="scroll">
        <table aria-label="Created devices">
          <thead>
            <tr>
              <th>Name</th>
              <th>Secret</th>
            </tr>
          </thead>
          <tbody>
            {devices.map((d) => (
              <tr key={d.id}>
                <td>
                  <Link href={`/devices/${d.id}`}>{d.name}</Link>
                </td>
                <td>
                  <code>{d.secret}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

export function DeviceImport() {
  const { org, canEdit } = useOrg();
  const [source, setSource] = useState<Source>('prefix');
  const [rows, setRows] = useState<CsvRow[]>();
  const [problem, setProblem] = useState<string>();
  const [created, setCreated] = useState<Created[]>();
  const [sending, setSending] = useState(false);
  useTitle(`Create devices · ${org.name}`);

  async function preview(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const fields = new FormData(e.currentTarget);
    setProblem(undefined);
    setRows(undefined);
    try {
      if (source === 'prefix') {
        const count = Number(fields.get('count'));
        const prefix = String(fields.get('prefix') ?? '').trim();
        const width = String(count).length;
        setRows(namedRows(Array.from({ length: count }, (_, k) => `${prefix}${String(k + 1).padStart(width, '0')}`)));
      } else if (source === 'list') {
        const names = String(fields.get('names') ?? '')
          .split(/\r?\n/)
          .map((n) => n.trim())
          .filter(Boolean);
        if (!names.length) throw new Error('The list holds no name: one device name a line.');
        setRows(namedRows(names));
      } else {
        const file = fields.get('file');
        if (!(file instanceof File) || file.size === 0) throw new Error('Choose a CSV file.');
        setRows(devicesFromCsv(await file.text()));
      }
    } catch (err) {
      setProblem(err instanceof Error ? err.message : String(err));
    }
  }

  async function send() {
    if (!rows) return;
    setSending(true);
    const devices = rows.flatMap((r) => (r.device ? [r.device] : []));
    const { data, error } = await api.POST('/orgs/{org}/devices/bulk', { params: { path: { org: org.id } }, body: { devices } });
    setSending(false);
    if (error) return setProblem(problemText(error));
    setRows(undefined);
    setCreated(data.devices.map((d) => ({ id: d.id, name: d.name, secret: d.secret })));
  }

  const bad = rows?.filter((r) => r.error) ?? [];
  const tooMany = (rows?.length ?? 0) > bulkLimit;
  return (
    <>
      <p>
        <Link href="/devices">← Devices</Link>
      </p>
      <h2>Create devices</h2>
      {!canEdit && <p className="muted">Your role in the organization does not create devices.</p>}
      {canEdit && !created && (
        <form className="card stack" onSubmit={(e) => void preview(e)} aria-label="Devices to create">
          <fieldset className="row">
            <legend>From</legend>
            {(
              [
                ['prefix', 'A name prefix and a count'],
                ['list', 'A list of names'],
                ['csv', 'A CSV file'],
              ] as const
            ).map(([value, label]) => (
              <label key={value} className="check">
                <input
                  type="radio"
                  name="source"
                  value={value}
                  checked={source === value}
                  onChange={() => {
                    setSource(value);
                    setRows(undefined);
                    setProblem(undefined);
                  }}
                />{' '}
                {label}
              </label>
            ))}
          </fieldset>
          {source === 'prefix' && (
            <div className="row">
              <label>
                Name prefix
                <input name="prefix" required maxLength={240} placeholder="sensor-" />
              </label>
              <label>
                How many
                <input name="count" type="number" required min={1} max={bulkLimit} defaultValue={10} />
              </label>
            </div>
          )}
          {source === 'list' && (
            <label>
              Names, one a line
              <textarea name="names" rows={6} required />
            </label>
          )}
          {source === 'csv' && (
            <>
              <label>
                CSV file
                <input name="file" type="file" accept=".csv,text/csv" required />
              </label>
              <p className="muted">
                A header line naming the columns, in any order: <code>name</code> (required), <code>tags</code> (separated by <code>;</code>), <code>metadata</code> (a JSON object) and <code>status</code> (<code>enabled</code> or{' '}
                <code>disabled</code>), as <code>fleetwire devices import</code> takes them.
              </p>
            </>
          )}
          <button type="submit" className="secondary">
            Preview
          </button>
        </form>
      )}
      <ErrorNote error={problem} />
      {rows && (
        <section aria-label="Preview">
          <h3>Preview: {rows.length} devices</h3>
          {bad.length > 0 && (
            <p role="alert" className="error">
              {bad.length} of the rows cannot be created (below); correct them and preview again. The platform creates all the devices or none.
            </p>
          )}
          {tooMany && (
            <p role="alert" className="error">
              At most {bulkLimit} devices at once; split the list.
            </p>
          )}
          <div className="scroll">
            <table aria-label="Devices to create">
              <thead>
                <tr>
                  <th>{source === 'csv' ? 'Line' : '#'}</th>
                  <th>Name</th>
                  <th>Tags</th>
                  <th>Metadata</th>
                  <th>Problem</th>
                </tr>
              </thead>
              <tbody>
                {rows.slice(0, 200).map((r) => (
                  <tr key={r.line} className={r.error ? 'bad' : undefined}>
                    <td>{r.line}</td>
                    <td>{r.name}</td>
                    <td>{r.device?.tags?.join(', ')}</td>
                    <td>{r.device?.metadata && <code>{JSON.stringify(r.device.metadata)}</code>}</td>
                    <td>{r.error}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {rows.length > 200 && <p className="muted">The first 200 rows of {rows.length} are shown{bad.length ? `; the bad ones: lines ${bad.map((r) => r.line).join(', ')}` : ''}.</p>}
          <button type="button" disabled={bad.length > 0 || tooMany || sending} onClick={() => void send()}>
            Create {rows.length} devices
          </button>
        </section>
      )}
      {created && <CreatedSecrets devices={created} onDone={() => setCreated(undefined)} />}
    </>
  );
}
