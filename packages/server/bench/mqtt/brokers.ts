// What the MQTT benches share (bench/mqtt/run.ts, bench/subscriptions/run.ts): brokers started in
// processes of their own on free ports, and the load generator (bench/mqtt/load.ts) run in another.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stopChild } from '../../test/helpers/cli.js';
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
