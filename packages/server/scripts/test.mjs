#!/usr/bin/env node
// Runs the whole test suite once per database: SQLite, then PostgreSQL.
// PostgreSQL comes from FLEETWIRE_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test).
// With FLEETWIRE_REQUIRE_SERVICES=1 (CI) a missing PostgreSQL fails the run; otherwise that pass is
// skipped with a message saying what to start.
// Arguments: test files or folders to run instead of all; `--db sqlite|postgres` for one pass only.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';

const args = process.argv.slice(2);
let only;
const dbArg = args.indexOf('--db');
if (dbArg >= 0) {
  only = args[dbArg + 1];
  args.splice(dbArg, 2);
}

function collect(path, out) {
  const st = statSync(path);
  if (st.isFile()) {
    if (path.endsWith('.test.ts')) out.push(path);
    return out;
  }
  for (const name of readdirSync(path).sort()) if (name !== 'node_modules') collect(join(path, name), out);
  return out;
}

const files = (args.length ? args : ['src', 'test']).flatMap((p) => collect(p, []));
const pgUrl = process.env.FLEETWIRE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const required = process.env.FLEETWIRE_REQUIRE_SERVICES === '1';

function reachable(url) {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port || 5432) });
    s.setTimeout(2000);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
    s.once('timeout', () => (s.destroy(), resolve(false)));
  });
}

let failed = false;
for (const db of ['sqlite', 'postgres']) {
  if (only && only !== db) continue;
  if (db === 'postgres' && !(await reachable(pgUrl))) {
    const msg = `PostgreSQL is not reachable at ${pgUrl}`;
    if (required) {
      console.error(`FAIL: ${msg} (FLEETWIRE_REQUIRE_SERVICES=1)`);
      failed = true;
      continue;
    }
    console.warn(`SKIP the PostgreSQL pass: ${msg}. Start PostgreSQL (or set FLEETWIRE_TEST_POSTGRES_URL) to run it.`);
    continue;
  }
  console.log(`\n=== test suite on ${db} (${files.length} files) ===`);
  const res = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=120000', ...files], {
    stdio: 'inherit',
    env: { ...process.env, FLEETWIRE_TEST_DATABASE: db, FLEETWIRE_TEST_POSTGRES_URL: pgUrl },
  });
  if (res.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
