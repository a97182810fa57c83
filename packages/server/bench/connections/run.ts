// Memory per idle MQTT connection: what holding N connected, authenticated and idle clients adds
// to a broker's resident memory (RSS, /proc/<pid>/status) and, for the Node processes, to the V8
// heap after a full collection (read through the inspector). Three brokers in the same run, each
// alone on the machine while it is measured, the same generator (bench/mqtt/load.ts, `connect`:
// raw MQTT 3.1.1 clients, CONNECT with no keep-alive, CONNACK, then nothing) in a process of its own:
// - Mosquitto, anonymous: the reference;
// - a bare Node TCP server that answers the CONNECT and holds the socket: what Node itself costs;
// - Fleetwire's device listener (the compiled build, SQLite): every client a device with its id
//   and secret, connected to two channels.
// Growth per connection = (after − before) ÷ connected, both read 2 s after the last CONNACK.
// RSS counts no kernel socket buffers; "rest" is RSS growth minus heap growth: native memory
// (libuv handles, Node's stream wrappers, malloc), and heap pages V8 keeps committed.
//
//   npm run bench:connections [-- --connections 19000 --snapshots DIR]
//
// --snapshots DIR: heap snapshots of Fleetwire before and after the connections (DIR/before,
// after.heapsnapshot, for Chrome DevTools), and the heap's growth per connection by constructor.
// A process holds at most as many connections as its open-files limit allows (`ulimit -n`), and
// Fleetwire keeps a fifth of it for the rest of the platform: the bench uses that many when fewer
// are allowed than asked (FLEETWIRE_MQTT_MAX_CONNECTIONS cannot go past it), and says so.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { cleanupCli, stopChild } from '../../test/helpers/cli.js';
import { connectionBudget, openFileLimit } from '../../src/core/descriptors.js';
import { defaultBrokerOptions } from '../../src/mqtt/broker.js';
import { machine, numberOption, rssMb, runBench, table } from '../harness.js';
import { children, freePort, holdIdle, root, startFleetwireDevices, startMosquitto, track, type Broker, type DeviceSetup } from '../mqtt/brokers.js';
import { growthPerConnection } from './heap-diff.js';
import { Inspector } from './inspector.js';

const here = dirname(fileURLToPath(import.meta.url));
const requested = Math.floor(numberOption('connections', 'FLEETWIRE_BENCH_CONNECTIONS', 19_000));
const snapshotDir = process.argv.includes('--snapshots') ? process.argv[process.argv.indexOf('--snapshots') + 1]! : undefined;
/** After the last CONNACK, before memory is read: what the connects left behind settles. */
const settleMs = 2000;
/** Connections opened and closed before the first reading. */
const warmUp = 20;
/** The issue's target: Fleetwire's RSS growth per idle authenticated connection, bytes. */
const targetBytes = 2048;

interface Reading {
  name: string;
  connected: number;
  connectRate: number;
  rssBefore: number;
  rssAfter: number;
  /** V8 heap in use after a full collection, bytes; undefined for Mosquitto. */
  heapBefore?: number;
  heapAfter?: number;
  errors: string[];
}

const bytesOfRss = (pid: number | undefined) => rssMb(pid) * 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Holds `n` idle connections to `broker` and reads its memory before and after. */
async function measure(broker: Broker, n: number, options: { credentials?: DeviceSetup['credentials']; inspector?: Inspector; snapshots?: string } = {}): Promise<Reading> {
  const { inspector, snapshots } = options;
  // a first few connections through the whole path first: what a process makes once, at its first
  // connection (compiled code, mqtt-packet's table of 65,536 two-byte Buffers, ~7 MB), is not
  // counted as growth per connection
  await (await holdIdle(broker.port, warmUp, options.credentials)).release();
  await sleep(500);
  const heapBefore = await inspector?.heapUsedAfterGc();
  if (snapshots) await inspector!.writeSnapshot(join(snapshots, 'before.heapsnapshot'));
  const rssBefore = bytesOfRss(broker.pid);
  const load = await holdIdle(broker.port, n, options.credentials);
  await sleep(settleMs);
  const heapAfter = await inspector?.heapUsedAfterGc();
  const rssAfter = bytesOfRss(broker.pid);
  if (snapshots) await inspector!.writeSnapshot(join(snapshots, 'after.heapsnapshot'));
  await load.release();
  return { name: broker.name, connected: load.connected, connectRate: load.connectRate, rssBefore, rssAfter, heapBefore, heapAfter, errors: load.errors };
}

/** The bare Node server (bare-server.ts), its inspector on `inspectPort`. */
async function startBareNode(inspectPort: number): Promise<Broker> {
  const c = track(spawn(process.execPath, [`--inspect=127.0.0.1:${inspectPort}`, '--import', 'tsx', join(here, 'bare-server.ts')], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }));
  const line = await new Promise<string>((resolve) => createInterface({ input: c.stdout! }).once('line', resolve));
  const { port } = JSON.parse(line) as { port: number };
  return { name: 'bare Node TCP', port, pid: c.pid, stop: async () => void (await stopChild(c, 10_000)) };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
const per = (bytes: number, n: number) => (n > 0 ? fmt(bytes / n) : '-');

async function main(): Promise<number> {
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  const fdLimit = openFileLimit();
  const allowed = connectionBudget(requested, defaultBrokerOptions.maxUnauthenticated, fdLimit).maxConnections;
  const n = Math.min(requested, allowed);
  console.log(`MQTT idle connections: ${machine()}`);
  console.log(`open-files limit ${fdLimit ?? 'unknown'}; ${fmt(n)} connections per broker${n < requested ? ` (${fmt(requested)} asked: Fleetwire accepts at most ${fmt(allowed)} at this limit, a fifth of it kept for HTTP and the database, ${fmt(defaultBrokerOptions.maxUnauthenticated)} for connections before CONNECT)` : ''}`);

  const readings: Reading[] = [];
  const mosquitto = await startMosquitto();
  readings.push({ ...(await measure(mosquitto, n)), name: 'Mosquitto (anonymous)' });
  await mosquitto.stop();

  const barePort = await freePort();
  const bare = await startBareNode(barePort);
  const bareInspector = await Inspector.open(barePort);
  readings.push({ ...(await measure(bare, n, { inspector: bareInspector })), name: 'bare Node TCP (CONNACK, no MQTT)' });
  bareInspector.close();
  await bare.stop();

  const inspectPort = await freePort();
  const fleetwire = await startFleetwireDevices(n, { env: { FLEETWIRE_MQTT_MAX_CONNECTIONS: String(n) }, nodeArgs: [`--inspect=127.0.0.1:${inspectPort}`] });
  const inspector = await Inspector.open(inspectPort);
  if (snapshotDir) mkdirSync(snapshotDir, { recursive: true });
  readings.push({ ...(await measure(fleetwire.broker, n, { credentials: fleetwire.credentials, inspector, ...(snapshotDir ? { snapshots: snapshotDir } : {}) })), name: 'Fleetwire (device id + secret)' });
  inspector.close();
  await fleetwire.broker.stop();

  console.log('');
  console.log(table(
    ['broker', 'connected', 'connects/s', 'RSS before → after', 'RSS B/conn', 'heap before → after', 'heap B/conn', 'rest B/conn'],
    readings.map((r) => {
      const rss = r.rssAfter - r.rssBefore;
      const heap = r.heapAfter !== undefined && r.heapBefore !== undefined ? r.heapAfter - r.heapBefore : undefined;
      return [
        r.name, fmt(r.connected), fmt(r.connectRate), `${mb(r.rssBefore)} → ${mb(r.rssAfter)} MB`, per(rss, r.connected),
        heap === undefined ? '-' : `${mb(r.heapBefore!)} → ${mb(r.heapAfter!)} MB`, heap === undefined ? '-' : per(heap, r.connected), heap === undefined ? '-' : per(rss - heap, r.connected),
      ];
    }),
  ));
  for (const r of readings) if (r.errors.length) console.log(`  ${r.name}: ${r.errors.join('; ')}`);

  if (snapshotDir) {
    const f = readings.at(-1)!;
    console.log(`\nFleetwire's heap growth per connection by kind (self sizes; snapshots in ${snapshotDir})`);
    const rows = growthPerConnection(join(snapshotDir, 'before.heapsnapshot'), join(snapshotDir, 'after.heapsnapshot'), f.connected);
    const total = rows.reduce((s, g) => s + g.bytesPer, 0);
    console.log(table(['kind', 'objects/conn', 'B/conn'], [...rows.slice(0, 40).map((g) => [g.kind, g.countPer.toFixed(2), fmt(g.bytesPer)]), ['(all kinds that grew)', '', fmt(total)]]));
  }

  const f = readings.at(-1)!;
  const fleetwirePer = (f.rssAfter - f.rssBefore) / f.connected;
  const met = f.connected === n && fleetwirePer <= targetBytes;
  console.log(`\ntarget: Fleetwire RSS per idle connection ${fmt(fleetwirePer)} B (≤ ${fmt(targetBytes)} B with all ${fmt(n)} connected: ${met ? 'met' : 'MISSED'})`);
  return met ? 0 : 1;
}

runBench(main, children, cleanupCli);
