// Publishing over HTTP end to end: Fleetwire started as an operator starts it (`fleetwire start`, a
// process of its own, fresh data folder), set up through its HTTP API (admin, organization,
// devices, channel, connections), then driven by a load generator in another process: N keep-alive
// connections POSTing a 10-record SenML JSON message each, one after another. The reference, in the
// same run and with the same generator: a bare Fastify route that answers 202 (bare-server.ts).
// Afterwards the stored records are counted through the readers API, and the writer's lag is shown.
//
//   npm run bench -- --seconds 10          (every bench)
//   npx tsx bench/http-publish/run.ts [--seconds 10] [--connections 64] [--generator auto|node|wrk]
//                                     [--cases sqlite,sqlite-main,sqlite-info,postgres,postgres-main]
//                                     [--profile DIR]   (a CPU profile of every server, each thread a file, into DIR)
//                                     [--rounds N]      (reference and cases take turns N times; the median round is shown)
//
// Fleetwire runs as `npm start` runs it, from the compiled build (the bench builds it first).
// Generator: wrk when installed (`sudo apt-get install -y wrk`; it takes less of the machine than a
// Node client), else load.ts (node:http, keep-alive Agent). PostgreSQL: see bench/databases.ts.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { Database } from '../../src/db/index.js';
import { call, cliFleet, root } from '../../test/helpers/cli.js';
import { postgresSkipReason, postgresUrl } from '../databases.js';
import { formatNs, formatRate, machine, numberOption, table, writerDrained } from '../harness.js';
import { random, recordsPerPack, senmlJson, senmlPack } from '../senml.js';
import type { LoadRequest, LoadResult } from './load.js';
import { procTicks, spawnScript, startBare, startFleetwire, stopAll, type RunningServer } from './processes.js';
import { runWrk, wrkAvailable } from './wrk.js';

const targetShare = 0.3; // Fleetwire's sustained publish rate against the bare route's (the restated target; 50 % before)

const seconds = numberOption('seconds', 'FLEETWIRE_BENCH_SECONDS', 10);
const warmupSeconds = Math.min(3, Math.max(1, seconds / 4));
const connections = Math.max(1, Math.floor(numberOption('connections', 'FLEETWIRE_BENCH_CONNECTIONS', 64)));
const generatorArg = process.argv.includes('--generator') ? process.argv[process.argv.indexOf('--generator') + 1] : (process.env.FLEETWIRE_BENCH_GENERATOR ?? 'auto');
if (!['auto', 'node', 'wrk'].includes(generatorArg ?? '')) throw new Error(`--generator must be auto, node or wrk, got ${generatorArg}`);
const hasWrk = wrkAvailable();
if (generatorArg === 'wrk' && !hasWrk) throw new Error('--generator wrk: wrk is not installed (Debian/Ubuntu: sudo apt-get install -y wrk)');
const generator: 'node' | 'wrk' = generatorArg === 'node' || !hasWrk ? 'node' : 'wrk';
const allCases = ['sqlite', 'sqlite-main', 'sqlite-info', 'postgres', 'postgres-main'];
/** Fleetwire cases to run besides the reference: --cases sqlite,postgres (default: all). */
const cases = new Set((process.argv.includes('--cases') ? process.argv[process.argv.indexOf('--cases') + 1]! : allCases.join(',')).split(','));
for (const c of cases) if (!allCases.includes(c)) throw new Error(`--cases takes ${allCases.join(', ')}; got ${c}`);
const profileDir = process.argv.includes('--profile') ? resolve(process.argv[process.argv.indexOf('--profile') + 1]!) : undefined;
const roundCount = Math.max(1, Math.floor(numberOption('rounds', 'FLEETWIRE_BENCH_ROUNDS', 1)));
const profileArgs = () => (profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []);
const devices = Math.min(connections, 64); // one device per connection, up to 64, all on one channel
const admin = { email: 'bench-admin@example.com', password: 'bench-password-not-secret' };
const defaultCase = 'Fleetwire, SQLite, log level warn';

/** What one load run measured: answers per second and latency over the timed part. */
interface Load {
  rate: number;
  p50: number;
  p99: number;
  /** 2xx answers over warm-up and timed run: every one is a message Fleetwire accepted. */
  accepted: number;
  /** Answers other than 2xx, and failed requests, over both parts. */
  refused: number;
  refusals: string;
  /** CPU of the generator, share of one core. */
  generatorCpu: number;
  /** Requests the server may have taken that the generator did not count: wrk drops those in flight when it stops. */
  uncounted: number;
}

/** Drives `url` with the generator; `timed` runs when the warm-up is over, `done` when the timed part ends. */
async function drive(url: string, requests: LoadRequest[], hooks: { timed(): void; done(): void }): Promise<Load> {
  if (generator === 'wrk') {
    const warm = await runWrk(url, senmlJson, requests, connections, warmupSeconds);
    hooks.timed();
    const run = await runWrk(url, senmlJson, requests, connections, seconds);
    hooks.done();
    const refused = warm.non2xx + warm.socketErrors + run.non2xx + run.socketErrors;
    return {
      rate: run.rate, p50: run.p50, p99: run.p99,
      accepted: warm.requests + run.requests - warm.non2xx - run.non2xx,
      refused, refusals: refused ? `${warm.non2xx + run.non2xx} non-2xx, ${warm.socketErrors + run.socketErrors} socket errors` : '',
      generatorCpu: run.cpu,
      uncounted: 2 * connections,
    };
  }
  const child = spawnScript('load.ts', [JSON.stringify({ url, contentType: senmlJson, requests, connections, warmupSeconds, seconds })]);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const result = await new Promise<LoadResult>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
        const event = JSON.parse(out.slice(0, nl)) as { event: string } & LoadResult;
        out = out.slice(nl + 1);
        if (event.event === 'timed') hooks.timed();
        else if (event.event === 'result') {
          hooks.done();
          resolve(event);
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`the load generator exited with ${code} before its result: ${stderr}`)));
  });
  const accepted = Object.entries(result.statuses).filter(([k]) => /^2\d\d$/.test(k)).reduce((s, [, n]) => s + n, 0);
  const refusedEntries = Object.entries(result.statuses).filter(([k]) => !/^2\d\d$/.test(k));
  return {
    rate: result.rate, p50: result.p50, p99: result.p99, accepted,
    refused: refusedEntries.reduce((s, [, n]) => s + n, 0),
    refusals: refusedEntries.map(([k, n]) => `${n} × ${k}`).join(', '),
    generatorCpu: result.cpu,
    uncounted: 0, // every request in flight is awaited
  };
}

/** Server CPU over the timed part, share of one core (Linux), from /proc ticks: the whole process and its main thread. */
function cpuMeter(server: RunningServer): { start(): void; stop(): void; share(): number | undefined; main(): number | undefined } {
  let t0: number | undefined;
  let c0: number | undefined;
  let m0: number | undefined;
  let share: number | undefined;
  let main: number | undefined;
  return {
    start() {
      c0 = procTicks(server.pid);
      m0 = procTicks(server.pid, server.pid);
      t0 = performance.now();
    },
    stop() {
      const c1 = procTicks(server.pid);
      const m1 = procTicks(server.pid, server.pid);
      if (t0 === undefined) return;
      const secs = (performance.now() - t0) / 1000;
      if (c0 !== undefined && c1 !== undefined) share = (c1 - c0) / 100 / secs;
      if (m0 !== undefined && m1 !== undefined) main = (m1 - m0) / 100 / secs;
    },
    share: () => share,
    main: () => main,
  };
}

// ---- Fleetwire's own view: /metrics -------------------------------------------------------------

interface WriterMetrics {
  /** Messages waiting on the bus for the writer. */
  lag: number;
  /** Rows stored (SenML records). */
  stored: number;
  batches: number;
  batchSeconds: number;
}

async function writerMetrics(url: string): Promise<WriterMetrics> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? 0);
  return {
    lag: value(/^fleetwire_writer_lag_messages (\S+)$/m),
    stored: value(/^fleetwire_messages_stored_total\{kind="senml"\} (\S+)$/m),
    batches: value(/^fleetwire_writer_batch_seconds_count (\S+)$/m),
    batchSeconds: value(/^fleetwire_writer_batch_seconds_sum (\S+)$/m),
  };
}

/** The writer while the load runs: metrics at the start and end of the timed part, and the lag once a second. */
function writerWatch(url: string): { start(): void; stop(): void; result(): Promise<{ first: WriterMetrics; last: WriterMetrics; lags: number[]; seconds: number }> } {
  let first: Promise<WriterMetrics> | undefined;
  let last: Promise<WriterMetrics> | undefined;
  let t0 = 0;
  let t1 = 0;
  const lags: number[] = [];
  let timer: NodeJS.Timeout | undefined;
  return {
    start() {
      t0 = performance.now();
      first = writerMetrics(url);
      timer = setInterval(() => void writerMetrics(url).then((m) => lags.push(m.lag), () => {}), 1000);
    },
    stop() {
      t1 = performance.now();
      clearInterval(timer);
      last = writerMetrics(url);
    },
    async result() {
      return { first: await first!, last: await last!, lags, seconds: (t1 - t0) / 1000 };
    },
  };
}

// ---- cases --------------------------------------------------------------------------------------

interface CaseResult {
  name: string;
  load: Load;
  serverCpu: number | undefined;
  /** Of which the main thread (the event loop that answers HTTP). */
  mainCpu: number | undefined;
  writer?: {
    /** Messages stored per second over the timed part. */
    storedRate: number;
    lagEnd: number;
    lagMax: number;
    drainSeconds: number;
    meanBatch: number;
    meanBatchMs: number;
    /** Messages the readers API counts (records / 10), and how many were accepted (2xx answers). */
    counted: number;
    accepted: number;
  };
  complaints: { level: number; msg: string }[];
  logLines: number;
  exitCode: number | null;
}

const rnd = random(11);
const bodies = Array.from({ length: devices }, (_, k) => JSON.stringify(senmlPack(k, rnd)));

async function bareCase(): Promise<CaseResult> {
  const server = await startBare(profileArgs());
  try {
    const cpu = cpuMeter(server);
    const requests = bodies.map((body, k) => ({ authorization: `Device not-checked-${k}`, body }));
    const load = await drive(`${server.url}/channels/reference/messages`, requests, { timed: cpu.start, done: cpu.stop });
    return { name: 'reference: bare Fastify route, 202', load, serverCpu: cpu.share(), mainCpu: cpu.main(), complaints: [], logLines: 0, exitCode: await server.stop() };
  } finally {
    await server.stop(1000);
  }
}

/** `thread`: the writer on a worker thread (FLEETWIRE_WRITER_THREAD) instead of the main event loop. */
async function fleetwireCase(name: string, logLevel: 'info' | 'warn', databaseUrl?: string, thread = true): Promise<CaseResult> {
  const server = await startFleetwire({ logLevel, admin, ...(databaseUrl ? { databaseUrl } : {}), nodeArgs: profileArgs(), settings: { FLEETWIRE_WRITER_THREAD: String(thread) } });
  try {
    const { token, channel, devices: sensors } = await cliFleet(server.url, admin, { devices, types: ['publish'] });
    const requests = sensors.map((d, k) => ({ authorization: `Device ${d.secret}`, body: bodies[k]! }));
    // every request must be accepted, or the bench would time the refusal path
    const probe = await fetch(`${server.url}/channels/${channel}/messages`, { method: 'POST', headers: { 'content-type': senmlJson, authorization: requests[0]!.authorization }, body: requests[0]!.body });
    if (probe.status !== 202) throw new Error(`a probe publish was refused: HTTP ${probe.status} ${await probe.text()}`);
    const cpu = cpuMeter(server);
    const watch = writerWatch(server.url);
    const load = await drive(`${server.url}/channels/${channel}/messages`, requests, {
      timed: () => (cpu.start(), watch.start()),
      done: () => (cpu.stop(), watch.stop()),
    });
    const { first, last, lags, seconds: timed } = await watch.result();
    const drainSeconds = await writerDrained(server.url);
    const page = await call<{ total: number }>(server.url, 'GET', `/channels/${channel}/messages?total=true&limit=1`, { token });
    if (page.status !== 200) throw new Error(`readers API: HTTP ${page.status} ${JSON.stringify(page.body)}`);
    const batches = last.batches - first.batches;
    const writer = {
      storedRate: (last.stored - first.stored) / recordsPerPack / timed,
      lagEnd: last.lag,
      lagMax: Math.max(first.lag, last.lag, ...lags),
      drainSeconds,
      meanBatch: batches > 0 ? (last.stored - first.stored) / recordsPerPack / batches : 0,
      meanBatchMs: batches > 0 ? ((last.batchSeconds - first.batchSeconds) / batches) * 1000 : 0,
      counted: page.body.total / recordsPerPack,
      accepted: load.accepted + 1, // + the probe
    };
    const exitCode = await server.stop();
    return { name, load, serverCpu: cpu.share(), mainCpu: cpu.main(), writer, complaints: server.complaints.map(({ level, msg }) => ({ level, msg })), logLines: server.lines(), exitCode };
  } finally {
    await server.stop(1000);
  }
}

/** A PostgreSQL schema of its own for the server (search_path in the URL), dropped afterwards. */
async function withPostgresSchema<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const schema = `fw_bench_${randomBytes(6).toString('hex')}`;
  const admin = await Database.open({ url: postgresUrl, poolSize: 1 });
  try {
    await admin.exec(`CREATE SCHEMA ${schema}`);
    const u = new URL(postgresUrl);
    u.searchParams.set('options', `-c search_path=${schema}`);
    return await fn(u.href);
  } finally {
    await admin.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.close();
  }
}

// ---- run ----------------------------------------------------------------------------------------

const pct = (x: number | undefined) => (x === undefined ? '?' : `${Math.round(x * 100)} %`);

console.log(`http-publish bench: ${machine()}`);
console.log(
  `generator: ${generator === 'wrk' ? 'wrk, one thread' : 'bench/http-publish/load.ts (node:http keep-alive Agent)'}` +
    (generator === 'node' && !hasWrk ? ' (wrk is not installed: sudo apt-get install -y wrk)' : '') +
    `; ${connections} connections, ${devices} devices on one channel, 10-record SenML JSON (${bodies[0]!.length} bytes); ${warmupSeconds} s warm-up, then ${seconds} s per case\n`,
);

execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
/** One round: the reference, then each Fleetwire case, each on a fresh server. */
async function round(): Promise<CaseResult[]> {
  const out: CaseResult[] = [await bareCase()];
  if (cases.has('sqlite')) out.push(await fleetwireCase(defaultCase, 'warn'));
  if (cases.has('sqlite-main')) out.push(await fleetwireCase('Fleetwire, SQLite, writer on the main thread, log level warn', 'warn', undefined, false));
  if (cases.has('sqlite-info')) out.push(await fleetwireCase('Fleetwire, SQLite, log level info (the default)', 'info'));
  const skip = cases.has('postgres') || cases.has('postgres-main') ? await postgresSkipReason() : undefined;
  if (skip) console.log(`SKIP PostgreSQL: ${skip}`);
  else {
    if (cases.has('postgres')) out.push(await withPostgresSchema((url) => fleetwireCase('Fleetwire, PostgreSQL, log level warn', 'warn', url)));
    if (cases.has('postgres-main')) out.push(await withPostgresSchema((url) => fleetwireCase('Fleetwire, PostgreSQL, writer on the main thread, log level warn', 'warn', url, false)));
  }
  return out;
}

const sustained = (r: CaseResult) => (r.writer ? Math.min(r.load.rate, r.writer.storedRate) : r.load.rate);
/** The first Fleetwire case's share of its own round's reference. */
const shareOf = (r: CaseResult[]) => (r[1] ? sustained(r[1]) / r[0]!.load.rate : 0);

// The machine's speed drifts from minute to minute; with --rounds N the reference and the cases
// take turns N times, and the tables show the round whose share is the median.
const rounds: CaseResult[][] = [];
try {
  for (let i = 0; i < roundCount; i++) {
    if (roundCount > 1) console.log(`round ${i + 1} of ${roundCount}`);
    rounds.push(await round());
  }
} finally {
  await stopAll();
}
const byShare = [...rounds].sort((a, b) => shareOf(a) - shareOf(b));
const results = byShare[Math.floor((byShare.length - 1) / 2)]!;
if (roundCount > 1) {
  console.log(`\n${results[1]?.name ?? 'reference'}: share of the reference in each round: ${rounds.map((r) => `${(shareOf(r) * 100).toFixed(0)} % (${formatRate(r[1] ? sustained(r[1]) : 0)} of ${formatRate(r[0]!.load.rate)}/s)`).join(', ')}; the tables show the median round`);
}

const bare = results[0]!;
console.log(
  '\n' +
    table(
      ['case', 'req/s', 'p50', 'p99', 'sustained/s', 'vs reference', 'server CPU', 'main thread', 'generator CPU', 'refused'],
      results.map((r) => [
        r.name,
        formatRate(r.load.rate),
        formatNs(r.load.p50),
        formatNs(r.load.p99),
        formatRate(sustained(r)),
        r === bare ? '(reference)' : `${((sustained(r) / bare.load.rate) * 100).toFixed(0)} %`,
        pct(r.serverCpu),
        pct(r.mainCpu),
        pct(r.load.generatorCpu),
        r.load.refused ? r.load.refusals : '0',
      ]),
    ),
);
console.log('req/s, p50, p99: answers over the timed run (latency of one POST). sustained/s: the lower of req/s and the messages the writer stored per second over the same time.');
console.log('CPU: share of one core over the timed run (the machine has two); main thread: the event loop that answers HTTP, the rest is the writer thread, GC and I/O threads. A saturated server queues: with N connections, p50 ≈ N / req/s.');
if (bare.load.generatorCpu >= 0.95) console.log(`The reference was limited by the generator (${pct(bare.load.generatorCpu)} CPU): its req/s is a lower bound and the ratios flatter Fleetwire; wrk (apt-get install -y wrk) measures it properly.`);
console.log('');

const writerRows = results.filter((r) => r.writer);
console.log(
  table(
    ['case', 'stored msg/s', 'lag at end', 'max lag', 'drained in', 'msgs/batch', 'ms/batch', 'stored msgs', 'accepted', 'log lines', 'warn+ lines', 'exit'],
    writerRows.map((r) => {
      const w = r.writer!;
      return [r.name, formatRate(w.storedRate), formatRate(w.lagEnd), formatRate(w.lagMax), `${w.drainSeconds.toFixed(1)} s`, w.meanBatch.toFixed(0), w.meanBatchMs.toFixed(1), formatRate(w.counted), formatRate(w.accepted), formatRate(r.logLines), String(r.complaints.length), String(r.exitCode)];
    }),
  ),
);
console.log('lag: messages on the bus not yet stored (fleetwire_writer_lag_messages, sampled every second); ms/batch: one writer transaction, during which');
console.log('a SQLite write holds its event loop (the writer thread\'s by default, the main one with FLEETWIRE_WRITER_THREAD=false). stored msgs: GET /channels/:id/messages total (records) / 10 once the writer drained;');
console.log(`accepted: 202 answers the generator counted${generator === 'wrk' ? ' (wrk does not count the requests in flight when it stops: up to one per connection and run)' : ''}.\n`);

let failed = false;
for (const r of writerRows) {
  const w = r.writer!;
  if (w.counted < w.accepted) {
    console.log(`${r.name}: ${formatRate(w.accepted)} messages were accepted but ${formatRate(w.counted)} are stored: MESSAGES LOST`);
    failed = true;
  } else if (w.counted > w.accepted + r.load.uncounted) {
    console.log(`${r.name}: ${formatRate(w.counted)} messages are stored but only ${formatRate(w.accepted)} were accepted (+ ${r.load.uncounted} in flight at most): STORED TWICE?`);
    failed = true;
  }
  if (r.load.refused) console.log(`${r.name}: not accepted: ${r.load.refusals}`);
  for (const c of r.complaints.slice(0, 5)) console.log(`${r.name}: server logged (level ${c.level}) ${c.msg}`);
  if (r.complaints.length > 5) console.log(`${r.name}: … and ${r.complaints.length - 5} more warnings or errors`);
  if (r.exitCode !== 0) console.log(`${r.name}: the server exited with ${r.exitCode} on SIGTERM`);
}
for (const main of results.filter((r) => r.name === defaultCase)) {
  const share = sustained(main) / bare.load.rate;
  console.log(`${main.name} sustains ${formatRate(sustained(main))} publishes/s, ${(share * 100).toFixed(0)} % of the bare route's ${formatRate(bare.load.rate)}/s, against a target of ≥ ${targetShare * 100} %: ${share >= targetShare ? 'met' : 'MISSED'}`);
  if (share < targetShare) failed = true;
}
if (failed) process.exitCode = 1;
