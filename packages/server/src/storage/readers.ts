import type { Database } from '../db/index.js';
import { RawQueries } from '../db/raw.js';
import type { PayloadRow, RecordRow } from './rows.js';

export type Comparator = 'eq' | 'lt' | 'le' | 'gt' | 'ge';
export type Aggregation = 'min' | 'max' | 'avg' | 'sum' | 'count';

export interface MessageFilter {
  channel: string;
  subtopic?: string;
  publisher?: string;
  name?: string;
  v?: number;
  comparator?: Comparator;
  vb?: boolean;
  vs?: string;
  vd?: string;
  /** Unix seconds, inclusive. */
  from?: number;
  /** Unix seconds, exclusive. */
  to?: number;
}

export type RecordOrder = 'time' | 'name' | 'value' | 'publisher' | 'subtopic';

export interface Paging {
  offset: number;
  limit: number;
  dir: 'asc' | 'desc';
  /** Count every matching row as well (a second query over all of them: the cost grows with the history). */
  total?: boolean;
  /** Continue after the page that gave this cursor (`next`), instead of skipping `offset` rows. */
  after?: string;
}

/** A page: its rows, whether more follow and, in time order, the cursor of the next page; `total` when asked for. */
export interface Page<T> {
  items: T[];
  more: boolean;
  next?: string;
  total?: number;
}

/** A cursor that is not one the readers gave for this kind of page and order. */
export class InvalidCursorError extends Error {
  override name = 'InvalidCursorError';
}

type CursorKind = 'records' | 'documents' | 'payloads';
type KeyValue = number | string;

/** The keys of a page's last row, with the kind and direction of the page, as an opaque token. */
function encodeCursor(kind: CursorKind, dir: 'asc' | 'desc', keys: KeyValue[]): string {
  return Buffer.from(JSON.stringify({ k: kind, d: dir, v: keys })).toString('base64url');
}

function decodeCursor(token: string, kind: CursorKind, dir: 'asc' | 'desc', shape: ('number' | 'string')[]): KeyValue[] {
  let c: { k?: unknown; d?: unknown; v?: unknown };
  try {
    c = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as typeof c;
  } catch {
    throw new InvalidCursorError('cursor is not one this API gave');
  }
  if (c.k !== kind || !Array.isArray(c.v) || c.v.length !== shape.length || !shape.every((t, i) => typeof (c.v as unknown[])[i] === t)) throw new InvalidCursorError('cursor is not one this API gave for this type');
  if (c.d !== dir) throw new InvalidCursorError(`cursor is for dir=${String(c.d)}`);
  return c.v as KeyValue[];
}

/**
 * After `keys` in the order of `columns` (all in one direction): `(a, b, c) < (?, ?, ?)` spelt out,
 * led by `a <= ?`, a bound both databases take as the start of a range on the index of the ORDER BY
 * (the ORs alone made them walk the index from its end).
 */
function keyset(columns: string[], dir: 'asc' | 'desc', keys: KeyValue[]): { sql: string; params: KeyValue[] } {
  const cmp = dir === 'asc' ? '>' : '<';
  const build = (i: number): { sql: string; params: KeyValue[] } => {
    if (i === columns.length - 1) return { sql: `${columns[i]} ${cmp} ?`, params: [keys[i]!] };
    const rest = build(i + 1);
    return { sql: `(${columns[i]} ${cmp} ? OR (${columns[i]} = ? AND ${rest.sql}))`, params: [keys[i]!, keys[i]!, ...rest.params] };
  };
  const after = build(0);
  return { sql: `${columns[0]} ${cmp}= ? AND ${after.sql}`, params: [keys[0]!, ...after.params] };
}

/** A stored SenML record as the readers API shows it: only the value field it has. */
export interface MessageRecord {
  channel: string;
  subtopic: string;
  publisher: string;
  protocol: string;
  name: string;
  unit?: string;
  time: number;
  update_time?: number;
  value?: number;
  string_value?: string;
  bool_value?: boolean;
  data_value?: string;
  sum?: number;
}

export interface AggregatedValue {
  name: string;
  /** Start of the interval, Unix seconds. */
  time: number;
  value: number;
  /** Records in the interval. */
  count: number;
}

export interface StoredDocument {
  id: string;
  channel: string;
  subtopic: string;
  publisher: string;
  protocol: string;
  time: number;
  document: Record<string, unknown>;
}

export type StoredPayload = Omit<PayloadRow, 'org_id'>;

const comparators: Record<Comparator, string> = { eq: '=', lt: '<', le: '<=', gt: '>', ge: '>=' };
const valueSelect = 'channel, subtopic, publisher, protocol, name, unit, time, update_time, value, string_value, bool_value, data_value, sum';

/**
 * What orders records of the same time, after it: the key of their message (messages are keyed in
 * the order they were stored) and the record's place in its pack. Unique per record, as keyset
 * paging needs; `latest_values` keeps the same two.
 */
const tieColumns = ['msg', 'seq'];
const recordSelect = `${tieColumns.join(', ')}, ${valueSelect}`;

/** ORDER BY of records: `first` columns, then time, then the tie columns, all in `dir`. */
function orderBy(dir: 'ASC' | 'DESC', ...first: string[]): string {
  return [...first, 'time', ...tieColumns].map((c) => `${c} ${dir}`).join(', ');
}

/** A record row as the databases return it: SQLite gives booleans as 0/1. */
type RecordRowOut = Omit<RecordRow, 'id' | 'seq' | 'org_id' | 'bool_value'> & { bool_value: number | boolean | null };

function toRecord(r: RecordRowOut): MessageRecord {
  const out: MessageRecord = { channel: r.channel, subtopic: r.subtopic, publisher: r.publisher, protocol: r.protocol, name: r.name, time: r.time };
  if (r.unit !== null) out.unit = r.unit;
  if (r.update_time !== null) out.update_time = r.update_time;
  if (r.value !== null) out.value = r.value;
  if (r.string_value !== null) out.string_value = r.string_value;
  if (r.bool_value !== null) out.bool_value = r.bool_value === true || r.bool_value === 1;
  if (r.data_value !== null) out.data_value = r.data_value;
  if (r.sum !== null) out.sum = r.sum;
  return out;
}

/**
 * The records, with the source of each (channel, subtopic, publisher, protocol) joined in for the
 * rows a page shows. Counts and aggregations read `messages` alone: through the join (or the
 * `message_records` view) both databases fetch every matching row from the table, where alone they
 * read the index only (a 1-minute average over a day of one name at 10 million records: 0.2–0.3 s
 * against 25–30 ms; bench/readers).
 */
const recordsJoined = 'messages m LEFT JOIN message_sources s ON s.key = m.source';

/** An interval of whole minutes longer than any history: one bucket per name (a count of records through byMinute). */
const wholeHistory = 60 * 2 ** 30;

/**
 * WHERE clause (with `?` placeholders) of a message filter over `table`. The records are matched
 * on their own columns (`records`: `messages`, alone or joined to its sources): the channel by its
 * key, looked up first, since PostgreSQL plans the lookup as a parameter and walks (channel_key,
 * time) for the newest page, where a join on the channel's name made it sort the whole channel;
 * a subtopic or publisher by the keys of the channel's sources that have it.
 */
function where(f: MessageFilter, table: 'records' | 'latest_records' | 'message_documents' | 'message_payloads'): { sql: string; params: unknown[] } {
  const valueColumns = table === 'records' || table === 'latest_records';
  const parts: string[] = [];
  const params: unknown[] = [];
  const add = (cond: string, ...v: unknown[]) => {
    parts.push(cond);
    params.push(...v);
  };
  if (table === 'records') {
    add('channel_key = (SELECT key FROM message_channels WHERE channel = ?)', f.channel);
    if (f.subtopic !== undefined || f.publisher !== undefined) {
      const by = [...(f.subtopic !== undefined ? ['subtopic = ?'] : []), ...(f.publisher !== undefined ? ['publisher = ?'] : [])];
      add(`source IN (SELECT key FROM message_sources WHERE channel = ? AND ${by.join(' AND ')})`, f.channel, ...[f.subtopic, f.publisher].filter((v) => v !== undefined));
    }
  } else {
    // latest values are keyed by source: the channel's sources first
    add(table === 'latest_records' ? 'source IN (SELECT key FROM message_sources WHERE channel = ?)' : 'channel = ?', f.channel);
    if (f.subtopic !== undefined) add('subtopic = ?', f.subtopic);
    if (f.publisher !== undefined) add('publisher = ?', f.publisher);
  }
  if (f.from !== undefined) add('time >= ?', f.from);
  if (f.to !== undefined) add('time < ?', f.to);
  if (valueColumns) {
    if (f.name !== undefined) add('name = ?', f.name);
    if (f.v !== undefined) add(`value ${comparators[f.comparator ?? 'eq']} ?`, f.v);
    if (f.vb !== undefined) add('bool_value = ?', f.vb);
    if (f.vs !== undefined) add('string_value = ?', f.vs);
    if (f.vd !== undefined) add('data_value = ?', f.vd);
  }
  return { sql: parts.join(' AND '), params };
}

/** SQLite's records after the latest values' watermark (migration 10), with the columns of `latest_records`; a range of rowids. */
const sqliteLatestTail = `SELECT m.source, m.msg, m.seq, s.channel, s.subtopic, s.publisher, s.protocol, m.name, m.unit, m.time, m.update_time, m.value, m.string_value, m.bool_value, m.data_value, m.sum
  FROM messages m JOIN message_sources s ON s.key = m.source WHERE m.rowid > (SELECT row FROM latest_watermark)`;

/** Queries over stored messages, identical on SQLite and PostgreSQL. */
export class MessageReaders {
  private readonly q: RawQueries;

  constructor(private readonly db: Database) {
    this.q = new RawQueries(db);
  }

  /** How many rows of `table` match, when the page asks (Paging.total). */
  private async count(table: string, w: { sql: string; params: unknown[] }, page: Paging): Promise<number | undefined> {
    if (!page.total) return undefined;
    const [{ n }] = (await this.q.all<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table} WHERE ${w.sql}`, w.params)) as [{ n: number }];
    return Number(n);
  }

  /**
   * One page of `table` in the order of `columns` (their values make the cursor): after the cursor
   * or past `offset` rows, one row more than the page to tell whether another follows.
   */
  private async page<R extends Record<string, unknown>>(kind: CursorKind, table: string, select: string, w: { sql: string; params: unknown[] }, page: Paging, columns: string[], shape: ('number' | 'string')[], first: string[] = [], counted: string | (() => Promise<number>) = table): Promise<Page<R>> {
    const dir = page.dir === 'asc' ? 'ASC' : 'DESC';
    let sql = w.sql;
    let params = w.params;
    // a cursor orders by the keys alone: with a leading sort column (order=name…) pages use offsets
    const keyed = first.length === 0;
    if (page.after !== undefined) {
      if (!keyed) throw new InvalidCursorError('a cursor pages in time order only');
      const k = keyset(columns, page.dir, decodeCursor(page.after, kind, page.dir, shape));
      sql = `${sql} AND ${k.sql}`;
      params = [...params, ...k.params];
    }
    const sort = [...first, ...columns].map((c) => `${c} ${dir}`).join(', ');
    const total = typeof counted === 'string' ? await this.count(counted, w, page) : page.total ? await counted() : undefined;
    const rows = await this.q.all<R>(`SELECT ${select} FROM ${table} WHERE ${sql} ORDER BY ${sort} LIMIT ? OFFSET ?`, [...params, page.limit + 1, page.after !== undefined ? 0 : page.offset]);
    const more = rows.length > page.limit;
    if (more) rows.length = page.limit;
    const last = rows.at(-1);
    // PostgreSQL gives a BIGINT key as text: the cursor keeps what the database gave
    const next = more && keyed && last ? encodeCursor(kind, page.dir, columns.map((c, i) => (shape[i] === 'number' ? Number(last[c]) : String(last[c])))) : undefined;
    return { items: rows, more, ...(next !== undefined ? { next } : {}), ...(total !== undefined ? { total } : {}) };
  }

  async records(f: MessageFilter, page: Paging, order: RecordOrder = 'time'): Promise<Page<MessageRecord>> {
    const w = where(f, 'records');
    // message keys are BIGINT: on PostgreSQL they come as text, compared as numbers by the database
    const shape: ('number' | 'string')[] = ['number', this.db.kind === 'postgres' ? 'string' : 'number', 'number'];
    // SQLite counts from its per-minute sums where they can answer (the count of one name among
    // many walked every record of the channel: 0.87 s at 10 million records, bench/readers)
    const byMinute = this.byMinute(f, 'count', wholeHistory);
    const counted = byMinute ? async () => Number((await this.q.all<{ n: number | null }>(`SELECT SUM(n) AS n FROM (${byMinute.sql}) g`, byMinute.params))[0]?.n ?? 0) : 'messages';
    const r = await this.page<RecordRowOut & Record<string, unknown>>('records', recordsJoined, recordSelect, w, page, ['time', ...tieColumns], shape, order === 'time' ? [] : [order], counted);
    return { ...r, items: r.items.map(toRecord) };
  }

  /** Records in time order (asc or desc), all of them, a page at a time (keyset paging): for CSV export. */
  async *allRecords(f: MessageFilter, dir: 'asc' | 'desc', max: number): AsyncGenerator<MessageRecord> {
    const w = where(f, 'records');
    const d = dir === 'asc' ? 'ASC' : 'DESC';
    let after: (RecordRowOut & { msg: number | string; seq: number }) | undefined;
    let sent = 0;
    while (sent < max) {
      // after the last row sent, in (time, msg, seq) order
      const k = after ? keyset(['time', ...tieColumns], dir, [after.time, after.msg, after.seq]) : undefined;
      const params = k ? [...w.params, ...k.params] : w.params;
      const rows = await this.q.all<RecordRowOut & { msg: number | string; seq: number }>(`SELECT ${recordSelect} FROM ${recordsJoined} WHERE ${w.sql}${k ? ` AND ${k.sql}` : ''} ORDER BY ${orderBy(d)} LIMIT ?`, [...params, Math.min(5000, max - sent)]);
      for (const r of rows) yield toRecord(r);
      sent += rows.length;
      if (rows.length < 5000) return;
      after = rows[rows.length - 1];
    }
  }

  /** `aggregation` of the records per name and bucket of `interval` seconds: rows of (name, bucket, agg, n). */
  private byRecord(f: MessageFilter, aggregation: Aggregation, interval: number): { sql: string; params: unknown[] } {
    const w = where(f, 'records');
    const bucket = this.db.kind === 'postgres' ? 'floor(time / ?) * ?' : 'CAST(time / ? AS INTEGER) * ?';
    const fn = aggregation === 'count' ? 'COUNT(*)' : `${aggregation.toUpperCase()}(value)`;
    const numeric = aggregation === 'count' ? '' : ' AND value IS NOT NULL';
    return { sql: `SELECT name, ${bucket} AS bucket, ${fn} AS agg, COUNT(*) AS n FROM messages WHERE ${w.sql}${numeric} GROUP BY name, bucket`, params: [interval, interval, ...w.params] };
  }

  /**
   * The same rows from SQLite's per-minute sums (`record_minutes`, migration 11) where they can
   * answer: whole minutes (an interval of whole minutes, no filter on values). They cover the
   * records up to their watermark; the records after it, and those of the part-minutes at either
   * end of the range, are added from `messages`, so the answer is the same as over the records.
   */
  private byMinute(f: MessageFilter, aggregation: Aggregation, interval: number): { sql: string; params: unknown[] } | undefined {
    if (this.db.kind !== 'sqlite' || interval % 60 !== 0) return undefined;
    if (f.v !== undefined || f.vb !== undefined || f.vs !== undefined || f.vd !== undefined) return undefined;
    // from the first whole minute after the time 60 (before it, CAST rounds toward zero where
    // buckets are whole intervals down): the records before come from `messages`
    const first = Math.max(1, Math.ceil((f.from ?? 0) / 60));
    const last = f.to === undefined ? undefined : Math.floor(f.to / 60);
    if (last !== undefined && last <= first) return undefined;
    const sources = where({ ...f, from: undefined, to: undefined }, 'records');
    const records = where(f, 'records');
    const bucket = 'CAST(time / ? AS INTEGER) * ?';
    const raw = `SELECT name, ${bucket} AS bucket, 1 AS n, value IS NOT NULL AS nv, value AS sm, value AS mn, value AS mx FROM messages`;
    const watermark = '(SELECT row FROM record_minutes_watermark)';
    const parts = [
      {
        sql: `SELECT name, CAST(minute * 60 / ? AS INTEGER) * ? AS bucket, n, nv, sum AS sm, min AS mn, max AS mx FROM record_minutes WHERE ${sources.sql} AND minute >= ?${last !== undefined ? ' AND minute < ?' : ''}`,
        params: [interval, interval, ...sources.params, first, ...(last !== undefined ? [last] : [])],
      },
      // the records not rolled up yet, by rowid (they are the newest)
      { sql: `${raw} NOT INDEXED WHERE rowid > ${watermark} AND ${records.sql}`, params: [interval, interval, ...records.params] },
    ];
    // the part-minutes at either end
    if (f.from === undefined || first * 60 > f.from) parts.push({ sql: `${raw} WHERE rowid <= ${watermark} AND ${records.sql} AND time < ?`, params: [interval, interval, ...records.params, first * 60] });
    if (last !== undefined && last * 60 < f.to!) parts.push({ sql: `${raw} WHERE rowid <= ${watermark} AND ${records.sql} AND time >= ?`, params: [interval, interval, ...records.params, last * 60] });
    const agg = { count: 'SUM(n)', sum: 'SUM(sm)', avg: 'SUM(sm) * 1.0 / SUM(nv)', min: 'MIN(mn)', max: 'MAX(mx)' }[aggregation];
    const n = aggregation === 'count' ? 'SUM(n)' : 'SUM(nv)';
    return {
      sql: `SELECT name, bucket, ${agg} AS agg, ${n} AS n FROM (${parts.map((p) => p.sql).join(' UNION ALL ')}) GROUP BY name, bucket${aggregation === 'count' ? '' : ' HAVING SUM(nv) > 0'}`,
      params: parts.flatMap((p) => p.params),
    };
  }

  /** Numeric values aggregated per name and interval (seconds). */
  async aggregate(f: MessageFilter, aggregation: Aggregation, interval: number, page: Paging): Promise<{ total: number; items: AggregatedValue[] }> {
    if (!(interval > 0)) throw new RangeError(`an aggregation interval is a positive number of seconds, not ${interval}`);
    const { sql: grouped, params } = this.byMinute(f, aggregation, interval) ?? this.byRecord(f, aggregation, interval);
    const dir = page.dir === 'asc' ? 'ASC' : 'DESC';
    // one pass over the records: the number of groups comes with the page (a window over the
    // groups), rather than from a second aggregation of the same records; see bench/readers
    const rows = await this.q.all<{ name: string; bucket: number; agg: number; n: number; total: number }>(
      `SELECT name, bucket, agg, n, COUNT(*) OVER () AS total FROM (${grouped}) g ORDER BY bucket ${dir}, name ASC LIMIT ? OFFSET ?`,
      [...params, page.limit, page.offset],
    );
    let total = rows.length > 0 ? Number(rows[0]!.total) : 0;
    if (rows.length === 0 && page.offset > 0) {
      // past the last page: the window saw no row, so count the groups on their own
      const [{ n }] = (await this.q.all<{ n: number }>(`SELECT COUNT(*) AS n FROM (${grouped}) g`, params)) as [{ n: number }];
      total = Number(n);
    }
    return { total, items: rows.map((r) => ({ name: r.name, time: Number(r.bucket), value: Number(r.agg), count: Number(r.n) })) };
  }

  /**
   * The newest record of each name. The writer keeps the newest record of each source (channel,
   * subtopic, publisher, protocol) and name in `latest_values`, so a filter on subtopic and publisher
   * reads that small table alone; any other filter takes the newest matching record of each name
   * from the records.
   */
  async latest(f: MessageFilter): Promise<MessageRecord[]> {
    const onlyKeys = Object.entries(f).every(([k, v]) => v === undefined || k === 'channel' || k === 'subtopic' || k === 'publisher');
    const table = onlyKeys ? 'latest_records' : recordsJoined;
    const w = where(f, onlyKeys ? 'latest_records' : 'records');
    let from = `SELECT ${recordSelect} FROM ${table} WHERE ${w.sql}`;
    let params = w.params;
    if (onlyKeys && this.db.kind === 'sqlite') {
      // SQLite's writer holds the newest values of the last moment before it writes them (sink.ts):
      // the records after the watermark join in
      from += ` UNION ALL SELECT ${recordSelect} FROM (${sqliteLatestTail}) t WHERE ${w.sql}`;
      params = [...w.params, ...w.params];
    }
    const rows = await this.q.all<RecordRowOut>(
      `SELECT ${valueSelect} FROM (SELECT ${valueSelect}, ROW_NUMBER() OVER (PARTITION BY name ORDER BY ${orderBy('DESC')}) AS rn FROM (${from}) u) r WHERE rn = 1 ORDER BY name`,
      params,
    );
    return rows.map(toRecord);
  }

  async documents(f: MessageFilter, page: Paging): Promise<Page<StoredDocument>> {
    const w = where(f, 'message_documents');
    const r = await this.page<Omit<StoredDocument, 'document'> & { document: unknown; seq: number }>('documents', 'message_documents', 'id, seq, channel, subtopic, publisher, protocol, time, document', w, page, ['time', 'id', 'seq'], ['number', 'string', 'number']);
    return { ...r, items: r.items.map(({ seq: _seq, ...d }) => ({ ...d, document: (typeof d.document === 'string' ? JSON.parse(d.document) : d.document) as Record<string, unknown> })) };
  }

  async payloads(f: MessageFilter, page: Paging): Promise<Page<StoredPayload>> {
    const w = where(f, 'message_payloads');
    const r = await this.page<Omit<StoredPayload, 'truncated'> & { truncated: number | boolean }>('payloads', 'message_payloads', 'id, channel, subtopic, publisher, protocol, content_type, time, size, truncated, payload', w, page, ['time', 'id'], ['number', 'string']);
    return { ...r, items: r.items.map((p) => ({ ...p, truncated: p.truncated === true || p.truncated === 1 })) };
  }
}
