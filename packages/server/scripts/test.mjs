#!/usr/bin/env node
// Runs the test suite once per database: SQLite and PostgreSQL, side by side.
// PostgreSQL comes from FLEETWIRE_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test).
// With FLEETWIRE_REQUIRE_SERVICES=1 (CI) a missing PostgreSQL fails the run; otherwise that pass is
// skipped with a message saying what to start.
// A file whose first lines hold `// test-database: none` touches no database and runs in the first
// pass only (test/helpers/database-guard.ts makes it fail if it opens one); `// test-database: own`
// runs in the first pass only too, for files that open the databases they are about themselves
// (the SQLite and PostgreSQL repository contracts, SQLite file modes); `// test-database: once` runs
// in the first pass only too, for files whose subject is not the database although the platform
// processes they start have one (the web console, the CLI client commands, the API document).
// Cross-process tests hand the pass's database to the processes they start (test/helpers/cli.ts).
// Each pass ends with the seconds each file took, slowest first.
// Arguments: test files or folders to run instead of all; `--db sqlite|postgres` for one pass only;
// `--serial` to run the passes one after another instead of side by side.
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';

const args = process.argv.slice(2);
const serial = args.includes('--serial');
if (serial) args.splice(args.indexOf('--serial'), 1);
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

/** The same rule as test/helpers/database-guard.ts. */
const marker = (file) => /^\/\/ test-database: (none|own|once)\b/m.exec(readFileSync(file, 'utf8').slice(0, 2000))?.[1];

// the cross-process suites first: they are the longest, and a long file started last would leave one
// core idle at the end of the pass
const files = (args.length ? args : ['test', 'src']).flatMap((p) => collect(p, []));
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

// The cross-process tests run the CLI as users run it, from the build: compiled once here (a few
// seconds) instead of by tsx in every process they start. FLEETWIRE_TEST_CLI_BUILT=0 runs them
// from the sources instead.
const testEnv = {};
if (process.env.FLEETWIRE_TEST_CLI_BUILT !== '0') {
  const started = Date.now();
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const build = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  if (build.status !== 0) {
    console.error('FAIL: npm run build failed; the CLI tests run the build');
    process.exit(1);
  }
  console.log(`built dist/ for the CLI tests in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  testEnv.FLEETWIRE_TEST_CLI_BUILT = '1';
}

// The web console's end-to-end tests (those that import test/helpers/console.ts) serve the built
// console: built once here, not by each of those files at the same time.
if (files.some((f) => readFileSync(f, 'utf8').includes('./helpers/console.js'))) {
  const started = Date.now();
  const build = spawnSync('npm', ['run', 'build', '-w', '@fleetwire/console'], { cwd: join(import.meta.dirname, '..', '..', '..'), stdio: ['ignore', 'ignore', 'inherit'] });
  if (build.status !== 0) {
    console.error('FAIL: the console did not build (npm run build -w @fleetwire/console); the console tests serve the build');
    process.exit(1);
  }
  console.log(`built the console for its tests in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  testEnv.FLEETWIRE_TEST_CONSOLE_BUILT = '1';
}

// The passes run side by side (each with two files at a time): most of a cross-process test is
// waiting for processes, so four files in flight keep the two cores busier than two did. The first
// pass prints as it goes; a later one's output is held and printed once it and the ones before it
// are done, so each pass reads in one piece. `--serial` runs them one after another.
/** Runs one pass; resolves with its exit code, its output held (unless `live`). */
function runPass(db, pass, live) {
  const reporters = ['--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=./scripts/durations.mjs', '--test-reporter-destination=stdout'];
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', './test/helpers/database-guard.ts', '--test', '--test-concurrency=2', '--test-timeout=120000', ...reporters, ...pass], {
    stdio: ['ignore', live ? 'inherit' : 'pipe', live ? 'inherit' : 'pipe'],
    env: { ...process.env, ...testEnv, FLEETWIRE_TEST_DATABASE: db, FLEETWIRE_TEST_POSTGRES_URL: pgUrl },
  });
  const held = [];
  child.stdout?.on('data', (d) => held.push(d));
  child.stderr?.on('data', (d) => held.push(d));
  const started = Date.now();
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, held, seconds: (Date.now() - started) / 1000 })));
}

let failed = false;
let first = true;
const passes = [];
for (const db of ['sqlite', 'postgres']) {
  if (only && only !== db) continue;
  // the first pass that runs takes every file; later ones only those that touch a database of theirs
  const pass = first ? files : files.filter((f) => marker(f) === undefined);
  first = false;
  if (pass.length === 0) continue;
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
  passes.push({ db, pass });
}
const announce = ({ db, pass }) => console.log(`\n=== test suite on ${db} (${pass.length} files) ===`);
if (serial) {
  for (const p of passes) {
    announce(p);
    const res = await runPass(p.db, p.pass, true);
    if (res.code !== 0) failed = true;
  }
} else {
  if (passes.length > 1) console.log(`\n${passes.length} passes side by side (${passes.map((p) => p.db).join(', ')}); the later ones print when they are done`);
  const running = passes.map((p, i) => runPass(p.db, p.pass, i === 0));
  for (const [i, p] of passes.entries()) {
    if (i === 0) announce(p);
    const res = await running[i];
    if (i > 0) {
      announce(p);
      for (const chunk of res.held) process.stdout.write(chunk);
    }
    console.log(`(${p.db} pass: ${res.seconds.toFixed(0)} s)`);
    if (res.code !== 0) failed = true;
  }
}
process.exit(failed ? 1 : 0);
