// The message writer alone: batches of pre-built envelopes (10-record SenML JSON packs) straight
// into MessageWriter.write, one transaction per batch, on SQLite and PostgreSQL. Beside it, in the
// same run and on a fresh database each: the same rows through the sink alone and through the
// simplest code each database allows (the reference), and the PostgreSQL statement layouts.
//
//   npm run bench -- --seconds 5          (every bench)
//   npx tsx bench/writer/run.ts [--seconds 5] [--messages 2000]
//
// PostgreSQL: see bench/databases.ts; skipped with a message when nothing answers.
import { Registry } from 'prom-client';
import { systemClock } from '../../src/core/clock.js';
import { uuidv7 } from '../../src/core/ids.js';
import { createLogger } from '../../src/core/logger.js';
import type { Database } from '../../src/db/index.js';
import { MemoryBus } from '../../src/messaging/memory-bus.js';
import { MessagingMetrics } from '../../src/messaging/metrics.js';
import { toRows, type RecordRow } from '../../src/storage/rows.js';
import { createMessageSink } from '../../src/storage/sink.js';
import { MessageWriter, localStore, writerConsumer } from '../../src/storage/writer.js';
import { describeDatabase, openBenchDatabase, postgresSkipReason, type BenchDatabaseKind } from '../databases.js';
import { formatNs, formatRate, machine, measure, numberOption, table, type Measurement, type MeasureOptions } from '../harness.js';
import { EnvelopeSource, recordsPerPack } from '../senml.js';
import { postgresJsonRecordset, postgresMultiRowValues, postgresUnnestDriverArrays, sqliteStatementLoop, type RowWriter } from './layouts.js';

const targets = { sqlite: 100_000, postgres: 50_000 }; // SenML records/s through MessageWriter.write

const seconds = numberOption('seconds', 'FLEETWIRE_BENCH_SECONDS', 5);
const messages = numberOption('messages', 'FLEETWIRE_BENCH_WRITER_MESSAGES', 2000); // per transaction, the writer's default batch
const records = messages * recordsPerPack;
const options: MeasureOptions = { seconds, warmupSeconds: Math.min(2, Math.max(0.5, seconds / 5)), batch: 1, concurrency: 1 };

const devices = 500;
const channels = 10;
const source = new EnvelopeSource(messages, { devices, channels });
/** The rows of one batch, built once; `restamp` gives them new message ids for every transaction. */
const rows = toRows(source.batch(), 1024).records;
if (rows.length !== records) throw new Error(`expected ${records} rows from ${messages} packs, got ${rows.length}`);

let stamp = Date.now();
function restamp(list: RecordRow[]): RecordRow[] {
  let id = '';
  for (const r of list) {
    if (r.seq === 0) id = uuidv7(stamp++);
    r.id = id;
  }
  return list;
}

/** One transaction's worth of work: pre-built rows, or envelopes through the whole writer. */
type Write = () => Promise<void>;

interface Result {
  m: Measurement;
  /** CPU this process spent per transaction (on SQLite that includes SQLite's own work: same thread). */
  cpuPerTxn: number;
  /** The reference this case is compared with. */
  reference?: Measurement;
  kind: BenchDatabaseKind | 'none';
}

function rowCase(writer: RowWriter): Write {
  return () => writer(restamp(rows));
}

const sinkWriter = (db: Database): RowWriter => {
  const sink = createMessageSink(db);
  return (r) => sink.write({ ids: r.filter((x) => x.seq === 0).map((x) => x.id), records: r, documents: [], payloads: [] });
};

/** Runs `op` under measure(), counting what it ran and the CPU it took. */
async function timed(name: string, op: () => Promise<unknown>): Promise<{ m: Measurement; cpuPerTxn: number; transactions: number }> {
  let transactions = 0;
  const cpu0 = process.cpuUsage();
  const m = await measure(name, async () => {
    await op();
    transactions++;
  }, options);
  const cpu = process.cpuUsage(cpu0);
  return { m, cpuPerTxn: ((cpu.user + cpu.system) * 1000) / transactions, transactions };
}

/** Runs one case on a fresh database and checks every row arrived. */
async function onFreshDatabase(kind: BenchDatabaseKind, name: string, make: (db: Database) => Write, reference?: Measurement): Promise<Result> {
  const bench = await openBenchDatabase(kind);
  try {
    const { m, cpuPerTxn, transactions } = await timed(name, make(bench.db));
    const stored = kind === 'sqlite'
      ? (bench.db.sqlite!.prepare('SELECT COUNT(*) AS n FROM messages').get() as { n: number }).n
      : Number((await bench.db.pool!.query<{ n: string }>('SELECT COUNT(*) AS n FROM messages')).rows[0]!.n);
    if (stored !== transactions * records) throw new Error(`${name}: ${transactions} transactions of ${records} records should have stored ${transactions * records} rows, found ${stored}`);
    return { m, cpuPerTxn, kind, ...(reference ? { reference } : {}) };
  } finally {
    await bench.close();
  }
}

function writerOver(db: Database): MessageWriter {
  const bus = new MemoryBus({ durable: [writerConsumer] }); // not started: batches go straight to write()
  return new MessageWriter(bus, localStore(createMessageSink(db), 1024), systemClock, createLogger('silent'), new MessagingMetrics(new Registry(), bus), {
    batchSize: messages,
    retentionMs: 0,
    pruneIntervalMs: 60_000,
  });
}

const viaWriter = (db: Database): Write => {
  const w = writerOver(db);
  return () => w.write(source.batch());
};

async function sqliteCases(): Promise<Result[]> {
  const probe = await openBenchDatabase('sqlite');
  console.log(await describeDatabase(probe.db));
  await probe.close();
  const reference = await onFreshDatabase('sqlite', 'reference: bare prepared INSERT loop, one transaction', (db) => rowCase(sqliteStatementLoop(db)));
  return [
    reference,
    await onFreshDatabase('sqlite', 'sink.write(rows)', (db) => rowCase(sinkWriter(db)), reference.m),
    await onFreshDatabase('sqlite', 'MessageWriter.write(envelopes)', viaWriter, reference.m),
  ];
}

async function postgresCases(): Promise<Result[]> {
  const skip = await postgresSkipReason();
  if (skip) {
    console.log(`SKIP PostgreSQL: ${skip}`);
    return [];
  }
  const probe = await openBenchDatabase('postgres', 1);
  console.log(await describeDatabase(probe.db));
  await probe.close();
  const reference = await onFreshDatabase('postgres', 'reference: bare multi-row INSERT … VALUES (4,000 rows a statement)', (db) => rowCase(postgresMultiRowValues(db)));
  const ref = reference.m;
  return [
    reference,
    await onFreshDatabase('postgres', 'sink.write(rows): INSERT … SELECT unnest($1::text[], …)', (db) => rowCase(sinkWriter(db)), ref),
    await onFreshDatabase('postgres', 'layout: unnest, arrays serialised by node-postgres', (db) => rowCase(postgresUnnestDriverArrays(db)), ref),
    await onFreshDatabase('postgres', 'layout: json_populate_recordset($1)', (db) => rowCase(postgresJsonRecordset(db, 'json_populate_recordset')), ref),
    await onFreshDatabase('postgres', 'layout: jsonb_populate_recordset($1)', (db) => rowCase(postgresJsonRecordset(db, 'jsonb_populate_recordset')), ref),
    await onFreshDatabase('postgres', 'MessageWriter.write(envelopes)', viaWriter, ref),
  ];
}

/** SenML parsing and row building alone, no database: how much of the writer's time is ours. */
async function parseCase(): Promise<Result> {
  const { m, cpuPerTxn } = await timed('toRows(envelopes) alone, no database', async () => toRows(source.batch(), 1024));
  return { m, cpuPerTxn, kind: 'none' };
}

function verdict(what: string, rate: number, target: number): string {
  return `${what}: ${formatRate(rate)} records/s against a target of ≥ ${formatRate(target)}/s: ${rate >= target ? 'met' : 'MISSED'}`;
}

console.log(`writer bench: ${machine()}`);
console.log(`${messages} messages × ${recordsPerPack} SenML records = ${records} records a transaction, from ${devices} devices on ${channels} channels (${devices * recordsPerPack} names: every transaction`);
console.log(`touches most of the per-name index); ${options.warmupSeconds} s warm-up, then ${seconds} s per case, each case on a fresh database\n`);
const results: Result[] = [await parseCase(), ...(await sqliteCases()), ...(await postgresCases())];

console.log(
  '\n' +
    table(
      ['database', 'case', 'records/s', 'p50 / txn', 'p99 / txn', 'Node CPU / txn', 'txns', 'vs reference'],
      results.map(({ m, cpuPerTxn, reference, kind }) => [
        kind === 'none' ? '-' : kind,
        m.name,
        formatRate(m.rate * records),
        formatNs(m.p50),
        formatNs(m.p99),
        formatNs(cpuPerTxn),
        String(m.ops),
        reference ? `${((m.rate / reference.rate) * 100).toFixed(0)} %` : kind === 'none' ? '' : '(reference)',
      ]),
    ) +
    '\n',
);
console.log(`p50/p99: time of one transaction of ${records} records (one batch of ${messages} messages); rates count records.`);
console.log('Node CPU / txn: CPU of this process per transaction, warm-up included; on SQLite it includes SQLite (same thread), on PostgreSQL only our side.');
const writerOf = (kind: BenchDatabaseKind) => results.find((r) => r.kind === kind && r.m.name.startsWith('MessageWriter'));
let missed = false;
for (const kind of ['sqlite', 'postgres'] as const) {
  const r = writerOf(kind);
  if (!r) continue;
  console.log(verdict(`MessageWriter on ${kind === 'sqlite' ? 'SQLite' : 'PostgreSQL'}`, r.m.rate * records, targets[kind]));
  if (r.m.rate * records < targets[kind]) missed = true;
}
if (missed) process.exitCode = 1;
