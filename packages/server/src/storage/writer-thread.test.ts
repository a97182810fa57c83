import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { systemClock } from '../core/clock.js';
import { uuidv7 } from '../core/ids.js';
import { createLogger } from '../core/logger.js';
import { Database, migrate } from '../db/index.js';
import { RawQueries } from '../db/raw.js';
import type { Envelope } from '../messaging/envelope.js';
import { MemoryBus } from '../messaging/memory-bus.js';
import { MessagingMetrics } from '../messaging/metrics.js';
import { testDatabaseKind, testPostgresUrl } from '../../test/helpers/database.js';
import { packBatch, unpackBatch, WriterThread } from './writer-thread.js';
import { MessageWriter, writerConsumer } from './writer.js';
import { DeadLetterRepository } from './dead-letters.js';

const t0 = Date.UTC(2026, 0, 1);
let at = t0;

function envelope(contentType: string, payload: string, channel: string): Envelope {
  at += 1;
  return { id: uuidv7(at), org: 'org', channel, subtopic: 'a/b', publisher: 'dev', protocol: 'http', contentType, payload: Buffer.from(payload), receivedAt: at };
}
const senml = (channel: string, v: number) => envelope('application/senml+json', JSON.stringify([{ bn: 'room/', n: 'temp', v }, { n: 'hum', v: v + 1 }]), channel);

/** A database another thread can open too: a SQLite file, or a PostgreSQL schema named in the URL. */
async function sharedDatabase(): Promise<{ url: string; db: Database; cleanup(): Promise<void> }> {
  let url: string;
  let drop = async () => {};
  if (testDatabaseKind() === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'fleetwire-writer-thread-'));
    url = `sqlite:${join(dir, 'test.db')}`;
    drop = async () => rmSync(dir, { recursive: true, force: true });
  } else {
    const u = new URL(testPostgresUrl);
    const schema = `fw_test_${randomBytes(6).toString('hex')}`;
    u.searchParams.set('options', `-c search_path=${schema}`);
    url = u.href;
    const admin = await Database.open({ url, schema, poolSize: 1 });
    await admin.close();
    drop = async () => {
      const d = await Database.open({ url, poolSize: 1 });
      await d.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await d.close();
    };
  }
  const db = await Database.open({ url, poolSize: 2 });
  await migrate(db);
  return { url, db, cleanup: async () => (await db.close(), await drop()) };
}

async function until(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('message writer on a worker thread', () => {
  const log = createLogger('silent');

  test('a batch crosses to the worker intact', () => {
    const envs = [senml('c', 1), envelope('application/octet-stream', '', 'c'), envelope('application/json', '{"x":1}', 'c')];
    const packed = packBatch(envs);
    assert.deepEqual(unpackBatch(structuredClone(packed)), envs);
  });

  describe('storing', () => {
    let shared: Awaited<ReturnType<typeof sharedDatabase>>;
    before(async () => (shared = await sharedDatabase()));
    after(() => shared.cleanup());

    test('every message is stored, and the bus lets go of a batch only once its rows can be read', async () => {
      const bus = new MemoryBus({ durable: [writerConsumer] });
      const thread = new WriterThread({ url: shared.url, opaqueMaxBytes: 4 });
      await thread.start();
      const writer = new MessageWriter(bus, thread, systemClock, log, new MessagingMetrics(new Registry(), bus), { batchSize: 7, retentionMs: 0, pruneIntervalMs: 60_000 });
      await writer.start();
      const q = new RawQueries(shared.db);
      const count = async (table: string) => Number((await q.all<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table} WHERE channel = ?`, ['stored']))[0]!.n);
      try {
        for (let i = 0; i < 40; i++) await bus.publish(senml('stored', i));
        await bus.publish(envelope('application/json', '{"temp": 21.5, "note": "hi"}', 'stored'));
        await bus.publish(envelope('application/octet-stream', 'raw bytes', 'stored'));
        await until('the writer has nothing left', () => bus.stats().pending.writer === 0);
        // acknowledged means committed: everything is readable from another connection right away
        assert.equal(await count('message_records'), 40 * 2 + 1);
        assert.equal(await count('message_documents'), 1);
        assert.equal(await count('message_payloads'), 1);
        const [payload] = await q.all<{ size: number; truncated: number | boolean }>('SELECT size, truncated FROM message_payloads WHERE channel = ?', ['stored']);
        assert.equal(payload!.size, 9);
        assert.ok(payload!.truncated);
      } finally {
        await writer.stop();
        await bus.close();
      }
    });
  });

  test('management transactions that read, then write, succeed while the worker commits batches', async () => {
    const shared = await sharedDatabase();
    const bus = new MemoryBus({ durable: [writerConsumer] });
    const thread = new WriterThread({ url: shared.url, opaqueMaxBytes: 1024 });
    const writer = new MessageWriter(bus, thread, systemClock, log, new MessagingMetrics(new Registry(), bus), { batchSize: 50, retentionMs: 0, pruneIntervalMs: 60_000 });
    const now = new Date().toISOString();
    let publishing = true;
    try {
      await thread.start();
      await writer.start();
      const load = (async () => {
        for (let i = 0; publishing && i < 500; i++) {
          await Promise.all(Array.from({ length: 20 }, (_, k) => bus.publish(senml('busy', i * 20 + k))));
          await new Promise((r) => setTimeout(r, 2));
        }
      })();
      await until('the worker has stored something', async () => Number((await new RawQueries(shared.db).all<{ n: number }>('SELECT COUNT(*) AS n FROM messages', []))[0]!.n) > 0);
      // read, give the worker time to commit, then write: a snapshot taken by the read must not go stale
      for (let i = 0; i < 20; i++) {
        await shared.db.kysely.transaction().execute(async (trx) => {
          const orgs = await trx.selectFrom('organizations').select('id').execute();
          await new Promise((r) => setTimeout(r, 5));
          await trx.insertInto('organizations').values({ id: `org-${i}`, name: `o${orgs.length}`, created_at: now, updated_at: now }).execute();
        });
      }
      publishing = false;
      await load;
      await until('the writer has nothing left', () => bus.stats().pending.writer === 0);
      const rows = await shared.db.kysely.selectFrom('organizations').select('name').orderBy('name').execute();
      assert.equal(rows.length, 20);
    } finally {
      publishing = false;
      await writer.stop();
      await bus.close();
      await shared.cleanup();
    }
  });

  test("the worker's batches are not refused while the main thread commits beside them", async () => {
    const shared = await sharedDatabase();
    const failures: string[] = [];
    const errors = new Writable({
      write(chunk: Buffer | string, _encoding, done) {
        failures.push(chunk.toString());
        done();
      },
    });
    const bus = new MemoryBus({ durable: [writerConsumer], retryDelayMs: 20 });
    const thread = new WriterThread({ url: shared.url, opaqueMaxBytes: 1024 });
    const writer = new MessageWriter(bus, thread, systemClock, createLogger('error', errors), new MessagingMetrics(new Registry(), bus), { batchSize: 2000, retentionMs: 0, pruneIntervalMs: 60_000 });
    const q = new RawQueries(shared.db);
    const now = new Date().toISOString();
    try {
      await thread.start();
      await writer.start();
      for (let round = 0; round < 10; round++) {
        await Promise.all(Array.from({ length: 1000 }, (_, k) => bus.publish(senml('beside', round * 1000 + k))));
        // small commits from this thread while the worker stores the burst
        for (let i = 0; i < 40; i++) {
          await q.run('INSERT INTO organizations (id, name, created_at, updated_at) VALUES (?, ?, ?, ?)', [`o-${round}-${i}`, 'o', now, now]);
          await new Promise((r) => setImmediate(r));
        }
      }
      await until('the writer has nothing left', () => bus.stats().pending.writer === 0, 30_000);
      assert.deepEqual(failures, [], 'no batch failed');
      const rows = await q.all<{ n: number }>('SELECT COUNT(*) AS n FROM message_records WHERE channel = ?', ['beside']);
      assert.equal(Number(rows[0]!.n), 10 * 1000 * 2);
    } finally {
      await writer.stop();
      await bus.close();
      await shared.cleanup();
    }
  });

  test('a batch the worker could not store stays on the bus and is stored once the database takes it', async () => {
    const shared = await sharedDatabase();
    // a trigger refuses records of this channel until it is dropped (on SQLite the failed batch has
    // added the channel to the dictionaries first: the retry must not reuse keys that rolled back)
    const sqlite = testDatabaseKind() === 'sqlite';
    await shared.db.exec(sqlite
      ? "CREATE TRIGGER refuse BEFORE INSERT ON messages WHEN NEW.channel_key = (SELECT key FROM message_channels WHERE channel = 'retried') BEGIN SELECT RAISE(ABORT, 'refused'); END"
      : "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql; CREATE TRIGGER refuse BEFORE INSERT ON messages FOR EACH STATEMENT EXECUTE FUNCTION refuse()");
    const bus = new MemoryBus({ durable: [writerConsumer], retryDelayMs: 20 });
    const thread = new WriterThread({ url: shared.url, opaqueMaxBytes: 1024 });
    const writer = new MessageWriter(bus, thread, systemClock, log, new MessagingMetrics(new Registry(), bus), { batchSize: 100, retentionMs: 0, pruneIntervalMs: 60_000 });
    try {
      await thread.start();
      await writer.start();
      for (let i = 0; i < 5; i++) await bus.publish(senml('retried', i));
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(bus.stats().pending.writer, 5);
      await shared.db.exec(sqlite ? 'DROP TRIGGER refuse' : 'DROP TRIGGER refuse ON messages');
      await until('the writer has nothing left', () => bus.stats().pending.writer === 0);
      const rows = await new RawQueries(shared.db).all<{ n: number }>('SELECT COUNT(*) AS n FROM message_records WHERE channel = ?', ['retried']);
      assert.equal(Number(rows[0]!.n), 10);
    } finally {
      await writer.stop();
      await bus.close();
      await shared.cleanup();
    }
  });

  test('a message the worker cannot store while it stores others is set aside, and the others are stored', async () => {
    const shared = await sharedDatabase();
    // records of this channel are refused, every other write goes through: the probe's too
    const sqlite = testDatabaseKind() === 'sqlite';
    await shared.db.exec(sqlite
      ? "CREATE TRIGGER refuse BEFORE INSERT ON messages WHEN NEW.channel_key = (SELECT key FROM message_channels WHERE channel = 'poisoned') BEGIN SELECT RAISE(ABORT, 'refused for the test'); END"
      : "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN IF NEW.channel_key = (SELECT key FROM message_channels WHERE channel = 'poisoned') THEN RAISE EXCEPTION 'refused for the test'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql; CREATE TRIGGER refuse BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION refuse()");
    const bus = new MemoryBus({ durable: [writerConsumer], retryDelayMs: 20 });
    const thread = new WriterThread({ url: shared.url, opaqueMaxBytes: 1024 });
    const metrics = new MessagingMetrics(new Registry(), bus);
    const deadLetters = new DeadLetterRepository(shared.db);
    const writer = new MessageWriter(bus, thread, systemClock, log, metrics, { batchSize: 100, retentionMs: 0, pruneIntervalMs: 60_000 }, deadLetters);
    try {
      await thread.start();
      const poison = senml('poisoned', 0);
      for (let i = 0; i < 20; i++) await bus.publish(i === 7 ? poison : senml('fine', i));
      await writer.start();
      await until('the writer has nothing left', () => bus.stats().pending.writer === 0);
      const rows = await new RawQueries(shared.db).all<{ n: number }>('SELECT COUNT(*) AS n FROM message_records WHERE channel = ?', ['fine']);
      assert.equal(Number(rows[0]!.n), 38);
      const set = await deadLetters.list('org', 0, 10);
      assert.deepEqual(set.items.map((d) => [d.id, d.channel, d.payload.toString()]), [[poison.id, 'poisoned', poison.payload.toString()]]);
      assert.match(set.items[0]!.error, /refused for the test/);
      assert.deepEqual(writer.health(), { ok: true });
    } finally {
      await writer.stop();
      await bus.close();
      await shared.cleanup();
    }
  });

  test('a worker that cannot open its database fails to start, saying why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleetwire-writer-thread-'));
    writeFileSync(join(dir, 'a-file'), '');
    const thread = new WriterThread({ url: `sqlite:${join(dir, 'a-file', 'test.db')}`, opaqueMaxBytes: 1024 });
    try {
      await assert.rejects(thread.start(), /writer thread could not open the database/);
    } finally {
      await thread.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
