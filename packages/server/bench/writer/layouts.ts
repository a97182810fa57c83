// The same record rows written the simplest way each database allows, beside the sink: the
// reference that shows what our layers cost, and the PostgreSQL statement layouts the sink could use.
import type { Database } from '../../src/db/index.js';
import type { RecordRow } from '../../src/storage/rows.js';

/** The record table's columns (migration 4): three dictionary keys, then the record's own values. */
export const recordColumns = ['channel_key', 'source', 'msg', 'seq', 'name', 'unit', 'time', 'update_time', 'value', 'string_value', 'bool_value', 'data_value', 'sum'] as const;
type CompactRow = Record<(typeof recordColumns)[number], unknown>;

let lastMsg = 0;
/**
 * Rows as the record table holds them, with the keys taken as known (one channel, one source, a
 * new message key per pack): what is left is the database's own work, the floor under the sink.
 */
function compact(rows: RecordRow[]): CompactRow[] {
  return rows.map((r) => {
    if (r.seq === 0) lastMsg++;
    return { channel_key: 1, source: 1, msg: lastMsg, seq: r.seq, name: r.name, unit: r.unit, time: r.time, update_time: r.update_time, value: r.value, string_value: r.string_value, bool_value: r.bool_value, data_value: r.data_value, sum: r.sum };
  });
}

/** Rows → one transaction. */
export type RowWriter = (rows: RecordRow[]) => Promise<void>;

/** A bare prepared INSERT run once per row inside one transaction (better-sqlite3). */
export function sqliteStatementLoop(db: Database): RowWriter {
  const sqlite = db.sqlite!;
  const st = sqlite.prepare(`INSERT INTO messages (${recordColumns.join(', ')}) VALUES (${recordColumns.map(() => '?').join(', ')})`);
  const tx = sqlite.transaction((rows: RecordRow[]) => {
    let msg = lastMsg;
    for (const r of rows) {
      if (r.seq === 0) msg++;
      st.run(1, 1, msg, r.seq, r.name, r.unit, r.time, r.update_time, r.value, r.string_value, r.bool_value === null ? null : Number(r.bool_value), r.data_value, r.sum);
    }
    lastMsg = msg;
  });
  return async (rows) => tx(rows);
}

/** PostgreSQL allows 65,535 parameters per statement: 5,041 rows of 13 columns. */
const valuesChunk = 4000;

/** Plain multi-row `INSERT … VALUES ($1, …), (…)` in chunks of 4,000 rows, one transaction. */
export function postgresMultiRowValues(db: Database): RowWriter {
  const texts = new Map<number, string>();
  const textFor = (n: number) => {
    let t = texts.get(n);
    if (!t) {
      const tuples = Array.from({ length: n }, (_, i) => `(${recordColumns.map((_c, c) => `$${i * recordColumns.length + c + 1}`).join(', ')})`);
      t = `INSERT INTO messages (${recordColumns.join(', ')}) VALUES ${tuples.join(', ')} ON CONFLICT DO NOTHING`;
      texts.set(n, t);
    }
    return t;
  };
  return async (rows) => {
    await db.pgTransaction(async (client) => {
      for (let i = 0; i < rows.length; i += valuesChunk) {
        const chunk = compact(rows.slice(i, i + valuesChunk));
        const values: unknown[] = [];
        for (const r of chunk) for (const c of recordColumns) values.push(r[c]);
        // prepared by name per chunk size: the 4,000-row text is planned once
        await client.query({ name: `bench_values_${chunk.length}`, text: textFor(chunk.length), values });
      }
    });
  };
}

/**
 * The whole batch as one JSON parameter, expanded by `json_populate_recordset` into rows of the
 * table's own type: one statement, and the parameter is built by V8's native JSON.stringify.
 */
export function postgresJsonRecordset(db: Database, fn: 'json_populate_recordset' | 'jsonb_populate_recordset'): RowWriter {
  const cols = recordColumns.join(', ');
  const text = `INSERT INTO messages (${cols}) SELECT ${cols} FROM ${fn}(NULL::messages, $1) ON CONFLICT DO NOTHING`;
  return async (rows) => {
    await db.pgTransaction(async (client) => {
      await client.query({ name: `bench_${fn}`, text, values: [JSON.stringify(compact(rows))] });
    });
  };
}

const recordTypes = ['int4', 'int4', 'int8', 'int4', 'text', 'text', 'float8', 'float8', 'float8', 'text', 'bool', 'text', 'float8'];

/**
 * `INSERT … SELECT * FROM unnest($1::text[], …)` with the column arrays handed to the driver as
 * JavaScript arrays, which node-postgres turns into array literals element by element (how the
 * sink did it before it built the literals itself).
 */
export function postgresUnnestDriverArrays(db: Database): RowWriter {
  const text = `INSERT INTO messages (${recordColumns.join(', ')}) SELECT * FROM unnest(${recordTypes.map((t, i) => `$${i + 1}::${t}[]`).join(', ')}) ON CONFLICT DO NOTHING`;
  return async (rows) => {
    const all = compact(rows);
    const values = recordColumns.map((c) => all.map((r) => r[c]));
    await db.pgTransaction(async (client) => {
      await client.query({ name: 'bench_unnest_driver', text, values });
    });
  };
}
