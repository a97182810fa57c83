import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { systemClock } from '../core/clock.js';
import { uuidv7 } from '../core/ids.js';
import { createLogger } from '../core/logger.js';
import { isAppError } from '../core/errors.js';
import { MemoryAddressLimiter } from '../auth/rate-limit.js';
import { Database, migrate } from '../db/index.js';
import type { SqliteWrites } from '../db/offload.js';
import { MemoryBus } from '../messaging/memory-bus.js';
import { EventLog } from '../events/log.js';
import { EventStore } from '../events/store.js';
import { WriterThread } from '../storage/writer-thread.js';
import { testDatabaseKind, testPostgresUrl } from '../../test/helpers/database.js';
import { TwinService } from './service.js';
import { TwinStore } from './store.js';

// Twin writes pipelined per twin (the next version is made while the last is being written), with
// two processes' worth of writers on one twin, on a database two connections share: on SQLite one
// of them hands its writes to the writer's thread (db/offload.ts), as `fleetwire start` does.

const log = createLogger('silent');

async function sharedDatabase(): Promise<{ url: string; cleanup(): Promise<void> }> {
  if (testDatabaseKind() === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'fleetwire-twin-pipeline-'));
    return { url: `sqlite:${join(dir, 'test.db')}`, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const u = new URL(testPostgresUrl);
  const schema = `fw_test_${randomBytes(6).toString('hex')}`;
  u.searchParams.set('options', `-c search_path=${schema}`);
  const admin = await Database.open({ url: u.href, schema, poolSize: 1 });
  await admin.close();
  return {
    url: u.href,
    cleanup: async () => {
      const d = await Database.open({ url: u.href, poolSize: 1 });
      await d.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await d.close();
    },
  };
}

function service(db: Database, offload?: SqliteWrites): TwinService {
  const devices = { get: async () => ({}) };
  return new TwinService(new TwinStore(db, offload), devices, systemClock, log, { historyRetentionMs: 0, maxDeviceUpdates: 1_000_000, rateWindowMs: 10_000 }, new MemoryAddressLimiter({ maxPerAddress: 1_000_000, windowMs: 10_000 }, systemClock));
}

describe('twin writes pipelined per twin', () => {
  let shared: { url: string; cleanup(): Promise<void> };
  let a: Database;
  let b: Database;
  let thread: WriterThread | undefined;
  const org = uuidv7();
  const device = uuidv7();

  before(async () => {
    shared = await sharedDatabase();
    a = await Database.open({ url: shared.url, poolSize: 4 });
    await migrate(a);
    b = await Database.open({ url: shared.url, poolSize: 4 });
    const now = new Date().toISOString();
    await a.kysely.insertInto('organizations').values({ id: org, name: 'pipeline', created_at: now, updated_at: now }).execute();
    await a.kysely.insertInto('devices').values({ id: device, org_id: org, name: 'd', tags: '[]', metadata: '{}', status: 'enabled', secret_hash: randomBytes(16).toString('hex'), created_at: now, updated_at: now } as never).execute();
    if (a.sqlite) {
      thread = new WriterThread({ url: shared.url, opaqueMaxBytes: 1024 });
      await thread.start();
    }
  });

  after(async () => {
    await thread?.close();
    await a.close();
    await b.close();
    await shared.cleanup();
  });

  test('updates sent together to one twin are each stored once, in the order sent, with their history', async () => {
    const twins = service(a, thread);
    const n = 60;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => twins.update(org, device, 'ordered', { reported: { seq: i, [`k${i}`]: i } }, { actor: { kind: 'device', id: device }, trustedDevice: true })));
    assert.deepEqual(results.map((r) => r.twin.version), Array.from({ length: n }, (_, i) => i + 1));
    const stored = await service(b).get(org, device, 'ordered', 'service');
    assert.equal(stored.version, n);
    assert.equal(stored.reported.seq, n - 1);
    for (let i = 0; i < n; i++) assert.equal(stored.reported[`k${i}`], i);
    const history = await twins.history(org, device, 'ordered', 0, 1000);
    assert.deepEqual(history.map((h) => h.version), Array.from({ length: n }, (_, i) => i + 1));
    assert.deepEqual(history.map((h) => (h.patch.reported as { seq: number }).seq), Array.from({ length: n }, (_, i) => i));
  });

  test('two writers on one twin (as two processes): what is accepted lands once, what is refused is nowhere, versions without gaps', async () => {
    const one = service(a, thread);
    const two = service(b);
    const n = 40;
    const writes = Array.from({ length: n }, (_, i) => (i % 2 === 0 ? one : two).update(org, device, 'contended', { reported: { [`w${i}`]: i } }, { actor: { kind: 'device', id: device }, trustedDevice: true }));
    const settled = await Promise.allSettled(writes);
    const accepted = settled.flatMap((r, i) => (r.status === 'fulfilled' ? [{ i, version: r.value.twin.version }] : []));
    // racing without end, a writer is told to retry rather than waiting for ever
    for (const r of settled) if (r.status === 'rejected') assert.ok(isAppError(r.reason) && r.reason.code === 'twin.version_conflict', String(r.reason));
    assert.ok(accepted.length >= n / 2, `${accepted.length} of ${n} accepted`);
    assert.equal(new Set(accepted.map((r) => r.version)).size, accepted.length, 'each accepted update made a version of its own');
    const stored = await service(b).get(org, device, 'contended', 'service');
    assert.equal(stored.version, accepted.length);
    assert.deepEqual(Object.keys(stored.reported).sort(), accepted.map((r) => `w${r.i}`).sort());
    const history = await one.history(org, device, 'contended', 0, 1000);
    assert.deepEqual(history.map((h) => h.version), Array.from({ length: accepted.length }, (_, i) => i + 1));
  });

  test('an update that changes nothing answers the version stored, after the write it was made on', async () => {
    const twins = service(a, thread);
    const first = twins.update(org, device, 'same', { reported: { x: 1 } }, { actor: { kind: 'device', id: device }, trustedDevice: true });
    const again = twins.update(org, device, 'same', { reported: { x: 1 } }, { actor: { kind: 'device', id: device }, trustedDevice: true });
    const [r1, r2] = await Promise.all([first, again]);
    assert.equal(r1.twin.version, 1);
    assert.equal(r2.twin.version, 1);
    assert.equal(r2.changed, undefined);
    assert.equal((await service(b).get(org, device, 'same', 'service')).version, 1);
  });

  test('the twin of a device that is gone is refused as not found, also through the writer thread', async () => {
    const twins = service(a, thread);
    await assert.rejects(twins.update(org, uuidv7(), 'default', { reported: { x: 1 } }, { actor: { kind: 'device' }, trustedDevice: true }), (e: unknown) => isAppError(e) && e.code === 'device.not_found');
  });

  test('fleet events written through the writer thread are listed', async () => {
    const events = new EventLog(new EventStore(a, thread), new MemoryBus(), systemClock, log, { batchSize: 50, flushIntervalMs: 10, retentionMs: 0, pruneIntervalMs: 60_000, maxBuffered: 10_000 });
    for (let i = 0; i < 120; i++) events.record({ orgId: org, type: 'twin.updated', actor: { kind: 'device', id: device }, subject: { kind: 'device', id: device }, data: { i } });
    const page = await events.list(org, { offset: 0, limit: 200, order: 'asc', types: { exact: ['twin.updated'], prefixes: [] } });
    assert.equal(page.items.length, 120);
    assert.deepEqual(page.items.map((e) => (e.data as { i: number }).i), Array.from({ length: 120 }, (_, i) => i));
    await events.close();
  });
});
