// The processes bench/http-publish starts: Fleetwire as an operator runs it (`fleetwire start`, its
// own environment and data folder; spawned with the test helpers), the bare reference server, and
// what each one costs in CPU. Every process started here is tracked and killed by stopAll().
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { cleanupCli, cliEnv, dataFolder, exitOf, spawnCli, stopChild } from '../../test/helpers/cli.js';

const here = dirname(fileURLToPath(import.meta.url));
const started = new Set<ChildProcess>();

/** User + system CPU of a process (or of one of its threads: the main thread's id is the pid) so far, in ticks of 1/100 s (Linux /proc); undefined elsewhere or once it is gone. */
export function procTicks(pid: number | undefined, thread?: number): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8');
    // after "pid (command) ": state is field 3, utime field 14 and stime field 15
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

/** A log line a server wrote at warn level or above (pino levels: 40 warn, 50 error, 60 fatal). */
export interface Complaint {
  level: number;
  msg: string;
  line: string;
}

export interface RunningServer {
  url: string;
  pid: number | undefined;
  /** Warnings and errors the server logged so far. */
  complaints: Complaint[];
  /** Lines of log it wrote. */
  lines(): number;
  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`; resolves to the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

function track(child: ChildProcess): ChildProcess {
  started.add(child);
  child.once('exit', () => started.delete(child));
  return child;
}

/** Kills whatever this module started and is still running, and removes the data folders. */
export async function stopAll(): Promise<void> {
  for (const child of started) child.kill('SIGKILL');
  await Promise.all([...started].map(exitOf));
  await cleanupCli();
}

/** A port nobody listens on right now (for a server whose log level hides the line that says where it listens). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Reads a server's JSON log: every line counted, warnings and errors kept, the rest not parsed (at info level there are two per request). */
function watchLog(child: ChildProcess, onLine?: (entry: { msg: string; [k: string]: unknown }) => void): { complaints: Complaint[]; lines: () => number } {
  const complaints: Complaint[] = [];
  let lines = 0;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines++;
    const complaint = /"level":(4|5|6)0\b/.test(line);
    if (!complaint && !onLine) return;
    let entry: { msg: string; level?: number };
    try {
      entry = JSON.parse(line) as { msg: string; level?: number };
    } catch {
      complaints.push({ level: 50, msg: 'a line that is not a JSON log', line });
      return;
    }
    if (complaint) complaints.push({ level: entry.level ?? 0, msg: entry.msg, line });
    onLine?.(entry);
  });
  return { complaints, lines: () => lines };
}

async function waitForHealth(url: string, child: ChildProcess, stderr: () => string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`fleetwire start exited with ${child.exitCode} before it answered: ${stderr()}`);
    try {
      if ((await fetch(`${url}/health`)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`fleetwire start did not answer on ${url} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface FleetwireOptions {
  logLevel: 'info' | 'warn';
  /** Empty: SQLite in the data folder. */
  databaseUrl?: string;
  admin: { email: string; password: string };
  /** More FLEETWIRE_* settings, e.g. FLEETWIRE_WRITER_THREAD. */
  settings?: Record<string, string>;
  /** Node.js options for the server, e.g. `--cpu-prof --cpu-prof-dir=…` to profile it. */
  nodeArgs?: string[];
}

/**
 * `fleetwire start` with a fresh data folder. At info level the port comes from the
 * 'HTTP API listening' line; at warn level, which hides it, the bench picks a free port first.
 */
export async function startFleetwire(o: FleetwireOptions): Promise<RunningServer> {
  const port = o.logLevel === 'info' ? 0 : await freePort();
  const env = cliEnv(dataFolder(), {
    FLEETWIRE_LOG_LEVEL: o.logLevel,
    FLEETWIRE_HTTP_PORT: String(port),
    FLEETWIRE_ADMIN_EMAIL: o.admin.email,
    FLEETWIRE_ADMIN_PASSWORD: o.admin.password,
    // a key of its own, so the server does not warn that it generated one into the data folder
    FLEETWIRE_SECRET_KEY: randomBytes(32).toString('hex'),
    ...(o.databaseUrl ? { FLEETWIRE_DATABASE_URL: o.databaseUrl } : {}),
    ...o.settings,
  });
  const child = track(spawnCli(['start'], env, { built: true, nodeArgs: o.nodeArgs ?? [] }));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let listening: ((port: number) => void) | undefined;
  const announced = new Promise<number>((resolve) => (listening = resolve));
  const log = watchLog(child, o.logLevel === 'info' ? (e) => e.msg === 'HTTP API listening' && listening!(e.port as number) : undefined);
  let url: string;
  try {
    if (o.logLevel === 'info') {
      const exited = exitOf(child).then((code) => {
        throw new Error(`fleetwire start exited with ${code} before listening: ${stderr}`);
      });
      url = `http://127.0.0.1:${await Promise.race([announced, exited])}`;
    } else {
      url = `http://127.0.0.1:${port}`;
      await waitForHealth(url, child, () => stderr);
    }
  } catch (e) {
    await stopChild(child, 1000);
    throw e;
  }
  return { url, pid: child.pid, complaints: log.complaints, lines: log.lines, stop: (graceMs = 30_000) => stopChild(child, graceMs) };
}

/** The bare Fastify reference (bare-server.ts) in a process of its own. */
export async function startBare(nodeArgs: string[] = []): Promise<RunningServer> {
  const child = track(spawn(process.execPath, [...nodeArgs, '--import', 'tsx', join(here, 'bare-server.ts')], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve((JSON.parse(line) as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`the bare server exited with ${code}: ${stderr}`)));
  });
  return { url: `http://127.0.0.1:${port}`, pid: child.pid, complaints: [], lines: () => 0, stop: (graceMs = 5000) => stopChild(child, graceMs) };
}

/** Spawns a bench script (TypeScript, through tsx) in its own process. */
export function spawnScript(file: string, args: string[]): ChildProcess {
  return track(spawn(process.execPath, ['--import', 'tsx', join(here, file), ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
}
