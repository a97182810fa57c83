import type { Statement } from 'better-sqlite3';
import type { Database } from '../db/index.js';
import type { DocumentRow, PayloadRow, RecordRow, RowBatch } from './rows.js';

/** Where the writer puts rows: one transaction per batch, duplicates (redelivery) ignored. */
export interface MessageSink {
  write(batch: RowBatch): Promise<void>;
  /** Deletes messages received before `boundaryId` (ids are UUID v7, so they sort by receive time), at most `limit` rows per table; returns rows deleted. */
  pruneBefore(boundaryId: string, limit: number): Promise<number>;
}

/** The smallest UUID v7 of a millisecond: every message received before it has a smaller id. */
export function idBoundary(ms: number): string {
  const hex = Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7000-8000-000000000000`;
}

const recordColumns = ['id', 'seq', 'org_id', 'channel', 'subtopic', 'publisher', 'protocol', 'name', 'unit', 'time', 'update_time', 'value', 'string_value', 'bool_value', 'data_value', 'sum'] as const;
const documentColumns = ['id', 'seq', 'org_id', 'channel', 'subtopic', 'publisher', 'protocol', 'time', 'document'] as const;
const payloadColumns = ['id', 'org_id', 'channel', 'subtopic', 'publisher', 'protocol', 'content_type', 'time', 'size', 'truncated', 'payload'] as const;

const tables = ['messages', 'message_documents', 'message_payloads'] as const;

class SqliteSink implements MessageSink {
  private readonly insertRecord: Statement<unknown[]>;
  private readonly insertDocument: Statement<unknown[]>;
  private readonly insertPayload: Statement<unknown[]>;
  private readonly writeAll: (batch: RowBatch) => void;

  constructor(private readonly db: NonNullable<Database['sqlite']>) {
    const insert = (table: string, cols: readonly string[]) => db.prepare(`INSERT OR IGNORE INTO ${table} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`);
    this.insertRecord = insert('messages', recordColumns);
    this.insertDocument = insert('message_documents', documentColumns);
    this.insertPayload = insert('message_payloads', payloadColumns);
    const rec = this.insertRecord;
    const doc = this.insertDocument;
    const pay = this.insertPayload;
    this.writeAll = db.transaction((batch: RowBatch) => {
      for (const r of batch.records) {
        rec.run(r.id, r.seq, r.org_id, r.channel, r.subtopic, r.publisher, r.protocol, r.name, r.unit, r.time, r.update_time, r.value, r.string_value, r.bool_value === null ? null : r.bool_value ? 1 : 0, r.data_value, r.sum);
      }
      for (const d of batch.documents) doc.run(d.id, d.seq, d.org_id, d.channel, d.subtopic, d.publisher, d.protocol, d.time, d.document);
      for (const p of batch.payloads) pay.run(p.id, p.org_id, p.channel, p.subtopic, p.publisher, p.protocol, p.content_type, p.time, p.size, p.truncated ? 1 : 0, p.payload);
    });
  }

  async write(batch: RowBatch): Promise<void> {
    this.writeAll(batch);
  }

  async pruneBefore(boundaryId: string, limit: number): Promise<number> {
    let n = 0;
    for (const t of tables) {
      const key = t === 'message_payloads' ? 'id' : 'id, seq';
      n += this.db.prepare(`DELETE FROM ${t} WHERE (${key}) IN (SELECT ${key} FROM ${t} WHERE id < ? LIMIT ?)`).run(boundaryId, limit).changes;
    }
    return n;
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

function unnestInsert(table: string, cols: readonly string[], types: readonly string[]): string {
  return `INSERT INTO ${table} (${cols.join(', ')}) SELECT * FROM unnest(${types.map((t, i) => `$${i + 1}::${t}[]`).join(', ')}) ON CONFLICT DO NOTHING`;
}

const recordTypes = ['text', 'int4', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'float8', 'float8', 'float8', 'text', 'bool', 'text', 'float8'] as const;
const documentTypes = ['text', 'int4', 'text', 'text', 'text', 'text', 'text', 'float8', 'jsonb'] as const;
const payloadTypes = ['text', 'text', 'text', 'text', 'text', 'text', 'text', 'float8', 'int4', 'bool', 'bytea'] as const;
const recordSql = unnestInsert('messages', recordColumns, recordTypes);
const documentSql = unnestInsert('message_documents', documentColumns, documentTypes);
const payloadSql = unnestInsert('message_payloads', payloadColumns, payloadTypes);

class PostgresSink implements MessageSink {
  constructor(private readonly db: Database) {}

  async write(batch: RowBatch): Promise<void> {
    const client = await this.db.pool!.connect();
    try {
      await client.query('BEGIN');
      if (batch.records.length) await client.query({ name: 'fw_insert_records', text: recordSql, values: columnsOf<RecordRow>(batch.records, recordColumns, recordTypes) });
      if (batch.documents.length) await client.query({ name: 'fw_insert_documents', text: documentSql, values: columnsOf<DocumentRow>(batch.documents, documentColumns, documentTypes) });
      if (batch.payloads.length) await client.query({ name: 'fw_insert_payloads', text: payloadSql, values: columnsOf<PayloadRow>(batch.payloads, payloadColumns, payloadTypes) });
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      client.release();
    }
  }

  async pruneBefore(boundaryId: string, limit: number): Promise<number> {
    let n = 0;
    for (const t of tables) {
      const key = t === 'message_payloads' ? 'id' : 'id, seq';
      const res = await this.db.pool!.query(`DELETE FROM ${t} WHERE (${key}) IN (SELECT ${key} FROM ${t} WHERE id < $1 LIMIT $2)`, [boundaryId, limit]);
      n += res.rowCount ?? 0;
    }
    return n;
  }
}

export function createMessageSink(db: Database): MessageSink {
  return db.sqlite ? new SqliteSink(db.sqlite) : new PostgresSink(db);
}
