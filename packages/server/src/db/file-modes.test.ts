// test-database: own
// The SQLite files and the data folder, whatever database the run targets: PostgreSQL keeps its own files.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Database, migrate } from './index.js';
import { loadServerKey } from '../auth/keys.js';

const root = mkdtempSync(join(tmpdir(), 'fleetwire-modes-'));
after(() => rmSync(root, { recursive: true, force: true }));

const modeOf = (path: string) => statSync(path).mode & 0o777;

test('the data folder, the database file, its -wal and -shm and the generated server key are readable by their owner only', async () => {
  const dataDir = join(root, 'fresh', 'data');
  const file = join(dataDir, 'fleetwire.db');
  const db = await Database.open({ url: `sqlite:${file}` });
  try {
    await migrate(db); // writes, so the -wal and -shm files exist
    assert.equal(modeOf(dataDir), 0o700);
    assert.equal(modeOf(join(root, 'fresh')), 0o700);
    for (const f of [file, `${file}-wal`, `${file}-shm`]) assert.equal(modeOf(f), 0o600, f);
    const key = loadServerKey('', dataDir);
    assert.equal(key.source, 'generated');
    assert.equal(modeOf(join(dataDir, 'secret.key')), 0o600);
  } finally {
    await db.close();
  }
  const keyDir = join(root, 'key-only');
  loadServerKey('', keyDir);
  assert.equal(modeOf(keyDir), 0o700);
});

test('an existing database file readable by others is narrowed to its owner when opened', async () => {
  const file = join(root, 'old.db');
  writeFileSync(file, '', { mode: 0o644 });
  const db = await Database.open({ url: `sqlite:${file}` });
  try {
    await migrate(db);
    for (const f of [file, `${file}-wal`, `${file}-shm`]) assert.equal(modeOf(f), 0o600, f);
  } finally {
    await db.close();
  }
});
