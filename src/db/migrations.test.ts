import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { openTestDatabase, testDatabaseKind, type TestDatabase } from '../../test/helpers/database.js';
import { Database } from './database.js';
import { MigrationError, checksum, migrate, migrations, type Migration } from './migrations.js';

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
    const other = await Database.open({ url: process.env.FLEETWIRE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test', schema: db.schema!, poolSize: 2 });
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
    const single = await Database.open({ url: process.env.FLEETWIRE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test', schema: db.schema!, poolSize: 1 });
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
});
