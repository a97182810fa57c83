// Device twins under load, on SQLite and PostgreSQL (docs/twins.md), the server built and run as
// `fleetwire start` with the generators (bench/twins/load.ts) in processes of their own:
// - updates: `--devices` devices each keep `--window` QoS 1 reported updates in flight on
//   devices/<id>/twin/update; PUBACK comes once the update and its history row are stored. Beside
//   it, in the same run and server, the same generator publishing the same JSON as stored channel
//   messages (the reference: what the storage path does for telemetry).
// - delta latency: the bench changes desired over HTTP at `--rate` changes a second, open loop,
//   spread over the devices (2 s of warm-up first, not counted), each change carrying its send time; each connected device measures when
//   its delta arrived (p50/p99 from the HTTP send to the delta on the device's socket).
// - reconnect storm: `--storm` devices each with a desired change waiting connect at once
//   (`--concurrency` connects in progress) and subscribe to their delta; the catch-up must give each
//   its delta: time until the last has it, and the server's RSS with all of them connected.
// The twin rate limit per device is lifted (FLEETWIRE_TWIN_DEVICE_RATE): throughput is measured, not the limit.
//
//   npm run bench:twins [-- --db sqlite,postgres --devices 200 --window 4 --seconds 10 --rate 1000 --storm 10000]
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import { announcedPort, call, cleanupCli, cliEnv, dataFolder, login, startCli } from '../../test/helpers/cli.js';
import { machine, numberOption, percentile, rssMb, runBench, table } from '../harness.js';
import { procTicks } from '../http-publish/processes.js';
import { children, root, track } from '../mqtt/brokers.js';
import { specFile } from '../mtls/fleet.js';
import { postgresSkipReason, postgresUrl } from '../databases.js';
import { Database, sqliteUrlFor } from '../../src/db/index.js';
import { RawQueries } from '../../src/db/raw.js';
import type { DeltasResult, StormResult, TwinLoadSpec, UpdatesResult } from './load.js';

const here = dirname(fileURLToPath(import.meta.url));
const deviceCount = Math.max(1, Math.floor(numberOption('devices', 'FLEETWIRE_BENCH_TWIN_DEVICES', 200)));
const windowSize = Math.max(1, Math.floor(numberOption('window', 'FLEETWIRE_BENCH_TWIN_WINDOW', 4)));
const seconds = numberOption('seconds', 'FLEETWIRE_BENCH_SECONDS', 10);
const rate = Math.max(1, numberOption('rate', 'FLEETWIRE_BENCH_TWIN_RATE', 1000));
const stormCount = Math.max(0, Math.floor(numberOption('storm', 'FLEETWIRE_BENCH_TWIN_STORM', 10_000)));
const concurrency = Math.max(1, Math.floor(numberOption('concurrency', 'FLEETWIRE_BENCH_TWIN_CONCURRENCY', 100)));
const dbArg = process.argv.find((a) => a.startsWith('--db='))?.slice(5) ?? process.argv[process.argv.indexOf('--db') + 1];
const databases = (process.argv.includes('--db') || process.argv.some((a) => a.startsWith('--db=')) ? dbArg! : 'sqlite,postgres').split(',') as ('sqlite' | 'postgres')[];
/** `--profile DIR`: the server writes a CPU profile there when it stops. */
const profileDir = process.argv.includes('--profile') ? process.argv[process.argv.indexOf('--profile') + 1] : undefined;
const admin = { email: 'twin-bench@example.com', password: 'twin-bench-password' };
const targets = { sqlite: 10_000, postgres: 5_000, deltaP99Ms: 20 };

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number) => (Number.isFinite(n) ? `${n.toFixed(1)} ms` : '-');
const pct = (xs: number[], p: number) => percentile(Float64Array.from(xs).sort(), p);

function generator(spec: TwinLoadSpec): { child: ChildProcess; next: () => Promise<unknown>; send: (line: string) => void; stop: () => void } {
  const file = specFile(spec as never);
  const child = track(spawn(process.execPath, ['--import', 'tsx', join(here, 'load.ts'), `@${file.path}`], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] }));
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return {
    child,
    next: async () => {
      const line = await lines.next();
      if (line.done) throw new Error(`the generator exited with ${child.exitCode}`);
      return JSON.parse(String(line.value)) as unknown;
    },
    send: (line) => child.stdin!.write(`${line}\n`),
    stop: () => {
      child.kill();
      file.remove();
    },
  };
}

async function devices(api: string, token: string, org: string, n: number): Promise<{ id: string; secret: string }[]> {
  const out: { id: string; secret: string }[] = [];
  for (let k = 0; k < n; k += 1000) {
    const batch = Array.from({ length: Math.min(1000, n - k) }, (_, i) => ({ name: `twin-${k + i}` }));
    const res = await call<{ devices: { id: string; secret: string }[] }>(api, 'POST', `/orgs/${org}/devices/bulk`, { token, body: { devices: batch } });
    if (res.status !== 201) throw new Error(`bulk create: ${res.status} ${JSON.stringify(res.body)}`);
    out.push(...res.body.devices.map((d) => ({ id: d.id, secret: d.secret })));
  }
  return out;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
/** PATCH over a keep-alive agent (fetch's pool is not what is measured). */
function patch(api: string, path: string, token: string, body: unknown): Promise<number> {
  const u = new URL(path, api);
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'PATCH', agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(data);
  });
}

interface DbResult {
  db: string;
  updates: UpdatesResult & { cpu: number };
  reference: UpdatesResult & { cpu: number };
  deltas: DeltasResult & { sent: number; refused: number; seconds: number };
  storm?: StormResult & { rssMb: number; idleRssMb: number };
  /** After the updates: changes stored, and their twin.updated events. */
  eventsCheck: { changes: number; events: number };
}

async function updatesCase(port: number, pid: number | undefined, list: { id: string; secret: string }[], topic: string): Promise<UpdatesResult & { cpu: number }> {
  const g = generator({ mode: 'updates', port, devices: list, topic, window: windowSize, seconds, warmupSeconds: 2, concurrency: 50 });
  try {
    g.send('go');
    await g.next(); // measuring
    const t0 = procTicks(pid)!;
    const w0 = performance.now();
    const r = (await g.next()) as UpdatesResult;
    const cpu = (procTicks(pid)! - t0) / 100 / ((performance.now() - w0) / 1000);
    return { ...r, cpu };
  } finally {
    g.stop();
  }
}

/** Changes in the twins' history, and twin.updated events stored (the events API writes what it holds first). */
async function eventsKept(api: string, token: string, org: string, url: string): Promise<{ changes: number; events: number }> {
  const db = await Database.open({ url, poolSize: 1, queryBuilder: false });
  try {
    const count = async () => Number((await new RawQueries(db).all<{ n: number }>('SELECT COUNT(*) AS n FROM twin_history WHERE org_id = ?', [org]))[0]!.n);
    // the updates the generator had in flight when it stopped are still being stored: wait until none is
    let changes = await count();
    for (let last = -1; changes !== last; changes = await count()) {
      last = changes;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    const listed = await call<{ total: number }>(api, 'GET', `/orgs/${org}/events?type=twin.updated&limit=1`, { token });
    return { changes, events: listed.body.total };
  } finally {
    await db.close();
  }
}

async function forDatabase(kind: 'sqlite' | 'postgres', url?: string): Promise<DbResult> {
  const dir = dataFolder();
  const server = await startCli(cliEnv(dir, {
    FLEETWIRE_ADMIN_EMAIL: admin.email, FLEETWIRE_ADMIN_PASSWORD: admin.password, FLEETWIRE_SECRET_KEY: 'd'.repeat(64),
    FLEETWIRE_TWIN_DEVICE_RATE: '1000000', FLEETWIRE_MQTT_MAX_CONNECT_RATE: '0',
    ...(url ? { FLEETWIRE_DATABASE_URL: url } : {}),
  }), { built: true, ...(profileDir ? { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profileDir] } : {}) });
  try {
    const port = await announcedPort(server, 'MQTT listening');
    const { token } = await login(server.api, admin.email, admin.password);
    const org = (await call<{ id: string }>(server.api, 'POST', '/orgs', { token, body: { name: 'twins' } })).body.id;
    const fleet = await devices(server.api, token, org, deviceCount);
    const channel = (await call<{ id: string }>(server.api, 'POST', `/orgs/${org}/channels`, { token, body: { name: 'reference', content_type: 'application/json' } })).body.id;
    await call(server.api, 'POST', `/orgs/${org}/connections`, { token, body: { device_ids: fleet.map((d) => d.id), channel_ids: [channel], types: ['publish'] } });

    const updates = await updatesCase(port, server.child.pid, fleet, 'devices/{id}/twin/update');
    // every accepted change has its fleet event (written behind the twins, off the devices' path): none dropped
    const eventsCheck = await eventsKept(server.api, token, org, url ?? sqliteUrlFor(dir));
    const reference = await updatesCase(port, server.child.pid, fleet, `channels/${channel}/messages/twin-reference`);

    // desired → delta, open loop at `rate` a second
    const g = generator({ mode: 'deltas', port, devices: fleet, concurrency: 50 });
    let deltas: DbResult['deltas'];
    try {
      g.send('go');
      await g.next(); // ready
      let i = 0;
      /** Desired changes at `rate` a second for `secs`, open loop, spread over the devices. */
      const round = async (secs: number) => {
        let sent = 0;
        let refused = 0;
        const total = Math.round(rate * secs);
        const t0 = performance.now();
        const inFlight = new Set<Promise<void>>();
        for (let k = 0; k < total; k++, i++) {
          const due = t0 + (k * 1000) / rate;
          const wait = due - performance.now();
          if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
          const d = fleet[i % fleet.length]!;
          const p = patch(server.api, `/orgs/${org}/devices/${d.id}/twin`, token, { desired: { t: Date.now(), i } }).then((s) => void (s === 200 ? sent++ : refused++), () => void refused++);
          inFlight.add(p);
          void p.finally(() => inFlight.delete(p));
        }
        await Promise.all(inFlight);
        const elapsed = (performance.now() - t0) / 1000;
        await new Promise((resolve) => setTimeout(resolve, 500));
        g.send('report');
        return { ...((await g.next()) as DeltasResult), sent, refused, seconds: elapsed };
      };
      // warm-up, as in the updates case: every twin read once, the paths compiled; not counted
      await round(2);
      deltas = await round(seconds);
      g.send('done');
    } finally {
      g.stop();
    }

    let storm: DbResult['storm'];
    if (stormCount > 0) {
      const many = await devices(server.api, token, org, stormCount);
      // a desired change waiting for each (set up, not timed)
      let next = 0;
      await Promise.all(Array.from({ length: 32 }, async () => {
        while (next < many.length) {
          const d = many[next++]!;
          const s = await patch(server.api, `/orgs/${org}/devices/${d.id}/twin`, token, { desired: { firmware: '2.0.0' } });
          if (s !== 200) throw new Error(`desired for the storm: HTTP ${s}`);
        }
      }));
      const idleRssMb = rssMb(server.child.pid);
      const s = generator({ mode: 'storm', port, devices: many, concurrency });
      try {
        s.send('go');
        const r = (await s.next()) as StormResult;
        storm = { ...r, rssMb: rssMb(server.child.pid), idleRssMb };
      } finally {
        s.stop();
      }
    }
    return { db: kind === 'sqlite' ? 'SQLite' : 'PostgreSQL', updates, reference, deltas, eventsCheck, ...(storm ? { storm } : {}) };
  } catch (e) {
    // what the server said about it
    for (const l of server.logs.filter((l) => (l.level as number) >= 40 || /refused|failed/.test(String(l.msg))).slice(-8)) console.error(JSON.stringify(l));
    throw e;
  } finally {
    await server.stop();
  }
}

async function withPostgresSchema<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const schema = `fw_bench_${randomBytes(6).toString('hex')}`;
  const adminDb = await Database.open({ url: postgresUrl, poolSize: 1 });
  try {
    await adminDb.exec(`CREATE SCHEMA ${schema}`);
    const u = new URL(postgresUrl);
    u.searchParams.set('options', `-c search_path=${schema}`);
    return await fn(u.href);
  } finally {
    await adminDb.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await adminDb.close();
  }
}

async function main(): Promise<number> {
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  console.log(`twins bench: ${machine()}`);
  console.log(`updates: ${fmt(deviceCount)} devices × ${windowSize} QoS 1 updates in flight, ${seconds} s after 2 s of warm-up; deltas: ${fmt(rate)} desired changes/s over HTTP for ${seconds} s; storm: ${fmt(stormCount)} devices, ${concurrency} connects at a time\n`);
  const results: DbResult[] = [];
  for (const kind of databases) {
    if (kind === 'postgres') {
      const skip = await postgresSkipReason();
      if (skip) {
        console.log(`PostgreSQL skipped: ${skip}`);
        continue;
      }
      results.push(await withPostgresSchema((url) => forDatabase('postgres', url)));
    } else results.push(await forDatabase('sqlite'));
  }
  console.log(table(
    ['database', 'case', 'acks/s', 'PUBACK p50', 'PUBACK p99', 'server CPU'],
    results.flatMap((r) => [
      [r.db, 'twin reported updates (stored + history)', fmt(r.updates.acks / r.updates.seconds), ms(pct(r.updates.latencyMs, 0.5)), ms(pct(r.updates.latencyMs, 0.99)), `${Math.round(r.updates.cpu * 100)} %`],
      [r.db, 'reference: the same JSON as stored channel messages', fmt(r.reference.acks / r.reference.seconds), ms(pct(r.reference.latencyMs, 0.5)), ms(pct(r.reference.latencyMs, 0.99)), `${Math.round(r.reference.cpu * 100)} %`],
    ]),
  ));
  console.log(table(
    ['database', 'desired changes/s', 'deltas received', 'delta p50', 'delta p99', 'refused'],
    results.map((r) => [r.db, fmt(r.deltas.sent / r.deltas.seconds), fmt(r.deltas.deltas), ms(pct(r.deltas.latencyMs, 0.5)), ms(pct(r.deltas.latencyMs, 0.99)), fmt(r.deltas.refused)]),
  ));
  if (results.some((r) => r.storm)) {
    console.log(table(
      ['database', 'devices', 'connected', 'with their delta', 'all connected', 'all deltas delivered', 'RSS before → with all connected'],
      results.filter((r) => r.storm).map((r) => [r.db, fmt(stormCount), fmt(r.storm!.connected), fmt(r.storm!.withDelta), `${r.storm!.connectSeconds.toFixed(2)} s`, `${r.storm!.allDeltasSeconds.toFixed(2)} s`, `${Math.round(r.storm!.idleRssMb)} → ${Math.round(r.storm!.rssMb)} MiB`]),
    ));
  }
  let met = true;
  for (const r of results) {
    const u = r.updates.acks / r.updates.seconds;
    const target = r.db === 'SQLite' ? targets.sqlite : targets.postgres;
    const p99 = pct(r.deltas.latencyMs, 0.99);
    const { changes, events } = r.eventsCheck;
    console.log(`${r.db}: ${fmt(changes)} twin changes stored by the updates case, ${fmt(events)} twin.updated events${events === changes ? ': one each' : ': NOT one each'}`);
    const ok = events === changes && u >= target && p99 <= targets.deltaP99Ms && r.deltas.deltas >= r.deltas.sent * 0.99 && (!r.storm || r.storm.withDelta === stormCount);
    met &&= ok;
    console.log(`${r.db}: ${fmt(u)} updates/s (target ≥ ${fmt(target)}), delta p99 ${ms(p99)} at ${fmt(r.deltas.sent / r.deltas.seconds)}/s (target ≤ ${targets.deltaP99Ms} ms)${r.storm ? `, storm ${fmt(r.storm.withDelta)}/${fmt(stormCount)} deltas in ${r.storm.allDeltasSeconds.toFixed(2)} s` : ''}: ${ok ? 'met' : 'MISSED'}`);
    for (const e of [...r.updates.errors, ...r.deltas.errors, ...(r.storm?.errors ?? [])]) console.log(`  generator error: ${e}`);
  }
  return met ? 0 : 1;
}

runBench(main, children, cleanupCli);
