import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Database, migrate } from '../../src/db/index.js';

export type TestDatabaseKind = 'sqlite' | 'postgres';

/** The database this test run targets (scripts/test.mjs runs the suite once per kind). */
export function testDatabaseKind(): TestDatabaseKind {
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

/** A fresh, empty database: a SQLite file in a temp folder, or a new PostgreSQL schema. */
export async function openTestDatabase(kind: TestDatabaseKind = testDatabaseKind(), options: { migrate?: boolean } = {}): Promise<TestDatabase> {
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
