// A channel's stored messages, a page at a time, as the readers API filters and pages them
// (GET /channels/{id}/messages): SenML records, JSON documents or opaque payloads; the same
// filter's records as a CSV file, fetched with the access token and saved from a Blob (the token
// never goes into a URL).
import { useState, type FormEvent } from 'react';
import { api, problemText } from '../api/client';
import { ErrorNote, useLoad } from '../ui';
import { bytesOf, formatSeconds, hexOf, rfc3339, saveBlob, storedKindOf, textOf, type StoredDocument, type StoredKind, type StoredPayload, type StoredRecord } from './messages';

type Comparator = 'eq' | 'lt' | 'le' | 'gt' | 'ge';

interface Filter {
  kind: StoredKind;
  name?: string;
  subtopic?: string;
  publisher?: string;
  from?: string;
  to?: string;
  comparator?: Comparator;
  v?: number;
}

const comparators: Record<Comparator, string> = { eq: '=', lt: '<', le: '≤', gt: '>', ge: '≥' };
const pageSizes = [20, 50, 100];
const kinds: Record<StoredKind, string> = { senml: 'SenML records', json: 'JSON documents', binary: 'Opaque payloads' };

function filterOf(form: HTMLFormElement, kind: StoredKind): Filter {
  const fields = new FormData(form);
  const text = (name: string) => String(fields.get(name) ?? '').trim() || undefined;
  const f: Filter = { kind, subtopic: text('subtopic'), publisher: text('publisher'), from: rfc3339(text('from') ?? ''), to: rfc3339(text('to') ?? '') };
  if (kind === 'senml') {
    f.name = text('name');
    const v = text('v');
    if (v !== undefined && !Number.isNaN(Number(v))) {
      f.v = Number(v);
      f.comparator = String(fields.get('comparator')) as Comparator;
    }
  }
  return f;
}

/** The filter as the readers API's query; undefined fields are left out of the URL. */
function queryOf(f: Filter) {
  return { type: f.kind, name: f.name, subtopic: f.subtopic, publisher: f.publisher, from: f.from, to: f.to, comparator: f.comparator, v: f.v };
}

function valueOf(r: StoredRecord): string {
  const v = r.value ?? r.sum ?? r.string_value ?? r.bool_value ?? r.data_value;
  if (v === undefined) return '—';
  return r.unit ? `${String(v)} ${r.unit}` : String(v);
}

function payloadShown(p: StoredPayload): string {
  const bytes = bytesOf(p.payload);
  return textOf(bytes) ?? hexOf(bytes);
}

export function ChannelHistory({ channel }: { channel: { id: string; name: string; contentType: string } }) {
  const storedAs = storedKindOf(channel.contentType);
  const [filter, setFilter] = useState<Filter>({ kind: storedAs });
  const [offset, setOffset] = useState(0);
  const [limit, setLimit] = useState(pageSizes[0]!);
  const [newestFirst, setNewestFirst] = useState(true);
  const [kind, setKind] = useState<StoredKind>(storedAs);
  const [downloadError, setDownloadError] = useState<string>();
  const [downloading, setDownloading] = useState(false);
  const dir = newestFirst ? 'desc' : 'asc';
  const page = useLoad(
    () => api.GET('/channels/{id}/messages', { params: { path: { id: channel.id }, query: { ...queryOf(filter), offset, limit, dir } } }),
    [channel.id, filter, offset, limit, dir],
  );

  function apply(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    setFilter(filterOf(e.currentTarget, kind));
    setOffset(0);
  }

  async function download() {
    setDownloading(true);
    const { data, error } = await api.GET('/channels/{id}/messages', { params: { path: { id: channel.id }, query: { ...queryOf(filter), dir, format: 'csv' } }, parseAs: 'blob' });
    setDownloading(false);
    if (error !== undefined || !data) return setDownloadError(problemText(error));
    setDownloadError(undefined);
    saveBlob(data, `${channel.name}.csv`);
  }

  const total = page.data?.total ?? 0;
  const shownKind = filter.kind;
  return (
    <section aria-labelledby="history-heading">
      <h3 id="history-heading">Stored messages</h3>
      <form className="toolbar filters" onSubmit={apply} aria-label="Filter stored messages">
        <label>
          Stored as
          <select name="kind" value={kind} onChange={(e) => setKind(e.target.value as StoredKind)}>
            {Object.entries(kinds).map(([k, label]) => (
              <option key={k} value={k}>
                {label}
              </option>
            ))}
          </select>
        </label>
        {kind === 'senml' && (
          <label>
            Name
            <input name="name" maxLength={1024} placeholder="temp" />
          </label>
        )}
        <label>
          Subtopic
          <input name="subtopic" maxLength={1024} placeholder="lab/bench-2" />
        </label>
        <label>
          Publisher
          <input name="publisher" maxLength={256} placeholder="Device id" />
        </label>
        <label>
          From
          <input name="from" type="datetime-local" step={1} />
        </label>
        <label>
          To
          <input name="to" type="datetime-local" step={1} />
        </label>
        {kind === 'senml' && (
          <>
            <label>
              Value is
              <select name="comparator" defaultValue="eq">
                {Object.entries(comparators).map(([c, sign]) => (
                  <option key={c} value={c}>
                    {sign}
                  </option>
                ))}
              </select>
            </label>
            <label>
              Value
              <input name="v" type="number" step="any" placeholder="Any" />
            </label>
          </>
        )}
        <button type="submit">Filter</button>
      </form>
      <div className="toolbar">
        <label>
          Per page
          <select
            value={limit}
            onChange={(e) => {
              setLimit(Number(e.target.value));
              setOffset(0);
            }}
          >
            {pageSizes.map((n) => (
              <option key={n}>{n}</option>
            ))}
          </select>
        </label>
        <label className="check">
          <input
            type="checkbox"
            checked={newestFirst}
            onChange={(e) => {
              setNewestFirst(e.target.checked);
              setOffset(0);
            }}
          />{' '}
          Newest first
        </label>
        {shownKind === 'senml' && (
          <button type="button" className="secondary" disabled={downloading} onClick={() => void download()}>
            {downloading ? 'Downloading…' : 'Download CSV'}
          </button>
        )}
      </div>
      <ErrorNote error={downloadError} />
      <ErrorNote error={page.error} />
      {page.data && (
        <>
          <div className="scroll">
            {shownKind === 'senml' && <RecordTable records={page.data.messages as StoredRecord[]} />}
            {shownKind === 'json' && <DocumentTable documents={page.data.messages as StoredDocument[]} />}
            {shownKind === 'binary' && <PayloadTable payloads={page.data.messages as StoredPayload[]} />}
          </div>
          {total === 0 && <p className="muted">No stored message matches the filter.</p>}
          <div className="pager">
            <button type="button" className="secondary" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - limit))}>
              Previous
            </button>
            <span data-testid="history-page-info">
              {total === 0 ? '0' : `${offset + 1}–${Math.min(offset + limit, total)}`} of {total}
            </span>
            <button type="button" className="secondary" disabled={offset + limit >= total} onClick={() => setOffset(offset + limit)}>
              Next
            </button>
          </div>
        </>
      )}
    </section>
  );
}

function RecordTable({ records }: { records: StoredRecord[] }) {
  return (
    <table aria-label="Stored records" className="fleet">
      <thead>
        <tr>
          <th>Time</th>
          <th>Name</th>
          <th>Value</th>
          <th className="optional">Subtopic</th>
          <th className="optional">Publisher</th>
          <th className="optional">Protocol</th>
        </tr>
      </thead>
      <tbody>
        {records.map((r, i) => (
          <tr key={i}>
            <td>{formatSeconds(r.time)}</td>
            <td>{r.name}</td>
            <td>{valueOf(r)}</td>
            <td className="optional">{r.subtopic || '—'}</td>
            <td className="optional">
              <code>{r.publisher}</code>
            </td>
            <td className="optional">{r.protocol}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function DocumentTable({ documents }: { documents: StoredDocument[] }) {
  return (
    <table aria-label="Stored documents" className="fleet">
      <thead>
        <tr>
          <th>Time</th>
          <th>Document</th>
          <th className="optional">Subtopic</th>
          <th className="optional">Publisher</th>
        </tr>
      </thead>
      <tbody>
        {documents.map((d, i) => (
          <tr key={`${d.id}-${i}`}>
            <td>{formatSeconds(d.time)}</td>
            <td>
              <code className="payload">{JSON.stringify(d.document)}</code>
            </td>
            <td className="optional">{d.subtopic || '—'}</td>
            <td className="optional">
              <code>{d.publisher}</code>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function PayloadTable({ payloads }: { payloads: StoredPayload[] }) {
  return (
    <table aria-label="Stored payloads" className="fleet">
      <thead>
        <tr>
          <th>Time</th>
          <th>Payload</th>
          <th>Size</th>
          <th className="optional">Content type</th>
          <th className="optional">Publisher</th>
        </tr>
      </thead>
      <tbody>
        {payloads.map((p) => (
          <tr key={p.id}>
            <td>{formatSeconds(p.time)}</td>
            <td>
              <code className="payload">{payloadShown(p)}</code>
            </td>
            <td>
              {p.size} bytes{p.truncated ? ' (cut)' : ''}
            </td>
            <td className="optional">
              <code>{p.content_type}</code>
            </td>
            <td className="optional">
              <code>{p.publisher}</code>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
