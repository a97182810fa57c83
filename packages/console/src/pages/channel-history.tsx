// A channel's stored messages, a page at a time, as the readers API filters and pages them
// (GET /channels/{id}/messages): SenML records, JSON documents or opaque payloads; the same
// filter's records as a CSV file, fetched with the access token and saved from a Blob (the token
// never goes into a URL). The filter, the page and the order are in the address
// (`?view=history&name=temp&dir=asc`), so a reload or a link shows the same view.
import { useState, type FormEvent } from 'react';
import { useLocation, useSearch } from 'wouter';
import { api, problemText } from '../api/client';
import { ErrorNote, useLoad } from '../ui';
import { bytesOf, formatSeconds, hexOf, localInput, rfc3339, saveBlob, storedKindOf, textOf, type StoredDocument, type StoredKind, type StoredPayload, type StoredRecord } from './messages';

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

interface View extends Filter {
  offset: number;
  limit: number;
  dir: 'asc' | 'desc';
}

const isKind = (k: string | null): k is StoredKind => k === 'senml' || k === 'json' || k === 'binary';
const isComparator = (c: string | null): c is Comparator => c !== null && c in comparators;

/** The view in the address; what is not there is the default (the channel's kind, the first page of 20, newest first). */
function readView(search: string, storedAs: StoredKind): View {
  const q = new URLSearchParams(search);
  const text = (key: string) => q.get(key) || undefined;
  const kind = q.get('kind');
  const view: View = { kind: isKind(kind) ? kind : storedAs, subtopic: text('subtopic'), publisher: text('publisher'), from: text('from'), to: text('to'), offset: Math.max(0, Number(q.get('offset')) || 0), limit: pageSizes.includes(Number(q.get('limit'))) ? Number(q.get('limit')) : pageSizes[0]!, dir: q.get('dir') === 'asc' ? 'asc' : 'desc' };
  if (view.kind === 'senml') {
    view.name = text('name');
    const v = q.get('v');
    if (v !== null && v !== '' && !Number.isNaN(Number(v))) {
      view.v = Number(v);
      const c = q.get('comparator');
      view.comparator = isComparator(c) ? c : 'eq';
    }
  }
  return view;
}

/** The address's query of a view: only what is not the default. */
function viewSearch(v: View, storedAs: StoredKind): string {
  const q = new URLSearchParams({ view: 'history' });
  if (v.kind !== storedAs) q.set('kind', v.kind);
  for (const key of ['name', 'subtopic', 'publisher', 'from', 'to', 'comparator'] as const) if (v[key]) q.set(key, v[key]);
  if (v.v !== undefined) q.set('v', String(v.v));
  if (v.offset) q.set('offset', String(v.offset));
  if (v.limit !== pageSizes[0]) q.set('limit', String(v.limit));
  if (v.dir === 'asc') q.set('dir', 'asc');
  return `?${q.toString()}`;
}

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
  const search = useSearch();
  const [, navigate] = useLocation();
  const view = readView(search, storedAs);
  const { offset, limit, dir } = view;
  const show = (change: Partial<View>) => navigate(`/channels/${channel.id}${viewSearch({ ...view, offset: 0, ...change }, storedAs)}`);
  const [downloadError, setDownloadError] = useState<string>();
  const [downloading, setDownloading] = useState(false);
  const page = useLoad(() => api.GET('/channels/{id}/messages', { params: { path: { id: channel.id }, query: { ...queryOf(view), offset, limit, dir } } }), [channel.id, search]);

  async function download() {
    setDownloading(true);
    const { data, error } = await api.GET('/channels/{id}/messages', { params: { path: { id: channel.id }, query: { ...queryOf(view), dir, format: 'csv' } }, parseAs: 'blob' });
    setDownloading(false);
    if (error !== undefined || !data) return setDownloadError(problemText(error));
    setDownloadError(undefined);
    saveBlob(data, `${channel.name}.csv`);
  }

  // the platform does not count every stored message for a page: it says whether more follow
  const shown = page.data?.messages.length ?? 0;
  const more = page.data?.more ?? false;
  const shownKind = view.kind;
  return (
    <section aria-labelledby="history-heading">
      <h3 id="history-heading">Stored messages</h3>
      {/* a new address (a link, back and forward) shows its own filter in the fields */}
      <FilterForm key={search} view={view} onFilter={(f) => show({ ...emptyFilter, ...f })} />
      <div className="toolbar">
        <label>
          Per page
          <select value={limit} onChange={(e) => show({ limit: Number(e.target.value) })}>
            {pageSizes.map((n) => (
              <option key={n}>{n}</option>
            ))}
          </select>
        </label>
        <label className="check">
          <input type="checkbox" checked={dir === 'desc'} onChange={(e) => show({ dir: e.target.checked ? 'desc' : 'asc' })} /> Newest first
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
          {shown === 0 && offset === 0 && <p className="muted">No stored message matches the filter.</p>}
          <div className="pager">
            <button type="button" className="secondary" disabled={offset === 0} onClick={() => show({ offset: Math.max(0, offset - limit) })}>
              Previous
            </button>
            <span data-testid="history-page-info">
              {shown === 0 ? 'none' : `${offset + 1}–${offset + shown}`}
              {more ? ', more follow' : offset > 0 || shown > 0 ? ', the last' : ''}
            </span>
            <button type="button" className="secondary" disabled={!more} onClick={() => show({ offset: offset + limit })}>
              Next
            </button>
          </div>
        </>
      )}
    </section>
  );
}

/** Every filter field unset: a new filter replaces the whole of the old one. */
const emptyFilter: Omit<Filter, 'kind'> = { name: undefined, subtopic: undefined, publisher: undefined, from: undefined, to: undefined, comparator: undefined, v: undefined };

function FilterForm({ view, onFilter }: { view: View; onFilter(f: Filter): void }) {
  const [kind, setKind] = useState<StoredKind>(view.kind);
  function apply(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    onFilter(filterOf(e.currentTarget, kind));
  }
  return (
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
          <input name="name" maxLength={1024} placeholder="temp" defaultValue={view.name} />
        </label>
      )}
      <label>
        Subtopic
        <input name="subtopic" maxLength={1024} placeholder="lab/bench-2" defaultValue={view.subtopic} />
      </label>
      <label>
        Publisher
        <input name="publisher" maxLength={256} placeholder="Device id" defaultValue={view.publisher} />
      </label>
      <label>
        From
        <input name="from" type="datetime-local" step={1} defaultValue={view.from && localInput(view.from)} />
      </label>
      <label>
        To
        <input name="to" type="datetime-local" step={1} defaultValue={view.to && localInput(view.to)} />
      </label>
      {kind === 'senml' && (
        <>
          <label>
            Value is
            <select name="comparator" defaultValue={view.comparator ?? 'eq'}>
              {Object.entries(comparators).map(([c, sign]) => (
                <option key={c} value={c}>
                  {sign}
                </option>
              ))}
            </select>
          </label>
          <label>
            Value
            <input name="v" type="number" step="any" placeholder="Any" defaultValue={view.v} />
          </label>
        </>
      )}
      <button type="submit">Filter</button>
    </form>
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
