// Retained lookups bench: what a wildcard SUBSCRIBE's retained lookup costs when the store holds
// 10 retained topics and when it holds 100,000 over 10,000 channels, in memory, in SQLite and in
// PostgreSQL (src/mqtt/retained.ts, src/mqtt/sql-store.ts). Topics are Fleetwire's own:
// `channels/<channel id>/messages/s<k>`, ten to a channel once there are 100,000; the filter is a
// device's usual subscription, `channels/<one channel id>/messages/#`, which matches the ten topics
// of its channel (the 10-topic case holds those same ten and nothing else). Each lookup runs the
// store's `match` as the broker does on SUBSCRIBE, one at a time, after a warm-up.
//
//   npm run bench:retained [-- --seconds 2 --counts 10,100000]
//
// Target: with 100,000 retained, each store's lookups/s within 1.5× of its rate with 10.
import { randomUUID } from 'node:crypto';
import { formatNs, machine, measure, numberOption, table, type Measurement } from '../harness.js';
import { openBenchDatabase, postgresSkipReason, type BenchDatabaseKind } from '../databases.js';
import { RawQueries } from '../../src/db/raw.js';
import type { Database } from '../../src/db/index.js';
import { MemoryRetainedStore, type RetainedStore } from '../../src/mqtt/retained.js';
import { SqlRetainedStore } from '../../src/mqtt/sql-store.js';

const seconds = numberOption('seconds', 'FLEETWIRE_BENCH_SECONDS', 2);
const countsArg = process.argv.indexOf('--counts');
const counts = countsArg >= 0 ? process.argv[countsArg + 1]!.split(',').map(Number) : [10, 100_000];
const channels = 10_000;
const perChannel = 10;

// the looked-up channel is one of the many, not the first or the last in the index's order
const channelIds = Array.from({ length: channels }, () => randomUUID());
const looked = channelIds[channels / 2]!;
const filter = `channels/${looked}/messages/#`;

/** The `count` topics held: the looked-up channel's ten first, then the other channels'. */
function topics(count: number): string[] {
  const out = Array.from({ length: Math.min(count, perChannel) }, (_, k) => `channels/${looked}/messages/s${k}`);
  for (let i = 0; out.length < count; i++) {
    const channel = channelIds[i % channels]!;
    if (channel === looked) continue;
    out.push(`channels/${channel}/messages/s${Math.floor(i / channels)}`);
  }
  return out;
}

/** Fills a SQL store with one multi-row statement per thousand topics: 100,000 single inserts would take minutes on PostgreSQL. */
async function fillSql(db: Database, list: string[]): Promise<void> {
  const q = new RawQueries(db);
  const now = Date.now();
  for (let i = 0; i < list.length; i += 1000) {
    const part = list.slice(i, i + 1000);
    await q.run(`INSERT INTO mqtt_retained (topic, payload, qos, properties, expires_at, updated_at) VALUES ${part.map(() => '(?, ?, 1, NULL, NULL, ?)').join(', ')}`, part.flatMap((t) => [t, Buffer.from('21.5'), now]));
  }
  if (db.pool) await db.pool.query('ANALYZE mqtt_retained');
}

async function lookups(name: string, store: RetainedStore, count: number): Promise<Measurement & { found: number }> {
  const found = (await store.match(filter)).length;
  const m = await measure(`${name}, ${count.toLocaleString('en-US')} retained`, () => store.match(filter), { seconds, warmupSeconds: 0.5, batch: 10, concurrency: 1 });
  return { ...m, found };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  console.log(`retained lookups bench: ${machine()}`);
  console.log(`filter ${filter.replace(looked, '<id>')}; topics channels/<id>/messages/s<k> over ${channels.toLocaleString('en-US')} channels; ${seconds} s per case after 0.5 s warm-up`);
  const skip = await postgresSkipReason();
  if (skip) console.log(`PostgreSQL skipped: ${skip}`);
  const kinds: BenchDatabaseKind[] = skip ? ['sqlite'] : ['sqlite', 'postgres'];
  const rates = new Map<string, number[]>();
  const rows: string[][] = [];
  const record = (store: string, count: number, m: Measurement & { found: number }) => {
    rates.set(store, [...(rates.get(store) ?? []), m.rate]);
    rows.push([store, count.toLocaleString('en-US'), String(m.found), fmt(m.rate), formatNs(m.p50), formatNs(m.p99)]);
  };
  for (const count of counts) {
    const list = topics(count);
    const memory = new MemoryRetainedStore();
    for (const topic of list) await memory.set({ topic, payload: Buffer.from('21.5'), qos: 1, retain: true });
    record('memory', count, await lookups('memory', memory, count));
    for (const kind of kinds) {
      const bench = await openBenchDatabase(kind);
      try {
        await fillSql(bench.db, list);
        record(kind === 'sqlite' ? 'SQLite' : 'PostgreSQL', count, await lookups(kind, new SqlRetainedStore(new RawQueries(bench.db)), count));
      } finally {
        await bench.close();
      }
    }
  }
  console.log(table(['store', 'retained', 'found', 'lookups/s', 'p50', 'p99'], rows));
  let met = true;
  for (const [store, r] of rates) {
    const slowdown = r[0]! / r[r.length - 1]!;
    if (slowdown > 1.5) met = false;
    console.log(`${store}: ${counts[counts.length - 1]!.toLocaleString('en-US')} retained is ${slowdown.toFixed(2)}× slower than ${counts[0]}`);
  }
  console.log(`target: within 1.5× in every store (${met ? 'met' : 'MISSED'})`);
  process.exitCode = met ? 0 : 1;
}

await main();
