import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { anotherHandle, openTestDatabase, testDatabaseKind, type TestDatabase } from '../../test/helpers/database.js';
import type { Database } from './database.js';
import { MigrationError, checksum, migrate, migrations, type Migration } from './migrations.js';
import { RawQueries } from './raw.js';
import { MessageReaders } from '../storage/readers.js';
import { createMessageSink, idBoundary } from '../storage/sink.js';
import { toRows } from '../storage/rows.js';
import { uuidv7 } from '../core/ids.js';

const kind = testDatabaseKind();
const allVersions = migrations.map((m) => m.version).sort((a, b) => a - b);
const latest = allVersions.at(-1)!;

async function tableExists(db: Database, table: string): Promise<boolean> {
  const query =
    db.kind === 'sqlite'
      ? sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' AND name = ${table}`
      : sql<{ name: string }>`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ${table}`;
  return (await query.execute(db.kysely)).rows.length === 1;
}

async function recordedVersions(db: Database): Promise<number[]> {
  const rows = await db.kysely.selectFrom('schema_migrations').select('version').orderBy('version').execute();
  return rows.map((r) => Number(r.version));
}

describe(`migrations on ${kind}`, () => {
  let t: TestDatabase | undefined;
  afterEach(async () => {
    await t?.cleanup();
    t = undefined;
  });

  async function fresh(): Promise<Database> {
    t = await openTestDatabase(kind, { migrate: false });
    return t.db;
  }

  test('a fresh database gets every migration, recorded with its checksum', async () => {
    const db = await fresh();
    const report = await migrate(db);
    assert.equal(report.applied[0]?.name, 'foundation');
    assert.deepEqual(report, { applied: migrations.map((m) => ({ version: m.version, name: m.name })), current: latest });
    for (const table of ['users', 'organizations', 'memberships', 'devices', 'channels', 'groups', 'group_devices', 'connections', 'refresh_tokens', 'access_tokens']) {
      assert.ok(await tableExists(db, table), `table ${table} exists`);
    }
    const rows = await db.kysely.selectFrom('schema_migrations').selectAll().orderBy('version').execute();
    assert.deepEqual(rows.map((r) => [Number(r.version), r.name, r.checksum]), migrations.map((m) => [m.version, m.name, checksum(m[kind])]));
    for (const r of rows) assert.ok(!Number.isNaN(Date.parse(r.applied_at)));
  });

  test('migrating again applies nothing', async () => {
    const db = await fresh();
    await migrate(db);
    assert.deepEqual(await migrate(db), { applied: [], current: latest });
    assert.deepEqual(await recordedVersions(db), allVersions);
  });

  test('a migration changed after it was applied is refused by name', async () => {
    const db = await fresh();
    await migrate(db);
    await db.kysely.updateTable('schema_migrations').set({ checksum: '0'.repeat(64) }).where('version', '=', 1).execute();
    await assert.rejects(migrate(db), (e: unknown) => {
      assert.ok(e instanceof MigrationError);
      assert.match(e.message, /migration 1 \(foundation\) was changed after it was applied/);
      return true;
    });
  });

  test('a database newer than the code is refused', async () => {
    const db = await fresh();
    await migrate(db);
    await db.kysely.insertInto('schema_migrations').values({ version: 99, name: 'from-the-future', checksum: 'x', applied_at: new Date().toISOString() }).execute();
    await assert.rejects(migrate(db), (e: unknown) => {
      assert.ok(e instanceof MigrationError);
      assert.match(e.message, /database is at migration 99 \(from-the-future\).*upgrade Fleetwire/);
      return true;
    });
  });

  test('a failing migration leaves nothing half-applied', async () => {
    const db = await fresh();
    // the second statement fails when it runs, after the first has created its table
    const script = 'CREATE TABLE half_done (id TEXT PRIMARY KEY);\nINSERT INTO no_such_table (id) VALUES (1);';
    const broken: Migration = { version: latest + 1, name: 'broken', sqlite: script, postgres: script };
    await assert.rejects(migrate(db, [...migrations, broken]), (e: unknown) => {
      assert.ok(e instanceof MigrationError);
      assert.match(e.message, new RegExp(`migration ${latest + 1} \\(broken\\) failed`));
      return true;
    });
    assert.equal(await tableExists(db, 'half_done'), false);
    // the migrations before it ran in their own transactions and stay applied
    assert.deepEqual(await recordedVersions(db), allVersions);
    assert.ok(await tableExists(db, 'users'));
  });

  test('migrations run in version order whatever the list order', async () => {
    const db = await fresh();
    const next: Migration = { version: latest + 1, name: 'needs-users', sqlite: 'CREATE INDEX users_name ON users (name);', postgres: 'CREATE INDEX users_name ON users (name);' };
    const report = await migrate(db, [next, ...[...migrations].reverse()]);
    assert.deepEqual(report.applied.map((m) => m.version), [...allVersions, latest + 1]);
    assert.equal(report.current, latest + 1);
  });

  test('two handles migrating one database at once apply each migration once', { skip: kind === 'sqlite' && 'SQLite: one process owns the file; the advisory lock is PostgreSQL only' }, async () => {
    const db = await fresh();
    const other = await anotherHandle(db, 2);
    try {
      const reports = await Promise.all([migrate(db), migrate(other)]);
      assert.deepEqual(reports.map((r) => r.applied.length).sort(), [0, migrations.length]);
      assert.deepEqual(await recordedVersions(db), allVersions);
    } finally {
      await other.close();
    }
  });

  test('migrating over a pool of one connection does not wait for itself', { skip: kind === 'sqlite' && 'SQLite has no connection pool' }, async () => {
    const db = await fresh();
    const single = await anotherHandle(db, 1);
    try {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('migrate() did not finish within 10 s')), 10_000);
      });
      const report = await Promise.race([migrate(single), timeout]).finally(() => clearTimeout(timer));
      assert.equal(report.current, latest);
    } finally {
      await single.close();
    }
  });

  test('records stored before the compact SQLite layout (migration 4) read back the same after it, and keep their ids', async () => {
    const db = await fresh();
    await migrate(db, migrations.filter((m) => m.version < 4));
    const q = new RawQueries(db);
    const t0 = Date.UTC(2026, 0, 1);
    // two messages from two publishers, one with a subtopic, in migration 2's layout
    type OldRecord = { name: string; unit?: string; time: number; value?: number; string_value?: string; bool_value?: boolean };
    const old: { id: string; publisher: string; subtopic: string; records: OldRecord[] }[] = [
      { id: uuidv7(t0), publisher: 'dev-a', subtopic: '', records: [{ name: 'temp', unit: 'Cel', time: t0 / 1000, value: 21.5 }, { name: 'on', time: t0 / 1000, bool_value: true }] },
      { id: uuidv7(t0 + 1000), publisher: 'dev-b', subtopic: 'room/1', records: [{ name: 'temp', unit: 'Cel', time: t0 / 1000 + 1, value: 22 }, { name: 'label', time: t0 / 1000 + 1, string_value: 'x' }] },
    ];
    for (const m of old) {
      await q.run('INSERT INTO message_ids (id) VALUES (?)', [m.id]);
      for (const [seq, r] of m.records.entries()) {
        await q.run(
          'INSERT INTO messages (id, seq, org_id, channel, subtopic, publisher, protocol, name, unit, time, update_time, value, string_value, bool_value, data_value, sum) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, NULL, NULL)',
          [m.id, seq, 'org', 'ch', m.subtopic, m.publisher, 'mqtt', r.name, r.unit ?? null, r.time, r.value ?? null, r.string_value ?? null, r.bool_value ?? null],
        );
      }
    }
    // the latest value of dev-a's temp, as migration 2's writer kept it
    await q.run(
      'INSERT INTO latest_values (channel, name, subtopic, publisher, id, seq, org_id, protocol, unit, time, update_time, value, string_value, bool_value, data_value, sum) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, NULL, NULL, NULL, NULL)',
      ['ch', 'temp', '', 'dev-a', old[0]!.id, 0, 'org', 'mqtt', 'Cel', t0 / 1000, 21.5],
    );
    const report = await migrate(db);
    assert.deepEqual(report.applied.map((m) => m.version), allVersions.filter((v) => v >= 4));
    const readers = new MessageReaders(db);
    const common = { channel: 'ch', protocol: 'mqtt' };
    assert.deepEqual(await readers.records({ channel: 'ch' }, { offset: 0, limit: 10, dir: 'asc', total: true }), {
      total: 4,
      items: [
        { ...common, subtopic: '', publisher: 'dev-a', name: 'temp', unit: 'Cel', time: t0 / 1000, value: 21.5 },
        { ...common, subtopic: '', publisher: 'dev-a', name: 'on', time: t0 / 1000, bool_value: true },
        { ...common, subtopic: 'room/1', publisher: 'dev-b', name: 'temp', unit: 'Cel', time: t0 / 1000 + 1, value: 22 },
        { ...common, subtopic: 'room/1', publisher: 'dev-b', name: 'label', time: t0 / 1000 + 1, string_value: 'x' },
      ],
      more: false,
    });
    assert.deepEqual((await readers.records({ channel: 'ch', publisher: 'dev-b', subtopic: 'room/1' }, { offset: 0, limit: 10, dir: 'desc' })).items.map((r) => r.name), ['label', 'temp']);

    assert.deepEqual(await readers.latest({ channel: 'ch', publisher: 'dev-a' }), [{ channel: 'ch', subtopic: '', publisher: 'dev-a', protocol: 'mqtt', name: 'temp', unit: 'Cel', time: t0 / 1000, value: 21.5 }]);

    // a redelivered old message is recognised; a new one is stored beside the old ones
    const sink = createMessageSink(db);
    const envelope = (id: string, at: number) => ({ id, org: 'org', channel: 'ch', subtopic: '', publisher: 'dev-a', protocol: 'http' as const, contentType: 'application/senml+json', payload: Buffer.from(JSON.stringify([{ n: 'temp', u: 'Cel', v: 30, t: at / 1000 }])), receivedAt: at });
    await sink.write(toRows([envelope(old[0]!.id, t0), envelope(uuidv7(t0 + 60_000), t0 + 60_000)], 1024));
    const after = await readers.records({ channel: 'ch', name: 'temp' }, { offset: 0, limit: 10, dir: 'asc' });
    assert.deepEqual(after.items.map((r) => [r.publisher, r.value]), [['dev-a', 21.5], ['dev-b', 22], ['dev-a', 30]]);

    // retention finds the migrated records through their message ids
    let pruned = 0;
    for (let n = -1; n !== 0; pruned += n) n = await sink.pruneBefore(idBoundary(t0 + 30_000), 1000);
    assert.deepEqual((await readers.records({ channel: 'ch' }, { offset: 0, limit: 10, dir: 'asc' })).items.map((r) => [r.name, r.value]), [['temp', 30]]);
    assert.ok(pruned >= 4);
  });

  test('channels made before channel content types (migration 7) take SenML JSON, as the platform did; new ones take what they are given', async () => {
    const db = await fresh();
    await migrate(db, migrations.filter((m) => m.version < 7));
    const q = new RawQueries(db);
    const now = new Date().toISOString();
    await q.run('INSERT INTO organizations (id, name, created_at, updated_at) VALUES (?, ?, ?, ?)', ['org', 'Org', now, now]);
    await q.run('INSERT INTO channels (id, org_id, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)', ['old', 'org', 'old', now, now]);
    assert.deepEqual((await migrate(db)).applied.map((m) => m.version), allVersions.filter((v) => v >= 7));
    await q.run('INSERT INTO channels (id, org_id, name, content_type, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)', ['new', 'org', 'new', 'application/octet-stream', now, now]);
    await q.run('INSERT INTO channels (id, org_id, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)', ['plain', 'org', 'plain', now, now]);
    const rows = await q.all<{ id: string; content_type: string }>('SELECT id, content_type FROM channels ORDER BY id', []);
    assert.deepEqual(rows, [
      { id: 'new', content_type: 'application/octet-stream' },
      { id: 'old', content_type: 'application/senml+json' },
      { id: 'plain', content_type: 'application/senml+json' },
    ]);
  });
});
