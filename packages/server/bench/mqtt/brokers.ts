// What the MQTT benches share (bench/mqtt/run.ts, bench/subscriptions/run.ts): brokers started in
// processes of their own on free ports, and the load generator (bench/mqtt/load.ts) run in another.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { call, cliEnv, dataFolder, login, startCli, stopChild, type Server } from '../../test/helpers/cli.js';
import type { LoadResult, LoadSpec } from './load.js';

const here = dirname(fileURLToPath(import.meta.url));
/** packages/server */
export const root = join(here, '..', '..');

/** Processes a bench started, killed hard if it crashes (runBench). */
export const children = new Set<ChildProcess>();

export function track(c: ChildProcess): ChildProcess {
  children.add(c);
  c.once('exit', () => children.delete(c));
  return c;
}

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

export async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`broker exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on ${port}`);
}

export interface Broker {
  name: string;
  port: number;
  pid: number | undefined;
  stop(): Promise<void>;
  /** Whether the process still runs (aedes has been seen to die under fan-in load). */
  alive?: () => boolean;
}

/** Mosquitto (/usr/sbin/mosquitto) on a free port, anonymous, without persistence. */
export async function startMosquitto(): Promise<Broker> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'fw-bench-mosquitto-'));
  writeFileSync(join(dir, 'm.conf'), `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_type error\n`);
  const c = track(spawn('mosquitto', ['-c', join(dir, 'm.conf')], { stdio: 'ignore' }));
  await waitForPort(port, c);
  return { name: 'Mosquitto', port, pid: c.pid, stop: async () => (await stopChild(c, 10_000), rmSync(dir, { recursive: true, force: true })) };
}

/** One run of the load generator: its result line. */
export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const c = track(spawn(process.execPath, ['--import', 'tsx', join(here, 'load.ts'), JSON.stringify(spec)], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] }));
    createInterface({ input: c.stdout! }).once('line', (line) => resolve(JSON.parse(line) as LoadResult));
    c.once('exit', (code) => code !== 0 && reject(new Error(`load generator exited with ${code}`)));
  });
}

export interface DeviceSetup {
  broker: Broker;
  /** The HTTP API's origin (metrics). */
  api: string;
  /** The server process and its log lines. */
  server: Server;
  /** Topic prefix of the channel of binary payloads and of the SenML channel. */
  topic: string;
  senmlTopic: string;
  credentials: { username: string; password: string }[];
}

/**
 * Fleetwire (the compiled build) with its device listener, `devices` devices connected to two
 * channels (binary payloads, SenML) for publish and subscribe. `env`: settings on top of the
 * bench's; `nodeArgs`: options for the server's node (profiling, the inspector).
 */
export async function startFleetwireDevices(devices: number, options: { env?: Record<string, string>; nodeArgs?: string[] } = {}): Promise<DeviceSetup> {
  const mqttPort = await freePort();
  const server = await startCli(cliEnv(dataFolder(), { FLEETWIRE_MQTT_PORT: String(mqttPort), FLEETWIRE_ADMIN_EMAIL: 'bench@example.com', FLEETWIRE_ADMIN_PASSWORD: 'bench-password-1', FLEETWIRE_SECRET_KEY: 'a'.repeat(64), FLEETWIRE_MQTT_MAX_CONNECT_RATE: '0', ...options.env }), { built: true, nodeArgs: options.nodeArgs ?? [] });
  const { token } = await login(server.api, 'bench@example.com', 'bench-password-1');
  const org = (await call<{ id: string }>(server.api, 'POST', '/orgs', { token, body: { name: 'bench' } })).body.id;
  const channel = (await call<{ id: string }>(server.api, 'POST', `/orgs/${org}/channels`, { token, body: { name: 'bench', content_type: 'application/octet-stream' } })).body.id;
  const senml = (await call<{ id: string }>(server.api, 'POST', `/orgs/${org}/channels`, { token, body: { name: 'bench-senml' } })).body.id;
  const credentials: DeviceSetup['credentials'] = [];
  for (let i = 0; i < devices; i += 1000) {
    const batch = Array.from({ length: Math.min(1000, devices - i) }, (_, k) => ({ name: `d${i + k}` }));
    const made = await call<{ devices: { id: string; secret: string }[] }>(server.api, 'POST', `/orgs/${org}/devices/bulk`, { token, body: { devices: batch } });
    const ids = made.body.devices.map((d) => d.id);
    await call(server.api, 'POST', `/orgs/${org}/connections`, { token, body: { device_ids: ids, channel_ids: [channel, senml], types: ['publish', 'subscribe'] } });
    for (const d of made.body.devices) credentials.push({ username: d.id, password: d.secret });
  }
  return {
    broker: { name: 'Fleetwire devices', port: mqttPort, pid: server.child.pid, stop: async () => void (await server.stop()) },
    api: server.api,
    server,
    topic: `channels/${channel}/messages`,
    senmlTopic: `channels/${senml}/messages`,
    credentials,
  };
}

/** A load generator holding `n` idle connections (the `connect` scenario) until `release` is called. */
export interface IdleLoad {
  connectRate: number;
  connected: number;
  errors: string[];
  /** Closes the connections and waits for the generator to exit. */
  release(): Promise<void>;
}

/** Opens `n` connections to `port` from a generator process of its own (with `credentials`, round-robin) and keeps them open. */
export async function holdIdle(port: number, n: number, credentials?: DeviceSetup['credentials']): Promise<IdleLoad> {
  const spec: LoadSpec = { port, scenario: 'connect', qos: 0, payload: 0, seconds: 0, rate: 0, topic: '', connections: n, ...(credentials ? { credentials } : {}) };
  // a file, not an argument: 10,000 credentials do not fit in an argument list
  const specDir = mkdtempSync(join(tmpdir(), 'fw-bench-load-'));
  writeFileSync(join(specDir, 'spec.json'), JSON.stringify(spec));
  const c = track(spawn(process.execPath, ['--import', 'tsx', join(here, 'load.ts'), `@${join(specDir, 'spec.json')}`], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] }));
  const exited = new Promise((r) => c.once('exit', r));
  c.once('exit', () => rmSync(specDir, { recursive: true, force: true }));
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: c.stdout! }).once('line', resolve);
    c.once('exit', (code) => reject(new Error(`load generator exited with ${code}`)));
  });
  const r = JSON.parse(line) as LoadResult;
  return {
    connectRate: r.connectRate ?? 0,
    connected: r.connected ?? 0,
    errors: r.errors,
    release: async () => {
      c.stdin!.write('done\n');
      await exited;
    },
  };
}
