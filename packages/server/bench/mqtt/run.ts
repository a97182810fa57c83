// MQTT broker bench: Fleetwire's broker side by side with Mosquitto (installed on the machine) and
// aedes (a dev dependency), each in its own process, load from another process (bench/mqtt/load.ts).
//
//   npm run bench -- --seconds 2          (or: npx tsx bench/mqtt/run.ts --seconds 2 --connections 10000)
//
// Throughput cases use Fleetwire's open listener (anonymous, routed in the broker), as Mosquitto
// and aedes are used. The idle-connection case uses the device listener: every connection is
// authenticated with a device id and secret.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { call, cleanupCli, cliEnv, dataFolder, login, spawnCli, startCli, stopChild } from '../../test/helpers/cli.js';
import { machine, numberOption, table, runBench } from '../harness.js';
import { children, freePort, root, runLoad, startMosquitto, track, waitForPort, type Broker } from './brokers.js';
import type { LoadResult, LoadSpec } from './load.js';

const here = dirname(fileURLToPath(import.meta.url));
const seconds = numberOption('seconds', 'FLEETWIRE_BENCH_SECONDS', 2);
const idleConnections = numberOption('connections', 'FLEETWIRE_BENCH_CONNECTIONS', 10_000);

async function startAedes(): Promise<Broker> {
  const port = await freePort();
  const c = track(spawn(process.execPath, ['--import', 'tsx', join(here, 'aedes-server.ts'), String(port)], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] }));
  let stderr = '';
  c.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  c.once('exit', (code, signal) => code !== 0 && signal !== 'SIGTERM' && console.log(`  aedes exited (${code ?? signal}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
  await waitForPort(port, c);
  return { name: 'aedes', port, pid: c.pid, stop: async () => void (await stopChild(c, 10_000)), alive: () => c.exitCode === null && c.signalCode === null };
}

async function startFleetwireOpen(): Promise<Broker> {
  const port = await freePort();
  const c = track(spawnCli(['start'], cliEnv(dataFolder(), { FLEETWIRE_MQTT_PORT: 'off', FLEETWIRE_MQTT_OPEN_PORT: String(port), FLEETWIRE_LOG_LEVEL: 'error' }), { built: true }));
  c.stdout!.resume();
  c.stderr!.resume();
  await waitForPort(port, c);
  return { name: 'Fleetwire', port, pid: c.pid, stop: async () => void (await stopChild(c, 10_000)) };
}

interface DeviceSetup {
  broker: Broker;
  topic: string;
  credentials: { username: string; password: string }[];
}

/** Fleetwire with its device listener, `devices` devices connected to one channel for publish and subscribe. */
async function startFleetwireDevices(devices: number): Promise<DeviceSetup> {
  const mqttPort = await freePort();
  const server = await startCli(cliEnv(dataFolder(), { FLEETWIRE_MQTT_PORT: String(mqttPort), FLEETWIRE_ADMIN_EMAIL: 'bench@example.com', FLEETWIRE_ADMIN_PASSWORD: 'bench-password-1', FLEETWIRE_SECRET_KEY: 'a'.repeat(64), FLEETWIRE_MQTT_MAX_CONNECT_RATE: '0' }), { built: true });
  const { token } = await login(server.api, 'bench@example.com', 'bench-password-1');
  const org = (await call<{ id: string }>(server.api, 'POST', '/orgs', { token, body: { name: 'bench' } })).body.id;
  const channel = (await call<{ id: string }>(server.api, 'POST', `/orgs/${org}/channels`, { token, body: { name: 'bench' } })).body.id;
  const credentials: DeviceSetup['credentials'] = [];
  for (let i = 0; i < devices; i += 1000) {
    const batch = Array.from({ length: Math.min(1000, devices - i) }, (_, k) => ({ name: `d${i + k}` }));
    const made = await call<{ devices: { id: string; secret: string }[] }>(server.api, 'POST', `/orgs/${org}/devices/bulk`, { token, body: { devices: batch } });
    const ids = made.body.devices.map((d) => d.id);
    await call(server.api, 'POST', `/orgs/${org}/connections`, { token, body: { device_ids: ids, channel_ids: [channel], types: ['publish', 'subscribe'] } });
    for (const d of made.body.devices) credentials.push({ username: d.id, password: d.secret });
  }
  return { broker: { name: 'Fleetwire (devices, stored)', port: mqttPort, pid: server.child.pid, stop: async () => void (await server.stop()) }, topic: `channels/${channel}/messages`, credentials };
}

/** Resident memory of a process, MB (Linux /proc). */
function rssMb(pid: number | undefined): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Holds `n` idle connections open, then reports the broker's memory and the connect rate. */
async function idle(broker: Broker, n: number, credentials?: DeviceSetup['credentials']): Promise<{ connectRate: number; connected: number; rssBefore: number; rssAfter: number }> {
  const rssBefore = rssMb(broker.pid);
  const spec: LoadSpec = { port: broker.port, scenario: 'connect', qos: 0, payload: 0, seconds: 0, rate: 0, topic: '', connections: n, ...(credentials ? { credentials } : {}) };
  const specDir = mkdtempSync(join(tmpdir(), 'fw-bench-load-'));
  writeFileSync(join(specDir, 'spec.json'), JSON.stringify(spec));
  const c = track(spawn(process.execPath, ['--import', 'tsx', join(here, 'load.ts'), `@${join(specDir, 'spec.json')}`], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] }));
  c.once('exit', () => rmSync(specDir, { recursive: true, force: true }));
  const line = await new Promise<string>((r) => createInterface({ input: c.stdout! }).once('line', r));
  const r = JSON.parse(line) as LoadResult;
  await new Promise((res) => setTimeout(res, 1000));
  const rssAfter = rssMb(broker.pid);
  c.stdin!.write('done\n');
  await new Promise((res) => c.once('exit', res));
  return { connectRate: r.connectRate ?? 0, connected: r.connected ?? 0, rssBefore, rssAfter };
}

const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
const ms = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)} ms` : '-');

async function main(): Promise<number> {
  // Fleetwire runs as `npm start` runs it: the compiled build
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  if (process.argv.includes('--idle-only')) return idleOnly();
  console.log(`MQTT broker bench: ${machine()}`);
  console.log(`load generator: raw mqtt-packet clients in another process; 1 s warm-up, then ${seconds} s per case; MQTT 3.1.1`);
  const brokers = [await startMosquitto(), await startAedes(), await startFleetwireOpen()];
  const rows: string[][] = [];
  const results = new Map<string, Map<string, LoadResult>>();
  const cases: { scenario: LoadSpec['scenario']; qos: 0 | 1; payload: number }[] = [];
  for (const scenario of ['p2p', 'fan-in', 'fan-out'] as const) for (const qos of [0, 1] as const) for (const payload of [16, 256]) cases.push({ scenario, qos, payload });
  for (const k of cases) {
    const key = `${k.scenario} QoS ${k.qos} ${k.payload} B`;
    const row = [key];
    const byBroker = new Map<string, LoadResult>();
    for (const [i, b] of brokers.entries()) {
      if (b.alive && !b.alive()) {
        console.log(`  restarting ${b.name}`);
        brokers[i] = await startAedes();
      }
      const r = await runLoad({ port: b.port, scenario: k.scenario, qos: k.qos, payload: k.payload, seconds, rate: 0, topic: `bench/${k.scenario}` });
      byBroker.set(b.name, r);
      row.push(`${fmt(r.rate)} (${ms(r.p50Ms)} / ${ms(r.p99Ms)})`);
      if (r.errors.length) console.log(`  ${b.name} ${key}: ${r.errors.join('; ')}`);
    }
    const fw = byBroker.get('Fleetwire')!.rate;
    const ratio = (other: number) => (other > 0 ? `${(fw / other).toFixed(2)}×` : 'failed');
    row.push(ratio(byBroker.get('aedes')!.rate), ratio(byBroker.get('Mosquitto')!.rate));
    rows.push(row);
    results.set(key, byBroker);
  }
  console.log('\nmessages/s received (p50 / p99 latency)');
  console.log(table(['case', ...brokers.map((b) => b.name), 'Fleetwire / aedes', 'Fleetwire / Mosquitto'], rows));

  const latencyRows: string[][] = [];
  let fleetwireP99 = NaN;
  for (const [i, b] of brokers.entries()) {
    if (b.alive && !b.alive()) brokers[i] = await startAedes();
    const r = await runLoad({ port: brokers[i]!.port, scenario: 'p2p', qos: 0, payload: 16, seconds, rate: 10_000, topic: 'bench/latency' });
    latencyRows.push([b.name, fmt(r.rate), ms(r.p50Ms), ms(r.p99Ms)]);
    if (b.name === 'Fleetwire') fleetwireP99 = r.p99Ms;
  }
  console.log('\nlatency at 10,000 messages/s (p2p, QoS 0, 16 B)');
  console.log(table(['broker', 'messages/s', 'p50', 'p99'], latencyRows));

  const idleRows: string[][] = [];
  const mosq = brokers[0]!;
  const mi = await idle(mosq, idleConnections);
  idleRows.push(['Mosquitto (anonymous)', fmt(mi.connected), fmt(mi.connectRate), `${mi.rssBefore.toFixed(0)} → ${mi.rssAfter.toFixed(0)} MB`]);
  for (const b of brokers) await b.stop();

  const devices = await startFleetwireDevices(idleConnections);
  const fi = await idle(devices.broker, idleConnections, devices.credentials);
  idleRows.push(['Fleetwire (device id + secret)', fmt(fi.connected), fmt(fi.connectRate), `${fi.rssBefore.toFixed(0)} → ${fi.rssAfter.toFixed(0)} MB`]);
  console.log(`\n${idleConnections.toLocaleString('en-US')} idle connections`);
  console.log(table(['broker', 'connected', 'connects/s', 'broker RSS before → after'], idleRows));

  await devices.broker.stop();

  // targets
  const keys = [...results.keys()];
  // a case where aedes failed (0 messages) counts as met: Fleetwire delivered and aedes did not
  const ratioA = keys.map((k) => results.get(k)!.get('Fleetwire')!.rate / results.get(k)!.get('aedes')!.rate);
  const ratioM = keys.map((k) => results.get(k)!.get('Fleetwire')!.rate / results.get(k)!.get('Mosquitto')!.rate);
  const metA = ratioA.filter((r) => r >= 1.5).length;
  const metM = ratioM.filter((r) => r >= 0.8).length;
  console.log(`\ntargets: ≥ 1.5× aedes in ${metA}/${keys.length} cases; ≥ 0.8× Mosquitto in ${metM}/${keys.length} cases; p99 at 10k msgs/s ${ms(fleetwireP99)} (≤ 5 ms: ${fleetwireP99 <= 5 ? 'met' : 'MISSED'}); ${idleConnections} idle device connections ${fi.rssAfter.toFixed(0)} MB (≤ 250 MB: ${fi.rssAfter <= 250 ? 'met' : 'MISSED'}), ${fmt(fi.connectRate)} connects/s (≥ 2,000: ${fi.connectRate >= 2000 ? 'met' : 'MISSED'})`);
  const ok = metA === keys.length && metM === keys.length && fleetwireP99 <= 5 && fi.rssAfter <= 250 && fi.connectRate >= 2000;
  return ok ? 0 : 1;
}

/** Only the idle-connection case (`--idle-only`). */
async function idleOnly(): Promise<number> {
  console.log(`MQTT idle connections: ${machine()}`);
  const mosq = await startMosquitto();
  const mi = await idle(mosq, idleConnections);
  await mosq.stop();
  const devices = await startFleetwireDevices(idleConnections);
  const fi = await idle(devices.broker, idleConnections, devices.credentials);
  await devices.broker.stop();
  console.log(table(['broker', 'connected', 'connects/s', 'broker RSS before → after'], [
    ['Mosquitto (anonymous)', fmt(mi.connected), fmt(mi.connectRate), `${mi.rssBefore.toFixed(0)} → ${mi.rssAfter.toFixed(0)} MB`],
    ['Fleetwire (device id + secret)', fmt(fi.connected), fmt(fi.connectRate), `${fi.rssBefore.toFixed(0)} → ${fi.rssAfter.toFixed(0)} MB`],
  ]));
  return fi.rssAfter <= 250 && fi.connectRate >= 2000 ? 0 : 1;
}

runBench(main, children, cleanupCli);
