// MQTT broker bench: Fleetwire's broker side by side with Mosquitto (installed on the machine) and
// aedes (a dev dependency), each in its own process, load from another process (bench/mqtt/load.ts).
//
//   npm run bench:mqtt -- --seconds 2     (or: npx tsx bench/mqtt/run.ts --seconds 2 --connections 10000)
//
// Every throughput case runs on four brokers in the same run, with the same generator:
// - Mosquitto and aedes, anonymous, routing only;
// - Fleetwire's open listener (anonymous, routed in the broker, nothing stored): the routing core;
// - Fleetwire's device listener, the path a fleet runs: every client a device with its id and
//   secret, connected to the channel; every message goes through the messaging service, is stored
//   by the writer (on its thread, SQLite) and bridged; a QoS 1 PUBACK waits until it is stored.
//   16 B and 256 B payloads go to a channel of binary payloads, the SenML pack to a SenML channel.
// The idle-connection case uses the device listener. bench/README.md says how the generator counts.
//
//   [--scenarios p2p,fan-in,fan-out] [--qos 0,1] [--payloads 16,256,senml] [--brokers mosquitto,aedes,open,devices]
//   [--seconds 2] [--connections 10000 | --no-idle] [--profile DIR]
import { execFileSync, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanupCli, cliEnv, dataFolder, spawnCli, stopChild } from '../../test/helpers/cli.js';
import { machine, numberOption, rssMb, table, runBench, writerDrained } from '../harness.js';
import { children, freePort, holdIdle, root, runLoad, startFleetwireDevices, startMosquitto, track, waitForPort, type Broker, type DeviceSetup } from './brokers.js';
import type { LoadResult, LoadSpec } from './load.js';

const here = dirname(fileURLToPath(import.meta.url));
const seconds = numberOption('seconds', 'FLEETWIRE_BENCH_SECONDS', 2);
const idleConnections = numberOption('connections', 'FLEETWIRE_BENCH_CONNECTIONS', 10_000);

/** A comma-separated option's values, each one of `allowed`; all of them when the option is absent. */
function listOption<T extends string>(name: string, allowed: readonly T[]): T[] {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return [...allowed];
  const values = (process.argv[i + 1] ?? '').split(',').filter(Boolean);
  for (const v of values) if (!allowed.includes(v as T)) throw new Error(`--${name} takes ${allowed.join(', ')}; got ${v}`);
  return values as T[];
}
const scenarios = listOption('scenarios', ['p2p', 'fan-in', 'fan-out'] as const);
const qosLevels = listOption('qos', ['0', '1'] as const).map(Number) as (0 | 1)[];
const payloads = listOption('payloads', ['16', '256', 'senml'] as const).map((p) => (p === 'senml' ? 'senml' : Number(p))) as (number | 'senml')[];
const brokerKinds = listOption('brokers', ['mosquitto', 'aedes', 'open', 'devices'] as const);
const withIdle = !process.argv.includes('--no-idle');
/** --profile DIR: CPU profiles of Fleetwire's processes (every thread a file) into DIR. */
const profileDir = process.argv.includes('--profile') ? process.argv[process.argv.indexOf('--profile') + 1]! : undefined;
const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
const payloadName = (p: number | 'senml') => (p === 'senml' ? 'SenML 1 record (37 B)' : `${p} B`);

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
  const c = track(spawnCli(['start'], cliEnv(dataFolder(), { FLEETWIRE_MQTT_PORT: 'off', FLEETWIRE_MQTT_OPEN_PORT: String(port), FLEETWIRE_LOG_LEVEL: 'error' }), { built: true, nodeArgs }));
  c.stdout!.resume();
  c.stderr!.resume();
  await waitForPort(port, c);
  return { name: 'Fleetwire', port, pid: c.pid, stop: async () => void (await stopChild(c, 10_000)) };
}

/** Holds `n` idle connections open, then reports the broker's memory and the connect rate. */
async function idle(broker: Broker, n: number, credentials?: DeviceSetup['credentials']): Promise<{ connectRate: number; connected: number; rssBefore: number; rssAfter: number }> {
  const rssBefore = rssMb(broker.pid);
  const load = await holdIdle(broker.port, n, credentials);
  await new Promise((res) => setTimeout(res, 1000));
  const rssAfter = rssMb(broker.pid);
  await load.release();
  return { connectRate: load.connectRate, connected: load.connected, rssBefore, rssAfter };
}

const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
const ms = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)} ms` : '-');

/** A broker of the run and how the generator reaches it for a case. */
interface Contender {
  name: string;
  broker: Broker;
  restart?: () => Promise<Broker>;
  spec(scenario: LoadSpec['scenario'], payload: number | 'senml'): Pick<LoadSpec, 'topic' | 'credentials'>;
  /** After a case: waits until what the broker took is done with (Fleetwire devices: stored); seconds it took. */
  settle?: () => Promise<number>;
}

const ratioText = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? '-' : b > 0 ? `${(a / b).toFixed(2)}×` : 'failed');

async function main(): Promise<number> {
  // Fleetwire runs as `npm start` runs it: the compiled build
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  if (process.argv.includes('--idle-only')) return idleOnly();
  console.log(`MQTT broker bench: ${machine()}`);
  console.log(`load generator: raw MQTT 3.1.1 clients in another process (bench/README.md); 1 s warm-up, then ${seconds} s per case`);
  const contenders: Contender[] = [];
  const anonymous = (scenario: string) => ({ topic: `bench/${scenario}` });
  if (brokerKinds.includes('mosquitto')) contenders.push({ name: 'Mosquitto', broker: await startMosquitto(), spec: anonymous });
  if (brokerKinds.includes('aedes')) contenders.push({ name: 'aedes', broker: await startAedes(), restart: startAedes, spec: anonymous });
  if (brokerKinds.includes('open')) contenders.push({ name: 'Fleetwire open', broker: await startFleetwireOpen(), spec: anonymous });
  if (brokerKinds.includes('devices')) {
    const d = await startFleetwireDevices(20, { nodeArgs });
    contenders.push({
      name: 'Fleetwire devices', broker: d.broker, settle: () => writerDrained(d.api),
      spec: (scenario, payload) => ({ topic: `${payload === 'senml' ? d.senmlTopic : d.topic}/${scenario}`, credentials: d.credentials }),
    });
  }
  const run = async (c: Contender, spec: Omit<LoadSpec, 'port' | 'topic'>): Promise<LoadResult> => {
    if (c.broker.alive && !c.broker.alive() && c.restart) {
      console.log(`  restarting ${c.name}`);
      c.broker = await c.restart();
    }
    const r = await runLoad({ ...spec, port: c.broker.port, ...c.spec(spec.scenario, spec.payload) });
    // the next case starts with no backlog of this one
    const drain = await c.settle?.();
    if (drain !== undefined && drain > 0.5) lagNotes.push(`${c.name}, ${spec.scenario} QoS ${spec.qos} ${payloadName(spec.payload)}${spec.rate ? ` at ${fmt(spec.rate)}/s` : ''}: the writer stored the last of it ${drain.toFixed(1)} s after the load stopped`);
    return r;
  };
  const lagNotes: string[] = [];
  const names = contenders.map((c) => c.name);
  const has = (n: string) => names.includes(n);
  const ratioColumns: [string, string, string][] = [];
  if (has('Fleetwire open') && has('Mosquitto')) ratioColumns.push(['open / Mosquitto', 'Fleetwire open', 'Mosquitto']);
  if (has('Fleetwire devices') && has('Mosquitto')) ratioColumns.push(['devices / Mosquitto', 'Fleetwire devices', 'Mosquitto']);
  if (has('Fleetwire open') && has('aedes')) ratioColumns.push(['open / aedes', 'Fleetwire open', 'aedes']);
  if (has('Fleetwire devices') && has('aedes')) ratioColumns.push(['devices / aedes', 'Fleetwire devices', 'aedes']);

  const rows: string[][] = [];
  const results = new Map<string, Map<string, LoadResult>>();
  for (const scenario of scenarios) for (const qos of qosLevels) for (const payload of payloads) {
    const key = `${scenario} QoS ${qos} ${payloadName(payload)}`;
    const byBroker = new Map<string, LoadResult>();
    for (const c of contenders) {
      const r = await run(c, { scenario, qos, payload, seconds, rate: 0 });
      byBroker.set(c.name, r);
      if (r.errors.length) console.log(`  ${c.name} ${key}: ${r.errors.join('; ')}`);
    }
    const rate = (n: string) => byBroker.get(n)?.rate;
    rows.push([key, ...contenders.map((c) => { const r = byBroker.get(c.name)!; return `${fmt(r.rate)} (${ms(r.p50Ms)} / ${ms(r.p99Ms)})`; }), ...ratioColumns.map(([, a, b]) => ratioText(rate(a), rate(b)))]);
    results.set(key, byBroker);
  }
  console.log('\nmessages/s received (p50 / p99 latency), as fast as each broker takes them');
  console.log(table(['case', ...names, ...ratioColumns.map(([n]) => n)], rows));

  const latencyRows: string[][] = [];
  const p99At10k = new Map<string, number>();
  for (const payload of payloads.filter((p) => p !== 256)) {
    for (const c of contenders) {
      const r = await run(c, { scenario: 'p2p', qos: 0, payload, seconds, rate: 10_000 });
      latencyRows.push([c.name, payloadName(payload), fmt(r.rate), ms(r.p50Ms), ms(r.p99Ms)]);
      p99At10k.set(`${c.name} ${payload}`, Math.max(p99At10k.get(`${c.name} ${payload}`) ?? 0, r.p99Ms));
    }
  }
  console.log('\nlatency at 10,000 messages/s offered (p2p, QoS 0)');
  console.log(table(['broker', 'payload', 'messages/s', 'p50', 'p99'], latencyRows));
  if (lagNotes.length) console.log(`\nreceived/s counts live delivery; storage lagged behind it in these cases:\n  ${lagNotes.join('\n  ')}`);

  let idleOk = true;
  if (withIdle) {
    const idleRows: string[][] = [];
    const mosq = contenders.find((c) => c.name === 'Mosquitto')?.broker;
    if (mosq) {
      const mi = await idle(mosq, idleConnections);
      idleRows.push(['Mosquitto (anonymous)', fmt(mi.connected), fmt(mi.connectRate), `${mi.rssBefore.toFixed(0)} → ${mi.rssAfter.toFixed(0)} MB`]);
    }
    for (const c of contenders) await c.broker.stop();
    const many = await startFleetwireDevices(idleConnections, { nodeArgs });
    const fi = await idle(many.broker, idleConnections, many.credentials);
    idleRows.push(['Fleetwire (device id + secret)', fmt(fi.connected), fmt(fi.connectRate), `${fi.rssBefore.toFixed(0)} → ${fi.rssAfter.toFixed(0)} MB`]);
    await many.broker.stop();
    console.log(`\n${idleConnections.toLocaleString('en-US')} idle connections`);
    console.log(table(['broker', 'connected', 'connects/s', 'broker RSS before → after'], idleRows));
    idleOk = fi.rssAfter <= 250 && fi.connectRate >= 2000;
    console.log(`idle: ${fi.rssAfter.toFixed(0)} MB (≤ 250 MB: ${fi.rssAfter <= 250 ? 'met' : 'MISSED'}), ${fmt(fi.connectRate)} connects/s (≥ 2,000: ${fi.connectRate >= 2000 ? 'met' : 'MISSED'})`);
  } else {
    for (const c of contenders) await c.broker.stop();
  }

  // targets, over the cases this run had
  const keys = [...results.keys()];
  const share = (a: string, b: string) => keys.map((k) => (results.get(k)!.get(a)?.rate ?? NaN) / (results.get(k)!.get(b)?.rate ?? NaN));
  const verdicts: boolean[] = [idleOk];
  const target = (label: string, values: number[], min: number) => {
    if (values.some(Number.isNaN)) return;
    const met = values.filter((r) => r >= min).length;
    verdicts.push(met === values.length);
    console.log(`target: ${label} ≥ ${min}× in ${met}/${values.length} cases${met === values.length ? '' : ' (MISSED)'}`);
  };
  console.log('');
  target('Fleetwire open / aedes', share('Fleetwire open', 'aedes'), 1.5);
  target('Fleetwire open / Mosquitto', share('Fleetwire open', 'Mosquitto'), 0.8);
  target('Fleetwire devices / Mosquitto', share('Fleetwire devices', 'Mosquitto'), 0.7);
  for (const [k, p99] of p99At10k) {
    if (!k.startsWith('Fleetwire')) continue;
    verdicts.push(p99 <= 5);
    console.log(`target: ${k.replace(/ (\d+|senml)$/, (_, p: string) => `, ${payloadName(p === 'senml' ? 'senml' : Number(p))}`)}: p99 at 10k msgs/s ${ms(p99)} (≤ 5 ms: ${p99 <= 5 ? 'met' : 'MISSED'})`);
  }
  return verdicts.every(Boolean) ? 0 : 1;
}

/** Only the idle-connection case (`--idle-only`). */
async function idleOnly(): Promise<number> {
  console.log(`MQTT idle connections: ${machine()}`);
  const mosq = await startMosquitto();
  const mi = await idle(mosq, idleConnections);
  await mosq.stop();
  const devices = await startFleetwireDevices(idleConnections, { nodeArgs });
  const fi = await idle(devices.broker, idleConnections, devices.credentials);
  await devices.broker.stop();
  console.log(table(['broker', 'connected', 'connects/s', 'broker RSS before → after'], [
    ['Mosquitto (anonymous)', fmt(mi.connected), fmt(mi.connectRate), `${mi.rssBefore.toFixed(0)} → ${mi.rssAfter.toFixed(0)} MB`],
    ['Fleetwire (device id + secret)', fmt(fi.connected), fmt(fi.connectRate), `${fi.rssBefore.toFixed(0)} → ${fi.rssAfter.toFixed(0)} MB`],
  ]));
  return fi.rssAfter <= 250 && fi.connectRate >= 2000 ? 0 : 1;
}

runBench(main, children, cleanupCli);
