// Running `fleetwire` as an operator does: a separate process with its own environment and data folder.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createPostgresDatabase, testDatabaseKind } from './database.js';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const packageVersion = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;

export type LogLine = { msg: string; [key: string]: unknown };

export const running = new Set<ChildProcess>();
const folders: string[] = [];
/** The PostgreSQL pass's database of each data folder (see `withPassDatabase`). */
const databases = new Map<string, ReturnType<typeof createPostgresDatabase>>();

/** Kills every process these helpers started and removes their data folders and databases. */
export async function cleanupCli(): Promise<void> {
  for (const child of running) child.kill('SIGKILL');
  await Promise.all([...running].map(exitOf));
  for (const dir of folders.splice(0)) rmSync(dir, { recursive: true, force: true });
  const made = [...databases.values()];
  databases.clear();
  await Promise.all(made.map(async (db) => (await db).drop()));
}

/**
 * The environment with the database of the test pass: in the PostgreSQL pass, a process started on
 * a data folder gets a fresh PostgreSQL database of that folder's own (processes started on one
 * folder share it, as they share its SQLite file in the SQLite pass), so that runs never collide.
 * An environment that names its database keeps it.
 */
export async function withPassDatabase(env: NodeJS.ProcessEnv): Promise<NodeJS.ProcessEnv> {
  if (testDatabaseKind() !== 'postgres' || env.FLEETWIRE_DATABASE_URL) return env;
  const dir = env.FLEETWIRE_DATA_DIR ?? '';
  let db = databases.get(dir);
  if (!db) databases.set(dir, (db = createPostgresDatabase()));
  return { ...env, FLEETWIRE_DATABASE_URL: (await db).url };
}

export function dataFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwire-cli-'));
  folders.push(dir);
  return dir;
}

/**
 * The parent's environment without any FLEETWIRE_ variable, plus the given settings. Passwords are
 * hashed at a low scrypt cost unless the settings say otherwise (a login is no benchmark's subject).
 */
export function cliEnv(dataDir: string, settings: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FLEETWIRE_')) env[k] = v;
  return { ...env, FLEETWIRE_DATA_DIR: dataDir, FLEETWIRE_HOST: '127.0.0.1', FLEETWIRE_HTTP_PORT: '0', FLEETWIRE_MQTT_PORT: '0', FLEETWIRE_MQTTS_PORT: '0', FLEETWIRE_HTTPS_PORT: '0', FLEETWIRE_COAP_PORT: '0', FLEETWIRE_LOG_LEVEL: 'info', FLEETWIRE_PASSWORD_HASH_COST: '10', ...settings };
}

/** Runs the CLI from the sources (tsx), or with `built` from `dist/` as `npm start` does (benchmarks; run `npm run build` first). */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv, options: { built?: boolean; nodeArgs?: string[] } = {}): ChildProcess {
  // scripts/test.mjs builds dist/ once and sets FLEETWIRE_TEST_CLI_BUILT=1: a process from the build
  // starts in a fraction of the time tsx takes to compile the sources, and it is what users run
  const built = options.built ?? process.env.FLEETWIRE_TEST_CLI_BUILT === '1';
  const entry = built ? ['dist/cli.js'] : ['--import', 'tsx', 'src/cli.ts'];
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...entry, ...args], { cwd: root, env, stdio: ['pipe', 'pipe', 'pipe'] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

export function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/**
 * SIGTERM, then SIGKILL if the process has not exited after `graceMs`; resolves to the exit code.
 * A process that does not stop is killed, and the caller sees a signal (null) instead of a code.
 */
export async function stopChild(child: ChildProcess, graceMs: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  child.kill('SIGTERM');
  const hard = setTimeout(() => child.kill('SIGKILL'), graceMs);
  const code = await exitOf(child);
  clearTimeout(hard);
  return code;
}

/** Runs a command to completion. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv, stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return outcomeOf(spawnCli(args, await withPassDatabase(env)), stdin);
}

/** Writes `stdin` to a started CLI process and collects its output and exit code. */
export async function outcomeOf(child: ChildProcess, stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin!.end(stdin);
  // 'close' comes after the output streams are drained; 'exit' may come before the last output
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  return { code, stdout, stderr };
}

export interface Server {
  api: string;
  logs: LogLine[];
  /** Sends SIGTERM and waits for the exit code (SIGKILL after 20 s). */
  stop(): Promise<number | null>;
  /** The process, e.g. to kill it hard. */
  child: ChildProcess;
}

/** `fleetwire start`, resolved once the JSON log says where the HTTP API listens. */
export async function startCli(env: NodeJS.ProcessEnv, options: { built?: boolean; nodeArgs?: string[] } = {}): Promise<Server> {
  const child = spawnCli(['start'], await withPassDatabase(env), options);
  const logs: LogLine[] = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let entry: LogLine;
      try {
        entry = JSON.parse(line) as LogLine;
      } catch {
        return reject(new Error(`fleetwire start wrote a line that is not a JSON log: ${line}`));
      }
      logs.push(entry);
      if (entry.msg === 'HTTP API listening') resolve(entry.port as number);
    });
    child.once('exit', (code) => reject(new Error(`fleetwire start exited with ${code} before listening: ${stderr}`)));
    const timer = setTimeout(() => reject(new Error(`fleetwire start did not listen within 60 s: ${stderr}`)), 60_000);
    timer.unref();
  });
  return {
    api: `http://127.0.0.1:${port}`,
    logs,
    child,
    stop: () => stopChild(child, 20_000),
  };
}

/** The port a listener announced in the log (`msg` e.g. 'MQTT listening', 'CoAP listening'); waits for the line. */
export async function announcedPort(server: Server, msg: string, timeoutMs = 10_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = server.logs.find((l) => l.msg === msg);
    if (line) return line.port as number;
    if (server.child.exitCode !== null) throw new Error(`fleetwire exited before logging ${JSON.stringify(msg)}`);
    if (Date.now() > deadline) throw new Error(`fleetwire did not log ${JSON.stringify(msg)} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A JSON request to the API; returns the status and the parsed body, typed as the caller expects
 * it. A server that does not answer within 15 s fails the call (and the test) instead of hanging it.
 */
export async function call<T = Record<string, unknown>>(api: string, method: string, path: string, opts: { token?: string; body?: unknown } = {}): Promise<{ status: number; body: T }> {
  const res = await fetch(api + path, {
    method,
    signal: AbortSignal.timeout(15_000),
    headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

export async function login(api: string, email: string, password: string): Promise<{ status: number; token: string }> {
  const res = await call<{ access_token: string }>(api, 'POST', '/auth/token', { body: { email, password } });
  return { status: res.status, token: res.body.access_token };
}

/** An organization with one channel and devices connected to it, made over the HTTP API by the admin who owns it. */
export interface CliFleet {
  /** The admin's access token. */
  token: string;
  org: string;
  channel: string;
  /** The first of `devices`. */
  device: { id: string; secret: string };
  devices: { id: string; secret: string }[];
}

/**
 * Sets up a fleet on a running server as an operator would: the admin logs in, creates an
 * organization, `devices` devices (1 by default) and a channel, and connects every device to the
 * channel for `types` (publish and subscribe by default). A refused step throws, so a broken
 * set-up fails here instead of as a puzzling refusal later.
 */
export async function cliFleet(api: string, admin: { email: string; password: string }, options: { devices?: number; types?: ('publish' | 'subscribe')[] } = {}): Promise<CliFleet> {
  const expect = <T>(res: { status: number; body: T }, status: number, what: string): T => {
    if (res.status !== status) throw new Error(`${what}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const { token, status } = await login(api, admin.email, admin.password);
  if (status !== 200) throw new Error(`admin login: HTTP ${status}`);
  const org = expect(await call<{ id: string }>(api, 'POST', '/orgs', { token, body: { name: 'fleet' } }), 201, 'create organization').id;
  const devices: CliFleet['devices'] = [];
  for (let k = 0; k < (options.devices ?? 1); k++) {
    const d = expect(await call<{ id: string; secret: string }>(api, 'POST', `/orgs/${org}/devices`, { token, body: { name: `device-${k}` } }), 201, 'create device');
    devices.push({ id: d.id, secret: d.secret });
  }
  const channel = expect(await call<{ id: string }>(api, 'POST', `/orgs/${org}/channels`, { token, body: { name: 'telemetry' } }), 201, 'create channel').id;
  expect(await call(api, 'POST', `/orgs/${org}/connections`, { token, body: { device_ids: devices.map((d) => d.id), channel_ids: [channel], types: options.types ?? ['publish', 'subscribe'] } }), 204, 'connect');
  return { token, org, channel, device: devices[0]!, devices };
}
