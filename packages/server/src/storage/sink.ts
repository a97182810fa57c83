import type { PoolClient } from 'pg';
import type { Database } from '../db/index.js';
import { uuidv7 } from '../core/ids.js';
import type { Envelope } from '../messaging/envelope.js';
import { toRows, type DocumentRow, type PayloadRow, type RecordRow, type RowBatch } from './rows.js';

/** Where the writer puts rows: one transaction per batch, duplicates (redelivery) ignored. */
export interface MessageSink {
  write(batch: RowBatch): Promise<void>;
  /**
   * Writes a batch nothing can be wrong with (a SenML, a JSON and an opaque message of its own
   * making) through the same statements as `write`, and rolls it back: resolves when the database
   * takes writes, rejects with the database's error when it does not. How the writer tells a
   * message it cannot store from a database that stores nothing (writer.ts).
   */
  probe(): Promise<void>;
  /** Deletes messages received before `boundaryId` (ids are UUID v7, so they sort by receive time), at most `limit` rows per table; returns rows deleted. */
  pruneBefore(boundaryId: string, limit: number): Promise<number>;
  /** Writes what the sink still holds (SQLite's latest values); the sink takes no more writes after it. */
  close(): Promise<void>;
}

/** The smallest UUID v7 of a millisecond: every message received before it has a smaller id. */
export function idBoundary(ms: number): string {
  const hex = Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7000-8000-000000000000`;
}

const documentColumns = ['id', 'seq', 'org_id', 'channel', 'subtopic', 'publisher', 'protocol', 'time', 'document'] as const;
const payloadColumns = ['id', 'org_id', 'channel', 'subtopic', 'publisher', 'protocol', 'content_type', 'time', 'size', 'truncated', 'payload'] as const;

/** Record columns of migration 4, after the three keys. */
const recordValueColumns = ['seq', 'name', 'unit', 'time', 'update_time', 'value', 'string_value', 'bool_value', 'data_value', 'sum'] as const;
const recordColumns = ['channel_key', 'source', 'msg', ...recordValueColumns] as const;
/** `latest_values` (migration 4): the newest record of each source and name, keyed (source, name). */
const latestColumns = ['source', 'name', 'msg', 'seq', 'unit', 'time', 'update_time', 'value', 'string_value', 'bool_value', 'data_value', 'sum'] as const;
/** Only a newer record replaces the stored one: newer by time, then message key, then seq, as the readers order. */
const newerThanStored = 'excluded.time > latest_values.time OR (excluded.time = latest_values.time AND (excluded.msg > latest_values.msg OR (excluded.msg = latest_values.msg AND excluded.seq > latest_values.seq)))';
const latestConflict = `ON CONFLICT (source, name) DO UPDATE SET ${latestColumns.slice(2).map((c) => `${c} = excluded.${c}`).join(', ')} WHERE ${newerThanStored}`;

/** Thrown inside a probe's transaction to roll it back; never leaves the sink. */
/** SQLite's per-minute sums of the records (migration 11), from a `FROM messages WHERE … GROUP BY 1, 2, 3, 4` that follows. */
const minutesInsert = `INSERT INTO record_minutes (channel_key, minute, name, source, n, nv, sum, min, max)
  SELECT channel_key, CAST(time / 60 AS INTEGER), name, source, COUNT(*), COUNT(value), SUM(value), MIN(value), MAX(value)`;

const rolledBack = new Error('probe rolled back');

/** Rows of one SenML, one JSON and one opaque message: every table and statement a batch uses. */
function probeRows(): RowBatch {
  const now = Date.now();
  const env = (contentType: string, payload: string): Envelope => ({
    id: uuidv7(now), org: 'fleetwire:probe', channel: 'fleetwire:probe', subtopic: 'probe', publisher: 'fleetwire:probe', protocol: 'http', contentType, payload: Buffer.from(payload), receivedAt: now,
  });
  return toRows([env('application/senml+json', '[{"n":"probe","v":1}]'), env('application/json', '{"probe":1}'), env('application/octet-stream', 'probe')], 16);
}

type Level<T> = Map<string, T>;
/**
 * The rows of the messages in `fresh`, each message's once: a message's rows start at seq 0 (a
 * payload is one row), so a message that came twice in one batch is taken the first time.
 */
function rowsOf<T extends { id: string; seq?: number }>(rows: T[], fresh: Set<string>): T[] {
  const taken = new Set<string>();
  const out: T[] = [];
  let keep = false;
  for (const r of rows) {
    if (r.seq === undefined || r.seq === 0) {
      keep = fresh.has(r.id) && !taken.has(r.id);
      if (keep) taken.add(r.id);
    }
    if (keep) out.push(r);
  }
  return out;
}

/** The batch cut down to the messages not stored before; the batch itself when all of them are new, once. */
function freshPart(batch: RowBatch, fresh: Set<string>): RowBatch {
  if (fresh.size === batch.ids.length) return batch;
  return { ids: [...fresh], records: rowsOf(batch.records, fresh), documents: rowsOf(batch.documents, fresh), payloads: rowsOf(batch.payloads, fresh) };
}

/** Where a message came from: what a `message_sources` row stands for. */
type Source = Pick<RecordRow, 'channel' | 'publisher' | 'subtopic' | 'protocol'>;

/**
 * Integer keys of the record dictionaries (migration 4): `message_channels` and `message_sources`,
 * nested on the rows' own strings so that no key is built per message. A sink holds keys only
 * while its transactions commit: `forget()` after a failed one, whose new keys rolled back with it.
 */
class DictionaryKeys {
  /** Most sources held (about 100 bytes each): past it (subtopics without end, say), `trim()` starts again empty. */
  static readonly maxSources = 100_000;
  private channels: Level<number> = new Map();
  private sources: Level<Level<Level<Level<number>>>> = new Map();
  private count = 0;

  channel(channel: string): number | undefined {
    return this.channels.get(channel);
  }

  setChannel(channel: string, key: number): void {
    this.channels.set(channel, key);
  }

  source(r: Source): number | undefined {
    return this.sources.get(r.channel)?.get(r.publisher)?.get(r.subtopic)?.get(r.protocol);
  }

  setSource(r: Source, key: number): void {
    let byPublisher = this.sources.get(r.channel);
    if (byPublisher === undefined) this.sources.set(r.channel, (byPublisher = new Map()));
    let bySubtopic = byPublisher.get(r.publisher);
    if (bySubtopic === undefined) byPublisher.set(r.publisher, (bySubtopic = new Map()));
    let byProtocol = bySubtopic.get(r.subtopic);
    if (byProtocol === undefined) bySubtopic.set(r.subtopic, (byProtocol = new Map()));
    if (!byProtocol.has(r.protocol)) this.count++;
    byProtocol.set(r.protocol, key);
  }

  /** Between batches: empties the cache once it holds more than `maxSources` (a batch's own keys stay until it ends). */
  trim(): void {
    if (this.count > DictionaryKeys.maxSources) this.forget();
  }

  forget(): void {
    this.channels = new Map();
    this.sources = new Map();
    this.count = 0;
  }
}

/**
 * Refills one (source, name) of `latest_values` with the newest record retention kept (message id ≥
 * boundary): the same text on both databases, placeholders by `p`; parameters source, source, name,
 * boundary. The records are found through their channel's key, which the source names.
 */
const latestRefill = (p: (i: number) => string) => `INSERT INTO latest_values (${latestColumns.join(', ')})
  SELECT ${latestColumns.map((c) => `m.${c}`).join(', ')}
  FROM messages m JOIN message_ids i ON i.key = m.msg
  WHERE m.channel_key = (SELECT c.key FROM message_sources s JOIN message_channels c ON c.channel = s.channel WHERE s.key = ${p(1)})
    AND m.source = ${p(2)} AND m.name = ${p(3)} AND i.id >= ${p(4)}
  ORDER BY m.time DESC, m.msg DESC, m.seq DESC LIMIT 1 ON CONFLICT DO NOTHING`;
/** Latest values whose record's message is older than the boundary (or gone): retention replaces them. */
const staleLatestSql = (p: string) => `SELECT l.source, l.name, l.msg FROM latest_values l LEFT JOIN message_ids i ON i.key = l.msg WHERE i.id IS NULL OR i.id < ${p}`;
type StaleLatest = { source: number; name: string; msg: number | string };

/** A record row that may become its (source, name)'s latest value, with its keys. */
interface Candidate {
  r: RecordRow;
  source: number;
  msg: number;
}

/** The newest record of each (source, name) of a batch: newer by time, then message key, then seq, as the readers order. */
class NewestPerName {
  private readonly bySource = new Map<number, Level<Candidate>>();

  /** (source, name) pairs held. */
  size = 0;

  offer(r: RecordRow, source: number, msg: number): void {
    let byName = this.bySource.get(source);
    if (byName === undefined) this.bySource.set(source, (byName = new Map()));
    const seen = byName.get(r.name);
    if (seen === undefined) this.size++;
    if (seen === undefined || r.time > seen.r.time || (r.time === seen.r.time && (msg > seen.msg || (msg === seen.msg && r.seq > seen.r.seq)))) byName.set(r.name, { r, source, msg });
  }

  /** Takes the newer of each (source, name) of `other`. */
  merge(other: NewestPerName): void {
    for (const c of other.all()) this.offer(c.r, c.source, c.msg);
  }

  *all(): Iterable<Candidate> {
    for (const byName of this.bySource.values()) yield* byName.values();
  }
}

/** One minute of one (source, name): SQLite's `record_minutes` row. */
interface MinuteSum {
  channel: number;
  source: number;
  name: string;
  minute: number;
  n: number;
  nv: number;
  sum: number;
  min: number;
  max: number;
}

/** The per-minute sums of records, by source, name and minute (as `record_minutes` keys them). */
class MinuteSums {
  private readonly bySource = new Map<number, Map<string, Map<number, MinuteSum>>>();

  add(channel: number, source: number, name: string, minute: number, n: number, nv: number, sum: number, min: number, max: number): void {
    let byName = this.bySource.get(source);
    if (byName === undefined) this.bySource.set(source, (byName = new Map()));
    let byMinute = byName.get(name);
    if (byMinute === undefined) byName.set(name, (byMinute = new Map()));
    const s = byMinute.get(minute);
    if (s === undefined) {
      byMinute.set(minute, { channel, source, name, minute, n, nv, sum, min, max });
      return;
    }
    s.n += n;
    if (nv === 0) return;
    if (s.nv === 0) Object.assign(s, { nv, sum, min, max });
    else Object.assign(s, { nv: s.nv + nv, sum: s.sum + sum, min: Math.min(s.min, min), max: Math.max(s.max, max) });
  }

  /** A record: in the minute SQLite's CAST(time / 60 AS INTEGER) gives it. */
  offer(channel: number, source: number, r: RecordRow): void {
    const v = r.value;
    if (v === null) this.add(channel, source, r.name, Math.trunc(r.time / 60), 1, 0, 0, 0, 0);
    else this.add(channel, source, r.name, Math.trunc(r.time / 60), 1, 1, v, v, v);
  }

  merge(other: MinuteSums): void {
    for (const s of other.all()) this.add(s.channel, s.source, s.name, s.minute, s.n, s.nv, s.sum, s.min, s.max);
  }

  get empty(): boolean {
    return this.bySource.size === 0;
  }

  *all(): Iterable<MinuteSum> {
    for (const byName of this.bySource.values()) for (const byMinute of byName.values()) yield* byMinute.values();
  }
}

/**
 * How long SQLite's sink holds the newest values of its batches before they go to `latest_values`
 * (ms), and how many (source, name) it holds at most. A source that sends many messages a second
 * costs one upsert per name and period rather than one per record: half of a SenML batch's commit
 * time went to those upserts (bench/writer, bench/http-publish). Readers merge in the records after
 * the watermark, so GET …/latest is exact all the same; after a crash the next sink does.
 */
const latestHoldMs = 200;
const latestMaxHeld = 10_000;

/** On SQLite: records keyed as above, their message keys given out by the sink (batches begin immediate: it is the only writer). */
class SqliteSink implements MessageSink {
  private readonly writeAll: (batch: RowBatch) => void;
  private readonly probeAll: () => void;
  private readonly pruneAll: (boundaryId: string, limit: number) => number;
  private readonly flushAll: () => void;
  private readonly recoverAll: () => void;
  private readonly keys = new DictionaryKeys();
  /** Newest values of committed batches not yet in latest_values, since `heldSince`; `heldRow`: the last record they cover. */
  private held = new NewestPerName();
  private heldSince = 0;
  private heldRow: number | bigint = 0;
  /** Per-minute sums of the same records, not yet in record_minutes; `sumsFrom`: the minutes' watermark they follow. */
  private sums = new MinuteSums();
  private sumsFrom: number | bigint = -1;
  private flushTimer: NodeJS.Timeout | undefined;
  private recovered = false;

  constructor(db: NonNullable<Database['sqlite']>) {
    const insert = (table: string, cols: readonly string[], tail = '') => db.prepare(`INSERT ${tail ? '' : 'OR IGNORE '}INTO ${table} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})${tail}`);
    const known = db.prepare('SELECT 1 FROM message_ids WHERE id = ?').pluck();
    const lastKey = db.prepare('SELECT MAX(key) FROM message_ids').pluck();
    const recordId = db.prepare('INSERT INTO message_ids (key, id, last_row) VALUES (?, ?, ?)');
    const channelKey = db.prepare('SELECT key FROM message_channels WHERE channel = ?').pluck();
    const newChannel = db.prepare('INSERT INTO message_channels (channel) VALUES (?)');
    const sourceKey = db.prepare('SELECT key FROM message_sources WHERE channel = ? AND publisher = ? AND subtopic = ? AND protocol = ?').pluck();
    const newSource = db.prepare('INSERT INTO message_sources (org_id, channel, subtopic, publisher, protocol) VALUES (?, ?, ?, ?, ?)');
    // a plain INSERT: OR IGNORE would also drop a row that breaks NOT NULL, silently
    const rec = db.prepare(`INSERT INTO messages (${recordColumns.join(', ')}) VALUES (${recordColumns.map(() => '?').join(', ')})`);
    const doc = insert('message_documents', documentColumns);
    const pay = insert('message_payloads', payloadColumns);
    const latest = insert('latest_values', latestColumns, ` ${latestConflict}`);
    const bool = (b: boolean | null) => (b === null ? null : b ? 1 : 0);

    const channelOf = (channel: string): number => {
      let key = this.keys.channel(channel);
      if (key === undefined) {
        key = (channelKey.get(channel) as number | undefined) ?? Number(newChannel.run(channel).lastInsertRowid);
        this.keys.setChannel(channel, key);
      }
      return key;
    };
    const sourceOf = (r: RecordRow): number => {
      let key = this.keys.source(r);
      if (key === undefined) {
        key = (sourceKey.get(r.channel, r.publisher, r.subtopic, r.protocol) as number | undefined) ?? Number(newSource.run(r.org_id, r.channel, r.subtopic, r.publisher, r.protocol).lastInsertRowid);
        this.keys.setSource(r, key);
      }
      return key;
    };

    // Both transactions read before they write. Begun deferred, they would fail with
    // SQLITE_BUSY_SNAPSHOT when another connection (the main thread, next to the writer thread)
    // committed in between; begun immediate, they wait for the lock instead (busy_timeout).
    const watermark = db.prepare('SELECT row FROM latest_watermark').pluck();
    // never back: a recovery by another sink on the file may have moved it past this one's rows
    const setWatermark = db.prepare('UPDATE latest_watermark SET row = MAX(row, ?)');
    const upsertLatest = (newest: NewestPerName) => {
      for (const { r, source, msg } of newest.all()) {
        latest.run(source, r.name, msg, r.seq, r.unit, r.time, r.update_time, r.value, r.string_value, bool(r.bool_value), r.data_value, r.sum);
      }
    };
    const lastRecord = db.prepare('SELECT MAX(rowid) FROM messages').pluck();
    // the records after the minutes' watermark into their minutes (migration 11), up to the last
    const minutesWatermark = db.prepare('SELECT row FROM record_minutes_watermark').pluck();
    const setMinutesWatermark = db.prepare('UPDATE record_minutes_watermark SET row = ?');
    const addToMinute = `ON CONFLICT (channel_key, minute, name, source) DO UPDATE SET n = n + excluded.n, nv = nv + excluded.nv,
        sum = CASE WHEN excluded.nv = 0 THEN sum WHEN nv = 0 THEN excluded.sum ELSE sum + excluded.sum END,
        min = CASE WHEN excluded.nv = 0 THEN min WHEN nv = 0 THEN excluded.min ELSE MIN(min, excluded.min) END,
        max = CASE WHEN excluded.nv = 0 THEN max WHEN nv = 0 THEN excluded.max ELSE MAX(max, excluded.max) END`;
    // from the records themselves: those a crashed sink held the sums of
    const rollUp = db.prepare(`${minutesInsert} FROM messages WHERE rowid > ? AND rowid <= ? GROUP BY 1, 2, 3, 4 ${addToMinute}`);
    const upsertMinute = db.prepare(`INSERT INTO record_minutes (channel_key, minute, name, source, n, nv, sum, min, max) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ${addToMinute}`);
    // the minutes retention cut into, from the records left (every record is rolled up first)
    const dropMinute = db.prepare('DELETE FROM record_minutes WHERE channel_key = ? AND minute = ?');
    const refillMinute = db.prepare(`${minutesInsert} FROM messages WHERE channel_key = ? AND time > ? AND time < ? AND CAST(time / 60 AS INTEGER) = ? GROUP BY 1, 2, 3, 4`);
    const recomputeMinutes = (cut: { channel_key: number; minute: number }[]) => {
      const seen = new Set<string>();
      for (const { channel_key: channel, minute } of cut) {
        const k = `${channel}/${minute}`;
        if (seen.has(k)) continue;
        seen.add(k);
        dropMinute.run(channel, minute);
        // a minute's records, whichever way CAST rounds: (60m - 60, 60m + 60) holds them
        refillMinute.run(channel, minute * 60 - 60, minute * 60 + 60, minute);
      }
    };
    /** The held values into latest_values and their sums into record_minutes, and the watermarks after the records they cover (inside a transaction). */
    const flushHeld = () => {
      upsertLatest(this.held);
      setWatermark.run(this.heldRow);
      const from = minutesWatermark.get() as number | bigint;
      if (from === this.sumsFrom) {
        for (const m of this.sums.all()) upsertMinute.run(m.channel, m.minute, m.name, m.source, m.n, m.nv, m.nv ? m.sum : null, m.nv ? m.min : null, m.nv ? m.max : null);
      } else if (this.heldRow > from) {
        // another sink on the file (a one-off command) rolled up records since: those up to ours come from the records
        rollUp.run(from, this.heldRow);
      }
      if (this.heldRow > from) setMinutesWatermark.run(this.heldRow);
    };
    /** After a transaction that flushed: nothing held. */
    const flushed = () => {
      this.held = new NewestPerName();
      this.sums = new MinuteSums();
      this.sumsFrom = minutesWatermark.get() as number | bigint;
    };
    // the newest of each (source, name) among the records after the watermark, which a sink that
    // crashed held (WHERE true: an upsert's SELECT needs one, or its ON reads as a join's)
    const recoverTail = db.prepare(`INSERT INTO latest_values (${latestColumns.join(', ')})
      SELECT ${latestColumns.join(', ')} FROM (
        SELECT ${latestColumns.join(', ')}, ROW_NUMBER() OVER (PARTITION BY source, name ORDER BY time DESC, msg DESC, seq DESC) AS rn
        FROM messages WHERE rowid > ?) WHERE rn = 1 AND true ${latestConflict}`);
    const resetWatermark = db.prepare('UPDATE latest_watermark SET row = ?');

    const writeRows = (all: RowBatch, newest: NewestPerName, sums: MinuteSums): number | bigint => {
      // ids first: a message recorded before (a redelivered batch) is not stored again
      const fresh = new Set<string>();
      for (const id of all.ids) if (!fresh.has(id) && known.get(id) === undefined) fresh.add(id);
      const batch = freshPart(all, fresh);
      // message keys in the order the bus handed the messages over
      let nextKey = Number((lastKey.get() as number | null) ?? 0);
      const keys = new Map<string, number>();
      for (const id of fresh) keys.set(id, ++nextKey);
      // the last rowid of each message's records: retention finds old records through it
      const lastRow = new Map<string, number | bigint>();
      // a message's records are consecutive (rows.ts): its keys are looked up, and its last rowid
      // noted, once per message
      let id = '';
      let channel = 0;
      let source = 0;
      let msg = 0;
      let row: number | bigint = 0;
      for (const r of batch.records) {
        if (r.id !== id) {
          if (id !== '') lastRow.set(id, row);
          id = r.id;
          channel = channelOf(r.channel);
          source = sourceOf(r);
          msg = keys.get(id)!;
        }
        row = rec.run(channel, source, msg, r.seq, r.name, r.unit, r.time, r.update_time, r.value, r.string_value, bool(r.bool_value), r.data_value, r.sum).lastInsertRowid;
        newest.offer(r, source, msg);
        sums.offer(channel, source, r);
      }
      if (id !== '') lastRow.set(id, row);
      for (const [id, key] of keys) recordId.run(key, id, lastRow.get(id) ?? null);
      for (const d of batch.documents) doc.run(d.id, d.seq, d.org_id, d.channel, d.subtopic, d.publisher, d.protocol, d.time, d.document);
      for (const p of batch.payloads) pay.run(p.id, p.org_id, p.channel, p.subtopic, p.publisher, p.protocol, p.content_type, p.time, p.size, p.truncated ? 1 : 0, p.payload);
      return row;
    };
    const writeAll = db.transaction((batch: RowBatch, newest: NewestPerName, sums: MinuteSums, flush: boolean) => {
      const row = writeRows(batch, newest, sums);
      if (flush) flushHeld();
      return row;
    });
    const probeAll = db.transaction((batch: RowBatch) => {
      // every statement a write uses, the latest values' upsert too
      const newest = new NewestPerName();
      writeRows(batch, newest, new MinuteSums());
      upsertLatest(newest);
      throw rolledBack;
    });
    this.probeAll = () => {
      this.recover();
      try {
        probeAll.immediate(probeRows());
      } catch (e) {
        if (e !== rolledBack) throw e;
      } finally {
        // the probe's keys rolled back with it
        this.keys.forget();
      }
    };
    this.writeAll = (batch) => {
      this.recover();
      this.keys.trim();
      const newest = new NewestPerName();
      const sums = new MinuteSums();
      const flush = this.held.size > 0 && (Date.now() - this.heldSince >= latestHoldMs || this.held.size >= latestMaxHeld);
      let row: number | bigint;
      try {
        row = writeAll.immediate(batch, newest, sums, flush);
      } catch (e) {
        this.keys.forget();
        throw e;
      }
      if (flush) flushed();
      this.hold(newest, sums, row);
    };
    const flushOnly = db.transaction(flushHeld);
    this.flushAll = () => {
      if (this.held.size === 0) return;
      flushOnly.immediate();
      flushed();
    };
    const recoverOnly = db.transaction(() => {
      const from = watermark.get() as number | bigint;
      const last = (lastRecord.get() as number | bigint | null) ?? 0;
      if (last > from) recoverTail.run(from);
      // after retention emptied the table, rowids start again from 1: the watermark follows them down
      resetWatermark.run(last);
      // and the sums of the records it had not rolled up
      const minutesFrom = minutesWatermark.get() as number | bigint;
      if (last > minutesFrom) rollUp.run(minutesFrom, last);
      if (last !== minutesFrom) setMinutesWatermark.run(last);
    });
    this.recoverAll = () => {
      recoverOnly.immediate();
      this.sumsFrom = minutesWatermark.get() as number | bigint;
    };

    // Records have no index on their message: the old ones are the rowids up to the last row of the
    // newest message before the boundary (rowids grow as messages are stored), checked one by one.
    const lastOldRow = db.prepare('SELECT MAX(last_row) FROM message_ids WHERE id < ?').pluck();
    const pruneRecords = db.prepare('DELETE FROM messages WHERE rowid IN (SELECT m.rowid FROM messages m JOIN message_ids i ON i.key = m.msg WHERE m.rowid <= ? AND i.id < ? LIMIT ?) RETURNING channel_key, CAST(time / 60 AS INTEGER) AS minute');
    const pruneDocuments = db.prepare('DELETE FROM message_documents WHERE (id, seq) IN (SELECT id, seq FROM message_documents WHERE id < ? LIMIT ?)');
    const prunePayloads = db.prepare('DELETE FROM message_payloads WHERE id IN (SELECT id FROM message_payloads WHERE id < ? LIMIT ?)');
    const staleLatest = db.prepare(staleLatestSql('?'));
    const dropLatest = db.prepare('DELETE FROM latest_values WHERE source = ? AND name = ? AND msg = ?');
    const refillLatest = db.prepare(latestRefill(() => '?'));
    const pruneIds = db.prepare('DELETE FROM message_ids WHERE key IN (SELECT key FROM message_ids WHERE id < ? LIMIT ?)');
    const pruneAll = db.transaction((boundaryId: string, limit: number) => {
      // what retention replaces must be in latest_values first
      flushHeld();
      const bound = lastOldRow.get(boundaryId) as number | bigint | null;
      const cut = bound === null ? [] : (pruneRecords.all(bound, boundaryId, limit) as { channel_key: number; minute: number }[]);
      recomputeMinutes(cut);
      const records = cut.length;
      const documents = pruneDocuments.run(boundaryId, limit).changes;
      const payloads = prunePayloads.run(boundaryId, limit).changes;
      if (records === limit || documents === limit || payloads === limit) return records + documents + payloads;
      // every row before the boundary is gone: the newest values that went with them are
      // replaced by the newest left, then the ids go (after the rows: the records are found through them)
      let n = records + documents + payloads;
      for (const k of staleLatest.all(boundaryId) as StaleLatest[]) {
        n += dropLatest.run(k.source, k.name, k.msg).changes;
        refillLatest.run(k.source, k.source, k.name, boundaryId);
      }
      n += pruneIds.run(boundaryId, limit).changes;
      // with every record gone, new ones are numbered from 1 again
      followRowids();
      return n;
    });
    const followLatest = db.prepare('UPDATE latest_watermark SET row = MIN(row, COALESCE((SELECT MAX(rowid) FROM messages), 0))');
    const followMinutes = db.prepare('UPDATE record_minutes_watermark SET row = MIN(row, COALESCE((SELECT MAX(rowid) FROM messages), 0))');
    const followRowids = () => {
      followLatest.run();
      followMinutes.run();
    };
    this.pruneAll = (boundaryId, limit) => {
      this.recover();
      const n = pruneAll.immediate(boundaryId, limit);
      flushed();
      return n;
    };
  }

  /** Once per sink, before its first write: the latest values a crashed sink held, from the records after the watermark. */
  private recover(): void {
    if (this.recovered) return;
    this.recoverAll();
    this.recovered = true;
  }

  /** Holds a committed batch's newest values; they go out with a batch once held `latestHoldMs`, or on their own when no batch comes. */
  private hold(newest: NewestPerName, sums: MinuteSums, row: number | bigint): void {
    if (newest.size === 0) return;
    if (this.held.size === 0) this.heldSince = Date.now();
    this.held.merge(newest);
    this.sums.merge(sums);
    if (row > this.heldRow) this.heldRow = row;
    this.flushLater(latestHoldMs);
  }

  private flushLater(ms: number): void {
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      if (this.held.size === 0) return;
      // a batch flushed them since, and holds newer ones: their turn comes when they are due
      const wait = this.heldSince + latestHoldMs - Date.now();
      if (wait > 0) return this.flushLater(wait);
      try {
        this.flushAll();
      } catch {
        // held for the next batch, which writes them in its transaction (and fails loudly if it cannot)
      }
    }, ms);
    this.flushTimer.unref();
  }

  async write(batch: RowBatch): Promise<void> {
    this.writeAll(batch);
  }

  async probe(): Promise<void> {
    this.probeAll();
  }

  async pruneBefore(boundaryId: string, limit: number): Promise<number> {
    return this.pruneAll(boundaryId, limit);
  }

  async close(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.flushAll();
  }
}

/**
 * An array parameter as PostgreSQL's array literal text, built by V8's native JSON.stringify: the
 * JSON of an array of numbers, booleans, nulls and strings is the literal once its brackets are
 * braces, provided no string needed an escape (JSON's escapes are not the array syntax's) and no
 * number is NaN or infinite (JSON would make it null). Anything else goes to the driver as the
 * array itself. node-postgres escapes array literals element by element with two regular
 * expressions each, which cost more than PostgreSQL's whole insert; see bench/writer.
 */
function arrayLiteral(values: unknown[], finite: boolean): unknown {
  if (!finite) return values;
  const json = JSON.stringify(values);
  return json.includes('\\') ? values : `{${json.slice(1, -1)}}`;
}

/** Column parameters for `INSERT … SELECT * FROM unnest(…)`: one round trip and one statement per table and batch. */
function columnsOf<T>(rows: T[], cols: readonly (keyof T)[], types: readonly string[]): unknown[] {
  const out = new Array<unknown>(cols.length);
  for (let c = 0; c < cols.length; c++) {
    const col = cols[c]!;
    const values = new Array<unknown>(rows.length);
    let finite = true;
    for (let i = 0; i < rows.length; i++) {
      const v = rows[i]![col];
      if (typeof v === 'number' && !Number.isFinite(v)) finite = false;
      values[i] = v;
    }
    // bytea goes to the driver, which writes buffers in hex
    out[c] = types[c] === 'bytea' ? values : arrayLiteral(values, finite);
  }
  return out;
}

function unnestInsert(table: string, cols: readonly string[], types: readonly string[], conflict = 'ON CONFLICT DO NOTHING'): string {
  return `INSERT INTO ${table} (${cols.join(', ')}) SELECT * FROM unnest(${types.map((t, i) => `$${i + 1}::${t}[]`).join(', ')}) ${conflict}`;
}

const documentTypes = ['text', 'int4', 'text', 'text', 'text', 'text', 'text', 'float8', 'jsonb'] as const;
const payloadTypes = ['text', 'text', 'text', 'text', 'text', 'text', 'text', 'float8', 'int4', 'bool', 'bytea'] as const;
const idSql = 'INSERT INTO message_ids (id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING RETURNING id, key';
/**
 * Dictionary keys of the given channels: made for the new ones, read for the others. The read
 * does not see what the insert made in the same statement, so the two parts never overlap; a key
 * another node made and committed while this statement ran is in neither (read again, below).
 */
const channelKeysSql = `WITH given AS (SELECT * FROM unnest($1::text[]) AS g (channel)),
made AS (INSERT INTO message_channels (channel) SELECT channel FROM given ORDER BY channel ON CONFLICT DO NOTHING RETURNING key, channel)
SELECT key, channel FROM made UNION ALL SELECT c.key, c.channel FROM message_channels c JOIN given g ON g.channel = c.channel`;
const sourceKeysSql = `WITH given AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS g (org_id, channel, publisher, subtopic, protocol)),
made AS (INSERT INTO message_sources (org_id, channel, publisher, subtopic, protocol) SELECT * FROM given ORDER BY channel, publisher, subtopic, protocol ON CONFLICT DO NOTHING RETURNING key, channel, publisher, subtopic, protocol)
SELECT key, channel, publisher, subtopic, protocol FROM made
UNION ALL SELECT s.key, s.channel, s.publisher, s.subtopic, s.protocol FROM message_sources s JOIN given g USING (channel, publisher, subtopic, protocol)`;
const recordTypes = ['int4', 'int4', 'int8', 'int4', 'text', 'text', 'float8', 'float8', 'float8', 'text', 'bool', 'text', 'float8'] as const;
/**
 * The records, and from the same rows the newest of each (source, name) into `latest_values`: one
 * statement, so the batch crosses the wire and is parsed once (sending the newest rows again cost
 * more than the upsert itself, bench/writer). Upserted in key order: nodes storing at once lock the
 * keys in the same order.
 */
const recordSql = `WITH r AS (${unnestInsert('messages', recordColumns, recordTypes, '')} RETURNING ${latestColumns.join(', ')}),
n AS (SELECT DISTINCT ON (source, name) * FROM r ORDER BY source, name, time DESC, msg DESC, seq DESC)
INSERT INTO latest_values (${latestColumns.join(', ')})
SELECT ${latestColumns.join(', ')} FROM n ORDER BY source, name
${latestConflict}`;
const documentSql = unnestInsert('message_documents', documentColumns, documentTypes);
const payloadSql = unnestInsert('message_payloads', payloadColumns, payloadTypes);

/** On PostgreSQL: the same record layout; message keys come from `message_ids`' identity, shared by every node. */
class PostgresSink implements MessageSink {
  private readonly keys = new DictionaryKeys();
  /** The newest message key before a retention boundary, found once per boundary (every pass deletes in chunks). */
  private oldKeys: { boundaryId: string; last: string | null } | undefined;

  constructor(private readonly db: Database) {}

  async write(all: RowBatch): Promise<void> {
    if (all.ids.length === 0) return;
    this.keys.trim();
    try {
      await this.db.pgTransaction((client) => this.writeIn(client, all));
    } catch (e) {
      this.keys.forget();
      throw e;
    }
  }

  async probe(): Promise<void> {
    try {
      await this.db.pgTransaction(async (client) => {
        await this.writeIn(client, probeRows());
        throw rolledBack;
      });
    } catch (e) {
      if (e !== rolledBack) throw e;
    } finally {
      // the probe's keys rolled back with it
      this.keys.forget();
    }
  }

  private async writeIn(client: PoolClient, all: RowBatch): Promise<void> {
    // ids first: a message recorded before (a redelivered batch, here or on another node) is
    // not stored again; a node storing the same message concurrently waits on its id, then skips it
    const recorded = await client.query<{ id: string; key: string }>({ name: 'fw_insert_ids', text: idSql, values: [arrayLiteral(all.ids, true)] });
    const msgKeys = new Map(recorded.rows.map((r) => [r.id, Number(r.key)]));
    const batch = freshPart(all, new Set(msgKeys.keys()));
    if (batch.records.length) {
      await this.learnKeys(client, batch.records);
      await client.query({ name: 'fw_insert_records', text: recordSql, values: this.recordColumns(batch.records, msgKeys) });
    }
    if (batch.documents.length) await client.query({ name: 'fw_insert_documents', text: documentSql, values: columnsOf<DocumentRow>(batch.documents, documentColumns, documentTypes) });
    if (batch.payloads.length) await client.query({ name: 'fw_insert_payloads', text: payloadSql, values: columnsOf<PayloadRow>(batch.payloads, payloadColumns, payloadTypes) });
  }

  /** Looks up, or makes, the dictionary keys of the records' channels and sources that are not held yet. */
  private async learnKeys(client: PoolClient, records: RecordRow[]): Promise<void> {
    const channels = new Set<string>();
    const sources = new Map<string, Source & { org_id: string }>();
    let id = '';
    for (const r of records) {
      if (r.id === id) continue; // a message's records share its source
      id = r.id;
      if (this.keys.channel(r.channel) === undefined) channels.add(r.channel);
      if (this.keys.source(r) === undefined) sources.set(JSON.stringify([r.channel, r.publisher, r.subtopic, r.protocol]), r);
    }
    for (let attempt = 0; channels.size > 0; attempt++) {
      if (attempt === 2) throw new Error(`message_channels: no key for ${[...channels].join(', ')}`);
      const got = await client.query<{ key: number; channel: string }>({ name: 'fw_channel_keys', text: channelKeysSql, values: [[...channels]] });
      for (const row of got.rows) {
        this.keys.setChannel(row.channel, row.key);
        channels.delete(row.channel);
      }
    }
    for (let attempt = 0; sources.size > 0; attempt++) {
      if (attempt === 2) throw new Error(`message_sources: no key for ${sources.size} sources`);
      const missing = [...sources.values()];
      const got = await client.query<Source & { key: number }>({
        name: 'fw_source_keys',
        text: sourceKeysSql,
        values: [missing.map((r) => r.org_id), missing.map((r) => r.channel), missing.map((r) => r.publisher), missing.map((r) => r.subtopic), missing.map((r) => r.protocol)],
      });
      for (const row of got.rows) {
        this.keys.setSource(row, row.key);
        sources.delete(JSON.stringify([row.channel, row.publisher, row.subtopic, row.protocol]));
      }
    }
  }

  /** Column parameters of `recordSql` for rows whose keys are all known. */
  private recordColumns(records: RecordRow[], msgKeys: Map<string, number>): unknown[] {
    const n = records.length;
    const channel = new Array<number>(n);
    const source = new Array<number>(n);
    const msg = new Array<number>(n);
    let id = '';
    let c = 0;
    let s = 0;
    let m = 0;
    for (let i = 0; i < n; i++) {
      const r = records[i]!;
      if (r.id !== id) {
        id = r.id;
        c = this.keys.channel(r.channel)!;
        s = this.keys.source(r)!;
        m = msgKeys.get(id)!;
      }
      channel[i] = c;
      source[i] = s;
      msg[i] = m;
    }
    return [arrayLiteral(channel, true), arrayLiteral(source, true), arrayLiteral(msg, true), ...columnsOf<RecordRow>(records, recordValueColumns, recordTypes.slice(3))];
  }

  /** Holds nothing between batches. */
  async close(): Promise<void> {}

  async pruneBefore(boundaryId: string, limit: number): Promise<number> {
    const pool = this.db.pool!;
    const del = async (sql: string, params: unknown[] = [boundaryId, limit]) => (await pool.query(sql, params)).rowCount ?? 0;
    if (this.oldKeys?.boundaryId !== boundaryId) {
      const last = await pool.query<{ last: string | null }>('SELECT MAX(key) AS last FROM message_ids WHERE id < $1', [boundaryId]);
      this.oldKeys = { boundaryId, last: last.rows[0]?.last ?? null };
    }
    // records have no key of their own: a BRIN index on the message key finds the old ones (keys
    // grow as messages are stored), each checked against its message id, deleted by physical address
    const records = this.oldKeys.last === null ? 0 : await del(
      'DELETE FROM messages WHERE ctid = ANY(ARRAY(SELECT m.ctid FROM messages m JOIN message_ids i ON i.key = m.msg WHERE m.msg <= $3 AND i.id < $1 LIMIT $2))',
      [boundaryId, limit, this.oldKeys.last],
    );
    const documents = await del('DELETE FROM message_documents WHERE (id, seq) IN (SELECT id, seq FROM message_documents WHERE id < $1 LIMIT $2)');
    const payloads = await del('DELETE FROM message_payloads WHERE id IN (SELECT id FROM message_payloads WHERE id < $1 LIMIT $2)');
    if (records === limit || documents === limit || payloads === limit) return records + documents + payloads;
    // every row before the boundary is gone: the newest values that went with them are replaced by the newest left
    let n = records + documents + payloads;
    const stale = await pool.query<StaleLatest>(staleLatestSql('$1'), [boundaryId]);
    for (const k of stale.rows) {
      await this.db.pgTransaction(async (client) => {
        // only the row found stale: a writer may have stored a newer value for the key since
        const gone = await client.query('DELETE FROM latest_values WHERE source = $1 AND name = $2 AND msg = $3', [k.source, k.name, k.msg]);
        n += gone.rowCount ?? 0;
        if (gone.rowCount) await client.query(latestRefill((i) => `$${i}`), [k.source, k.source, k.name, boundaryId]);
      });
    }
    return n + (await del('DELETE FROM message_ids WHERE id IN (SELECT id FROM message_ids WHERE id < $1 LIMIT $2)'));
  }
}

export function createMessageSink(db: Database): MessageSink {
  return db.sqlite ? new SqliteSink(db.sqlite) : new PostgresSink(db);
}
