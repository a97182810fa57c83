// Presence in a reconnect storm: a whole fleet (10,000 devices by default) connects, loses its
// connections, connects again and loses its node, each wave written as PresenceService writes it (one batch,
// one transaction, presence/repository.ts `apply`; the service slices a flush into transactions
// of 2000), on SQLite and PostgreSQL. Beside it, in the
// same run: the simplest code each database allows for one row per device in one transaction (the
// reference). The service's own memory for the fleet's live connections is measured too.
//
//   npm run bench:presence [-- --devices 10000]
//
// PostgreSQL: see bench/databases.ts; skipped with a message when nothing answers.
import { randomUUID } from 'node:crypto';
import { systemClock } from '../../src/core/clock.js';
import { createLogger } from '../../src/core/logger.js';
import type { Database } from '../../src/db/index.js';
import { PresenceRepository, PresenceService } from '../../src/presence/index.js';
import type { PresenceOp } from '../../src/presence/repository.js';
import { describeDatabase, openBenchDatabase, postgresSkipReason, type BenchDatabaseKind } from '../databases.js';
import { numberOption } from '../harness.js';

const devices = numberOption('devices', 'FLEETWIRE_BENCH_PRESENCE_DEVICES', 10_000);
/** A storm wave of the whole fleet is written within this (ms), or the bench fails. */
const targetMs = { sqlite: 2000, postgres: 3000 };

async function seed(db: Database, n: number): Promise<{ orgId: string; ids: string[] }> {
  const orgId = randomUUID();
  const now = new Date().toISOString();
  await db.kysely.insertInto('organizations').values({ id: orgId, name: 'bench', created_at: now, updated_at: now }).execute();
  const ids = Array.from({ length: n }, () => randomUUID());
  for (let i = 0; i < n; i += 500) {
    await db.kysely.insertInto('devices').values(ids.slice(i, i + 500).map((id, j) => ({ id, org_id: orgId, name: `d${i + j}`, tags: '[]', metadata: '{}', status: 'enabled' as const, secret_hash: id, created_at: now, updated_at: now }))).execute();
  }
  return { orgId, ids };
}

/** One row per device in one transaction, the plainest way: what a storm costs at least. */
async function reference(db: Database, ids: string[]): Promise<number> {
  await db.exec('CREATE TABLE bench_presence_ref (device_id TEXT PRIMARY KEY, at BIGINT NOT NULL)');
  const start = performance.now();
  if (db.sqlite) {
    const st = db.sqlite.prepare('INSERT INTO bench_presence_ref (device_id, at) VALUES (?, ?)');
    db.sqlite.transaction(() => {
      for (const id of ids) st.run(id, Date.now());
    })();
  } else {
    await db.pgTransaction(async (c) => {
      for (const id of ids) await c.query('INSERT INTO bench_presence_ref (device_id, at) VALUES ($1, $2)', [id, Date.now()]);
    });
  }
  return performance.now() - start;
}

async function run(kind: BenchDatabaseKind): Promise<boolean> {
  const { db, close } = await openBenchDatabase(kind);
  try {
    console.log(`\n${await describeDatabase(db)}, ${devices} devices`);
    const { orgId, ids } = await seed(db, devices);
    const repo = new PresenceRepository(db);
    const node = 'bench-node';
    const keys = ids.map((id) => `${id}.1`);
    const wave = async (label: string, ops: PresenceOp[]) => {
      const start = performance.now();
      const changes = await repo.apply(ops);
      const ms = performance.now() - start;
      console.log(`  ${label.padEnd(34)} ${ms.toFixed(0).padStart(6)} ms  ${((ops.length / ms) * 1000).toFixed(0).padStart(7)} ops/s  (${changes.length} changes)`);
      return ms;
    };
    const at = Date.now();
    const connect = (k: string[]) => ids.map((id, i): PresenceOp => ({ kind: 'connect', key: k[i]!, deviceId: id, orgId, clientId: `c-${i}`, protocol: 'mqtt', node, at }));
    const first = await wave('connect (first time: rows made)', connect(keys));
    const lost = await wave('connection_lost', ids.map((id, i): PresenceOp => ({ kind: 'disconnect', key: keys[i]!, deviceId: id, orgId, reason: 'connection_lost', node, at: at + 1, takeoverGraceMs: 30_000 })));
    const again = await wave('connect again (the storm)', connect(ids.map((id) => `${id}.2`)));
    await repo.heartbeat(node, at);
    const deathStart = performance.now();
    const death = await repo.nodeGone(node, at + 2, 'connection_lost', at + 1);
    const died = performance.now() - deathStart;
    console.log(`  ${'its node dies (taken by a survivor)'.padEnd(34)} ${died.toFixed(0).padStart(6)} ms  ${((ids.length / died) * 1000).toFixed(0).padStart(7)} ops/s  (${death.changes.length} changes)`);
    const ref = await reference(db, ids);
    console.log(`  ${'reference: one INSERT per device'.padEnd(34)} ${ref.toFixed(0).padStart(6)} ms  ${((ids.length / ref) * 1000).toFixed(0).padStart(7)} ops/s`);
    const worst = Math.max(first, lost, again, died);
    console.log(`  slowest wave ${(worst / ref).toFixed(1)} × the reference; target: every wave within ${targetMs[kind]} ms`);

    // the service's memory for the fleet's live connections (queued and flushed)
    const service = new PresenceService(repo, systemClock, createLogger('silent'), { nodeId: 'bench-memory', flushIntervalMs: 60_000, nodeTimeoutMs: 60_000, defaultIntervalMs: 600_000, retentionMs: 0 });
    globalThis.gc?.();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < ids.length; i++) service.connected({ deviceId: ids[i]!, orgId, clientId: `m-${i}`, protocol: 'mqtt' });
    await service.flush();
    globalThis.gc?.();
    const perConnection = (process.memoryUsage().heapUsed - before) / ids.length;
    console.log(`  service memory per live connection: ${globalThis.gc ? `${perConnection.toFixed(0)} bytes` : 'run with --expose-gc to measure'}`);
    await service.close();
    return worst <= targetMs[kind];
  } finally {
    await close();
  }
}

let ok = await run('sqlite');
const skip = await postgresSkipReason();
if (skip) console.log(`\nPostgreSQL skipped: ${skip}`);
else ok = (await run('postgres')) && ok;
if (!ok) {
  console.error('a wave missed its target');
  process.exit(1);
}
