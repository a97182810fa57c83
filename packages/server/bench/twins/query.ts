// Fleet queries over twins (GET /orgs/{org}/twins, docs/twins.md): `--devices` devices with a twin
// each (100,000 by default) in one organization, written straight into a fresh database, then each
// query through the service as the route runs it (a page of 20 and the total count), `--runs` times.
// SQLite (a file) and PostgreSQL (a schema of its own; bench/databases.ts) side by side.
//
//   npm run bench:twin-query [-- --devices 100000 --runs 20]
import { randomBytes } from 'node:crypto';
import { ManualClock } from '../../src/core/clock.js';
import { createLogger } from '../../src/core/logger.js';
import { uuidv7 } from '../../src/core/ids.js';
import { MemoryAddressLimiter } from '../../src/auth/rate-limit.js';
import { TwinService, TwinStore } from '../../src/twins/index.js';
import { describeDatabase, openBenchDatabase, postgresSkipReason, type BenchDatabaseKind } from '../databases.js';
import { machine, numberOption, percentile, table } from '../harness.js';

const deviceCount = Math.max(1, Math.floor(numberOption('devices', 'FLEETWIRE_BENCH_TWIN_QUERY_DEVICES', 100_000)));
const runs = Math.max(1, Math.floor(numberOption('runs', 'FLEETWIRE_BENCH_RUNS', 20)));
const targetMs = 200;

const queries: { label: string; where: string[] }[] = [
  { label: 'reported.firmware.version = 1.4.2', where: ['reported.firmware.version = 1.4.2'] },
  { label: 'desired.mode != reported.mode', where: ['desired.mode != reported.mode'] },
  { label: 'tags.site = site-7 and reported.battery < 20', where: ['tags.site = site-7', 'reported.battery < 20'] },
  { label: 'reported.gps exists', where: ['reported.gps exists'] },
  { label: 'no condition (every twin, paged)', where: [] },
];

async function seed(kind: BenchDatabaseKind) {
  const bench = await openBenchDatabase(kind, 4);
  const { db } = bench;
  const org = uuidv7();
  const now = new Date().toISOString();
  await db.kysely.insertInto('organizations').values({ id: org, name: 'query bench', created_at: now, updated_at: now }).execute();
  const rows: { device: Record<string, unknown>; twin: Record<string, unknown> }[] = [];
  for (let i = 0; i < deviceCount; i++) {
    const id = uuidv7();
    const firmware = ['1.4.2', '1.5.0', '2.0.1'][i % 3]!;
    const desired = { mode: i % 4 === 0 ? 'eco' : 'fast', interval: 60 };
    const reported = { mode: i % 5 === 0 ? 'eco' : 'fast', firmware: { version: firmware, built: '2026-11-01' }, battery: i % 100, temp: 20 + (i % 10), ...(i % 50 === 0 ? { gps: { lat: 52.5, lon: 13.4 } } : {}) };
    rows.push({
      device: { id, org_id: org, name: `d-${i}`, tags: '[]', metadata: '{}', status: 'enabled', secret_hash: randomBytes(16).toString('hex'), created_at: now, updated_at: now },
      twin: { device_id: id, name: 'default', org_id: org, version: 3, desired: JSON.stringify(desired), reported: JSON.stringify(reported), tags: JSON.stringify({ site: `site-${i % 20}` }), metadata: '{}', rejected: '{}', created_at: now, updated_at: now },
    });
  }
  const t0 = performance.now();
  for (let k = 0; k < rows.length; k += 1000) {
    const chunk = rows.slice(k, k + 1000);
    await db.kysely.insertInto('devices').values(chunk.map((r) => r.device) as never).execute();
    await (db.kysely as unknown as { insertInto(t: string): { values(v: unknown): { execute(): Promise<unknown> } } }).insertInto('twins').values(chunk.map((r) => r.twin)).execute();
  }
  if (db.pool) await db.pool.query('ANALYZE twins');
  else db.sqlite!.exec('ANALYZE');
  const seconds = (performance.now() - t0) / 1000;
  const clock = new ManualClock(Date.now());
  const twins = new TwinService(new TwinStore(db), { get: async () => ({}) }, clock, createLogger('silent'), { historyRetentionMs: 0, maxDeviceUpdates: 1e9, rateWindowMs: 10_000 }, new MemoryAddressLimiter({ maxPerAddress: 1e9, windowMs: 10_000 }, clock));
  return { bench, org, twins, seconds, description: await describeDatabase(db) };
}

async function main(): Promise<void> {
  console.log(`twin queries: ${machine()}; ${deviceCount.toLocaleString('en-US')} twins in one organization, a page of 20 and the total, ${runs} runs each\n`);
  const rows: string[][] = [];
  let met = true;
  for (const kind of ['sqlite', 'postgres'] as const) {
    if (kind === 'postgres') {
      const skip = await postgresSkipReason();
      if (skip) {
        console.log(`PostgreSQL skipped: ${skip}`);
        continue;
      }
    }
    const { bench, org, twins, seconds, description } = await seed(kind);
    console.log(`${description}: ${deviceCount.toLocaleString('en-US')} twins written in ${seconds.toFixed(1)} s`);
    try {
      for (const q of queries) {
        const times: number[] = [];
        let total = 0;
        for (let r = 0; r < runs + 2; r++) {
          const t0 = performance.now();
          const page = await twins.query(org, { where: q.where, offset: 0, limit: 20 });
          if (r >= 2) times.push(performance.now() - t0); // two warm-up runs
          total = page.total;
        }
        const sorted = Float64Array.from(times).sort();
        const p99 = percentile(sorted, 0.99);
        met &&= p99 <= targetMs;
        rows.push([kind === 'sqlite' ? 'SQLite' : 'PostgreSQL', q.label, total.toLocaleString('en-US'), `${percentile(sorted, 0.5).toFixed(1)} ms`, `${p99.toFixed(1)} ms`]);
      }
    } finally {
      await bench.close();
    }
  }
  console.log(`\n${table(['database', 'query', 'matches', 'p50', 'p99'], rows)}`);
  console.log(`\ntarget: every query's p99 ≤ ${targetMs} ms over ${deviceCount.toLocaleString('en-US')} devices: ${met ? 'met' : 'MISSED'}`);
  process.exitCode = met ? 0 : 1;
}

await main();
