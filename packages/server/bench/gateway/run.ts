// A fleet per gateway: how many devices one Fleetwire process serves on this machine. Fleetwire is
// started as an operator starts it (`fleetwire start`, the compiled build, SQLite, the writer on
// its thread), the devices are made through the API (bulk, connected to one of `--channels`
// channels for publish and subscribe), and simulated devices in `--generators` processes of their
// own (devices.ts) connect with their ids and secrets, each keeping one subscription and publishing
// one SenML record at QoS 1 every `--period` seconds. The fleet grows step by step; at each step,
// after the new devices are connected, the bench measures over `--hold` seconds:
// - PUBLISH → PUBACK latency (a PUBACK comes once the message is stored): p50, p99, max, and
//   messages still unacknowledged after 5 s;
// - that every acknowledged message was stored (the writer's stored counter against the PUBACKs);
// - the server's CPU (all its threads, share of one core; the machine has two) and its RSS, and
//   RSS per connected device over the process with the devices made but none connected.
// A step passes when every device is connected, p99 ≤ 1 s and nothing is overdue; the headline is
// the largest step that passed. Then the reconnect storm: the server restarts (its authorization
// cache cold) and every device connects again at once; the time until all are back.
//
//   npm run bench:gateway [-- --steps 1000,5000,10000,15000 --hold 30 --period 10 --generators 2 --channels 10]
//
// One process holds at most as many connections as its open-files limit allows (`ulimit -n`; the
// platform keeps a fifth for HTTP and the database, FLEETWIRE_MQTT_MAX_CONNECTIONS): the bench
// prints the limit and steps past it fail to connect.
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { call, cleanupCli, cliEnv, dataFolder, login, startCli, type Server } from '../../test/helpers/cli.js';
import { fleetwireMetric, machine, numberOption, rssMb, runBench, table } from '../harness.js';
import { procTicks } from '../http-publish/processes.js';
import { children, freePort, root, track } from '../mqtt/brokers.js';
import type { DevicesSpec, DevicesStats } from './devices.js';

const here = dirname(fileURLToPath(import.meta.url));
const stepsArg = process.argv.includes('--steps') ? process.argv[process.argv.indexOf('--steps') + 1]! : '1000,5000,10000,15000';
const steps = stepsArg.split(',').map(Number).filter((n) => n > 0).sort((a, b) => a - b);
const holdSeconds = numberOption('hold', 'FLEETWIRE_BENCH_HOLD', 30);
const periodSeconds = numberOption('period', 'FLEETWIRE_BENCH_PERIOD', 10);
const generatorCount = Math.max(1, Math.floor(numberOption('generators', 'FLEETWIRE_BENCH_GENERATORS', 2)));
const channelCount = Math.max(1, Math.floor(numberOption('channels', 'FLEETWIRE_BENCH_CHANNELS', 10)));
const admin = { email: 'gateway-bench@example.com', password: 'gateway-bench-password' };
const targetP99Ms = 1000;

const storedSenml = (api: string) => fleetwireMetric(api, /^fleetwire_messages_stored_total\{kind="senml"\} (\S+)$/m);

/** A generator process and its line protocol. */
class Generator {
  private readonly answers: ((line: string) => void)[] = [];
  readonly child: ChildProcess;

  constructor(spec: DevicesSpec, private readonly specDir: string) {
    writeFileSync(join(specDir, 'spec.json'), JSON.stringify(spec));
    this.child = track(spawn(process.execPath, ['--import', 'tsx', join(here, 'devices.ts'), `@${join(specDir, 'spec.json')}`], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] }));
    createInterface({ input: this.child.stdout! }).on('line', (line) => this.answers.shift()?.(line));
  }

  ask<T>(command: unknown): Promise<T> {
    return new Promise((resolve) => {
      this.answers.push((line) => resolve(JSON.parse(line) as T));
      if (command !== undefined) this.child.stdin!.write(`${JSON.stringify(command)}\n`);
    });
  }

  stop(): void {
    this.child.stdin!.write(`${JSON.stringify({ op: 'stop' })}\n`);
    rmSync(this.specDir, { recursive: true, force: true });
  }
}

/** Sums the generators' stats of one window. */
function merge(all: DevicesStats[], latencies: { p50: number; p99: number; max: number }): DevicesStats {
  return {
    connected: all.reduce((a, s) => a + s.connected, 0),
    sent: all.reduce((a, s) => a + s.sent, 0),
    acked: all.reduce((a, s) => a + s.acked, 0),
    overdue: all.reduce((a, s) => a + s.overdue, 0),
    dropped: all.reduce((a, s) => a + s.dropped, 0),
    p50Ms: latencies.p50,
    p99Ms: latencies.p99,
    maxMs: latencies.max,
    errors: all.flatMap((s) => s.errors),
  };
}

const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
const ms = (n: number) => (Number.isFinite(n) ? (n >= 100 ? `${Math.round(n)} ms` : `${n.toFixed(1)} ms`) : '-');

async function main(): Promise<number> {
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  const max = steps.at(-1)!;
  console.log(`fleet-per-gateway bench: ${machine()}`);
  console.log(`devices: one SenML record at QoS 1 every ${periodSeconds} s each, one subscription each; ${generatorCount} generator processes; ${channelCount} channels; ${holdSeconds} s measured per step`);
  const mqttPort = await freePort();
  const env = cliEnv(dataFolder(), {
    FLEETWIRE_MQTT_PORT: String(mqttPort), FLEETWIRE_ADMIN_EMAIL: admin.email, FLEETWIRE_ADMIN_PASSWORD: admin.password,
    FLEETWIRE_SECRET_KEY: 'b'.repeat(64), FLEETWIRE_MQTT_MAX_CONNECT_RATE: '0',
  });
  let server: Server = await startCli(env, { built: true });
  const limit = server.logs.find((l) => typeof l.maxConnections === 'number');
  const { token } = await login(server.api, admin.email, admin.password);
  const org = (await call<{ id: string }>(server.api, 'POST', '/orgs', { token, body: { name: 'gateway' } })).body.id;
  const channels: string[] = [];
  for (let i = 0; i < channelCount; i++) channels.push((await call<{ id: string }>(server.api, 'POST', `/orgs/${org}/channels`, { token, body: { name: `site-${i}` } })).body.id);
  const made: DevicesSpec['devices'] = [];
  const t0 = performance.now();
  for (let i = 0; i < max; i += 1000) {
    const batch = Array.from({ length: Math.min(1000, max - i) }, (_, k) => ({ name: `sensor-${i + k}` }));
    const r = await call<{ devices: { id: string; secret: string }[] }>(server.api, 'POST', `/orgs/${org}/devices/bulk`, { token, body: { devices: batch } });
    if (r.status !== 201 && r.status !== 200) throw new Error(`bulk create: ${r.status} ${JSON.stringify(r.body)}`);
    for (const [c, channel] of channels.entries()) {
      const ids = r.body.devices.filter((_, k) => (i + k) % channelCount === c).map((d) => d.id);
      if (ids.length) await call(server.api, 'POST', `/orgs/${org}/connections`, { token, body: { device_ids: ids, channel_ids: [channel], types: ['publish', 'subscribe'] } });
    }
    r.body.devices.forEach((d, k) => made.push({ id: d.id, secret: d.secret, channel: channels[(i + k) % channelCount]! }));
  }
  console.log(`made ${fmt(max)} devices through the API in ${((performance.now() - t0) / 1000).toFixed(1)} s${limit ? `; the server's MQTT connection limit: ${fmt(limit.maxConnections as number)} (open-files limit ${String(limit.openFileLimit)})` : ''}`);

  const generators: Generator[] = [];
  for (let g = 0; g < generatorCount; g++) {
    const share = made.filter((_, i) => i % generatorCount === g);
    generators.push(new Generator({ port: mqttPort, localAddress: `127.0.1.${g + 1}`, periodMs: periodSeconds * 1000, concurrency: 200, devices: share }, mkdtempSync(join(tmpdir(), 'fw-gateway-'))));
  }
  await Promise.all(generators.map((g) => g.ask(undefined))); // ready
  // the server with its devices made and none connected: what connections add is measured against it
  await new Promise((r) => setTimeout(r, 2000));
  const rssBase = rssMb(server.child.pid);
  console.log(`server RSS with no device connected: ${rssBase.toFixed(0)} MB\n`);

  const storedBefore = await storedSenml(server.api);
  const rows: string[][] = [];
  let largestPassed = 0;
  let previous = 0;
  // every PUBACK the generators counted since the start: a PUBACK follows the commit, so the stored
  // counter read after them is at least this
  let ackedSoFar = 0;
  const windowStats = async (): Promise<DevicesStats> => {
    const all = await Promise.all(generators.map((g) => g.ask<DevicesStats>({ op: 'stats' })));
    ackedSoFar += all.reduce((a, s) => a + s.acked, 0);
    // p50/p99 over all devices: the larger of the generators' (each has half the fleet, spread evenly)
    return merge(all, { p50: Math.max(...all.map((s) => s.p50Ms)), p99: Math.max(...all.map((s) => s.p99Ms)), max: Math.max(...all.map((s) => s.maxMs)) });
  };
  for (const n of steps) {
    const add = n - previous;
    const perGenerator = generators.map((_, g) => Math.floor(add / generatorCount) + (g < add % generatorCount ? 1 : 0));
    const connects = await Promise.all(generators.map((g, i) => g.ask<{ seconds: number; failed: number }>({ op: 'connect', count: perGenerator[i] })));
    previous = n;
    const connectSeconds = Math.max(...connects.map((c) => c.seconds));
    const failed = connects.reduce((a, c) => a + c.failed, 0);
    // one period to settle into the rhythm, then the measured window
    await new Promise((r) => setTimeout(r, periodSeconds * 1000));
    await windowStats();
    const stored0 = await storedSenml(server.api);
    const cpu0 = procTicks(server.child.pid)!;
    const w0 = performance.now();
    await new Promise((r) => setTimeout(r, holdSeconds * 1000));
    const s = await windowStats();
    const seconds = (performance.now() - w0) / 1000;
    const cpu = ((procTicks(server.child.pid)! - cpu0) / 100 / seconds) * 100;
    const rss = rssMb(server.child.pid);
    const storedNow = await storedSenml(server.api);
    const stored = storedNow - stored0;
    // every message acknowledged so far was stored
    const allStored = storedNow - storedBefore >= ackedSoFar;
    const passed = s.connected === n && failed === 0 && s.p99Ms <= targetP99Ms && s.overdue === 0 && allStored;
    if (passed) largestPassed = n;
    rows.push([
      fmt(n), fmt(s.connected), `${connectSeconds.toFixed(1)} s (${fmt(add / connectSeconds)}/s)`, fmt(s.acked / seconds), fmt(stored / seconds),
      `${ms(s.p50Ms)} / ${ms(s.p99Ms)} / ${ms(s.maxMs)}`, fmt(s.overdue), `${cpu.toFixed(0)} %`, `${rss.toFixed(0)} MB`, `${(((rss - rssBase) * 1024) / Math.max(1, s.connected)).toFixed(1)} KB`, passed ? 'yes' : 'NO',
    ]);
    console.log(`  ${fmt(n)} devices: ${fmt(s.connected)} connected, p99 ${ms(s.p99Ms)}, CPU ${cpu.toFixed(0)} %, RSS ${rss.toFixed(0)} MB${failed ? `, ${fmt(failed)} failed to connect` : ''}${allStored ? '' : `, ${fmt(ackedSoFar - (storedNow - storedBefore))} acknowledged but not stored`}${s.errors.length ? ` (${s.errors.join('; ')})` : ''}`);
    if (!passed) break;
  }
  console.log('\nper step (the measured window)');
  console.log(table(['devices', 'connected', 'connected in', 'PUBACKs/s', 'stored/s', 'PUBACK p50 / p99 / max', 'overdue', 'server CPU', 'server RSS', 'RSS per device', 'passed'], rows));
  console.log('server CPU: all its threads, share of one core (the machine has two); RSS per device: over the server with no device connected.');

  // the reconnect storm: a restart, then every device at once
  const all = previous;
  await server.stop();
  const restarted = performance.now();
  server = await startCli(env, { built: true });
  const up = (performance.now() - restarted) / 1000;
  const storm0 = performance.now();
  const back = await Promise.all(generators.map((g) => g.ask<{ seconds: number; failed: number }>({ op: 'reconnect' })));
  const stormSeconds = (performance.now() - storm0) / 1000;
  const stormFailed = back.reduce((a, c) => a + c.failed, 0);
  await new Promise((r) => setTimeout(r, periodSeconds * 1000));
  await windowStats();
  await new Promise((r) => setTimeout(r, periodSeconds * 1000));
  const after = await windowStats();
  console.log(`\nreconnect storm: the server restarted in ${up.toFixed(1)} s; ${fmt(all - stormFailed)} of ${fmt(all)} devices connected and subscribed again within ${stormSeconds.toFixed(1)} s of it (${fmt(all / stormSeconds)}/s, authorization cache cold)${stormFailed ? `; ${fmt(stormFailed)} failed` : ''}; a period later: ${fmt(after.connected)} connected, PUBACK p99 ${ms(after.p99Ms)}`);

  for (const g of generators) g.stop();
  await server.stop();
  const goal = 100_000;
  console.log(`\nlargest fleet served with every message stored and PUBACK p99 ≤ 1 s: ${fmt(largestPassed)} devices (goal ≥ ${fmt(goal)}: ${largestPassed >= goal ? 'met' : 'MISSED'})`);
  return largestPassed >= goal ? 0 : 1;
}

runBench(main, children, cleanupCli);
