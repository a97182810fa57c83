// A chart of one SenML name of a channel: its values aggregated per interval by the readers API
// (GET /channels/{id}/messages?aggregation=…&interval=…), over the last hour, day, week or a range
// of the user's. uPlot draws it, loaded only when a chart is first shown; the caption says what it
// shows (its lowest, highest and last value) and "Show as table" lists the values, for whoever
// cannot see the canvas.
import { lazy, Suspense, useId, useState, type FormEvent } from 'react';
import { api } from '../api/client';
import { ErrorNote, useLoad } from '../ui';
import { formatSeconds, rfc3339, type AggregatedValue, type StoredRecord } from './messages';

const UplotChart = lazy(() => import('./uplot-chart'));

type Aggregation = 'avg' | 'min' | 'max' | 'sum' | 'count';
type Range = 'hour' | 'day' | 'week' | 'custom';

const aggregations: Record<Aggregation, string> = { avg: 'Average', min: 'Minimum', max: 'Maximum', sum: 'Sum', count: 'Count' };
const ranges: Record<Range, { label: string; seconds: number; interval: string }> = {
  hour: { label: 'Last hour', seconds: 3600, interval: '1m' },
  day: { label: 'Last day', seconds: 86_400, interval: '15m' },
  week: { label: 'Last week', seconds: 604_800, interval: '1h' },
  custom: { label: 'Custom', seconds: 0, interval: '1h' },
};
const intervals = ['10s', '1m', '5m', '15m', '1h', '6h', '1d'];
const maxPoints = 1000; // the readers API's largest page: the newest intervals are shown

interface ChartQuery {
  name: string;
  aggregation: Aggregation;
  interval: string;
  from: string;
  to?: string;
  /** What the range reads as in the caption. */
  over: string;
}

function number(v: number): string {
  return v.toLocaleString(undefined, { maximumFractionDigits: 3 });
}

export function ChannelChart({ channelId }: { channelId: string }) {
  const latest = useLoad(() => api.GET('/channels/{id}/messages/latest', { params: { path: { id: channelId } } }), [channelId]);
  const names = (latest.data?.messages as StoredRecord[] | undefined)?.filter((r) => r.value !== undefined).map((r) => r.name) ?? [];
  const [range, setRange] = useState<Range>('hour');
  const [interval, setIntervalChoice] = useState(ranges.hour.interval);
  const [query, setQuery] = useState<ChartQuery>();
  const [problem, setProblem] = useState<string>();

  function draw(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const fields = new FormData(e.currentTarget);
    const base = { name: String(fields.get('name')), aggregation: String(fields.get('aggregation')) as Aggregation, interval };
    if (range === 'custom') {
      const from = rfc3339(String(fields.get('from') ?? ''));
      const to = rfc3339(String(fields.get('to') ?? ''));
      if (!from) return setProblem('A custom range needs its start');
      setQuery({ ...base, from, to, over: `from ${new Date(from).toLocaleString()}${to ? ` to ${new Date(to).toLocaleString()}` : ''}` });
    } else {
      const now = Date.now();
      setQuery({ ...base, from: new Date(now - ranges[range].seconds * 1000).toISOString(), over: `over the ${ranges[range].label.toLowerCase()}` });
    }
    setProblem(undefined);
  }

  return (
    <section aria-labelledby="chart-heading">
      <h3 id="chart-heading">Chart</h3>
      <ErrorNote error={latest.error} />
      {latest.data && names.length === 0 && <p className="muted">No numeric SenML values are stored on this channel yet.</p>}
      {names.length > 0 && (
        <form className="toolbar filters" onSubmit={draw} aria-label="Chart settings">
          <label>
            Name
            <select name="name">
              {names.map((n) => (
                <option key={n}>{n}</option>
              ))}
            </select>
          </label>
          <label>
            Aggregation
            <select name="aggregation" defaultValue="avg">
              {Object.entries(aggregations).map(([a, label]) => (
                <option key={a} value={a}>
                  {label}
                </option>
              ))}
            </select>
          </label>
          <label>
            Range
            <select
              name="range"
              value={range}
              onChange={(e) => {
                const r = e.target.value as Range;
                setRange(r);
                setIntervalChoice(ranges[r].interval);
              }}
            >
              {Object.entries(ranges).map(([r, { label }]) => (
                <option key={r} value={r}>
                  {label}
                </option>
              ))}
            </select>
          </label>
          {range === 'custom' && (
            <>
              <label>
                From
                <input name="from" type="datetime-local" step={1} required />
              </label>
              <label>
                To
                <input name="to" type="datetime-local" step={1} />
              </label>
            </>
          )}
          <label>
            Interval
            <select name="interval" value={interval} onChange={(e) => setIntervalChoice(e.target.value)}>
              {intervals.map((i) => (
                <option key={i}>{i}</option>
              ))}
            </select>
          </label>
          <button type="submit">Draw chart</button>
        </form>
      )}
      <ErrorNote error={problem} />
      {query && <Chart channelId={channelId} query={query} />}
    </section>
  );
}

function Chart({ channelId, query }: { channelId: string; query: ChartQuery }) {
  const [asTable, setAsTable] = useState(false);
  const tableId = useId();
  const points = useLoad(
    () =>
      api.GET('/channels/{id}/messages', {
        params: { path: { id: channelId }, query: { name: query.name, aggregation: query.aggregation, interval: query.interval, from: query.from, to: query.to, dir: 'desc', limit: maxPoints } },
      }),
    [channelId, query],
  );
  if (points.error) return <ErrorNote error={points.error} />;
  if (!points.data) return <p className="muted">Loading…</p>;
  // newest first from the API (so that the newest intervals are the ones shown), oldest first on the chart
  const values = (points.data.messages as AggregatedValue[]).slice().reverse();
  const what = `${aggregations[query.aggregation].toLowerCase()} of ${query.name} per ${query.interval} ${query.over}`;
  if (values.length === 0) return <p className="muted">No value of {query.name} in this range.</p>;
  const numbers = values.map((v) => v.value);
  const last = values[values.length - 1]!;
  const caption = `${what[0]!.toUpperCase()}${what.slice(1)}: ${values.length} intervals${(points.data.total ?? 0) > values.length ? ` (the newest ${values.length} of ${points.data.total})` : ''}; min ${number(Math.min(...numbers))}, max ${number(Math.max(...numbers))}, last ${number(last.value)} at ${formatSeconds(last.time)}.`;
  return (
    <figure className="chart-figure">
      <Suspense fallback={<p className="muted">Loading the chart…</p>}>
        <UplotChart times={values.map((v) => v.time)} values={numbers} label={query.name} />
      </Suspense>
      <figcaption data-testid="chart-caption">{caption}</figcaption>
      <button type="button" className="secondary" aria-expanded={asTable} aria-controls={asTable ? tableId : undefined} onClick={() => setAsTable(!asTable)}>
        {asTable ? 'Hide the table' : 'Show as table'}
      </button>
      {asTable && (
        <div className="scroll" id={tableId}>
          <table aria-label={`Chart values: ${what}`}>
            <thead>
              <tr>
                <th>Interval from</th>
                <th>Value</th>
                <th>Records</th>
              </tr>
            </thead>
            <tbody>
              {values.map((v) => (
                <tr key={v.time}>
                  <td>{formatSeconds(v.time)}</td>
                  <td>{number(v.value)}</td>
                  <td>{v.count}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </figure>
  );
}
