import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Database, migrate } from '../../src/db/index.js';

export type TestDatabaseKind = 'sqlite' | 'postgres';

/**
 * The database this test run targets (scripts/test.mjs runs the suite once per kind). A file marked
 * `// test-database: none` runs once and may not ask (test/helpers/database-guard.ts).
 */
export function testDatabaseKind(): TestDatabaseKind {
  if (process.env.FLEETWIRE_TEST_DATABASE === 'none') throw new Error('this test file is marked "// test-database: none" but uses a database: remove the marker');
  return process.env.FLEETWIRE_TEST_DATABASE === 'postgres' ? 'postgres' : 'sqlite';
}

export interface TestDatabase {
  db: Database;
  /** Closes the database and removes what the test created (temp folder or schema). */
  cleanup(): Promise<void>;
}

/** The PostgreSQL the tests use: FLEETWIRE_TEST_POSTGRES_URL, else the local one. */
export const testPostgresUrl = process.env.FLEETWIRE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Another handle on the same database as `db` (the same SQLite file, or the same PostgreSQL schema), as a second process or node has. */
export function anotherHandle(db: Database, poolSize = 1): Promise<Database> {
  return db.sqlite ? Database.open({ url: `sqlite:${db.sqlite.name}` }) : Database.open({ url: testPostgresUrl, schema: db.schema!, poolSize });
}

/**
 * A fresh, empty PostgreSQL database on the test server, for processes a test starts (they take a
 * URL, not a schema); `drop` ends its connections and removes it.
 */
export async function createPostgresDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const { default: pg } = await import('pg');
  const name = `fw_test_${randomBytes(6).toString('hex')}`;
  process.env.FLEETWIRE_TEST_OPENED_DATABASE = '1'; // for test/helpers/database-guard.ts: this file uses a database
  const admin = new pg.Client({ connectionString: testPostgresUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(testPostgresUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: testPostgresUrl });
      await c.connect();
      try {
        await c.query(`drop database if exists ${name} with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** A fresh, empty database: a SQLite file in a temp folder, or a new PostgreSQL schema. */
export async function openTestDatabase(kind: TestDatabaseKind = testDatabaseKind(), options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  testDatabaseKind(); // a file marked `test-database: none` fails here, also when it names the kind
  let db: Database;
  let cleanup: () => Promise<void>;
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'fleetwire-test-'));
    db = await Database.open({ url: `sqlite:${join(dir, 'test.db')}` });
    cleanup = async () => {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    };
  } else {
    const url = testPostgresUrl;
    const schema = `fw_test_${randomBytes(6).toString('hex')}`;
    db = await Database.open({ url, schema, poolSize: 4 });
    cleanup = async () => {
      await db.dropSchema();
      await db.close();
    };
  }
  if (options.migrate !== false) await migrate(db);
  return { db, cleanup };
}
