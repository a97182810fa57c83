// A PostgreSQL and a NATS server of the test's own, in a temp folder on ports from the OS, so that
// a test may crash and restart them without touching the machine's shared services.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findProgram } from './services.js';

const run = promisify(execFile);

/** A free TCP port on 127.0.0.1, as the OS gives it (free when asked: a listener that restarts keeps it). */
export function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A free UDP port on 127.0.0.1, as the OS gives it. */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on the port, or rejects after `ms`. */
export async function portOpen(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The folder with initdb and pg_ctl: the newest /usr/lib/postgresql/<version>/bin, else where initdb is on the PATH. */
function postgresBin(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    const versions = readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(base, versions[0], 'bin');
  }
  const path = spawnSync('sh', ['-c', 'command -v initdb']).stdout.toString().trim();
  return path ? join(path, '..') : undefined;
}

/** PostgreSQL refuses to run as root: as root, its programs run as the `postgres` user (the Debian package makes it). */
function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = spawnSync('id', ['-u', 'postgres']).stdout.toString().trim();
  const gid = spawnSync('id', ['-g', 'postgres']).stdout.toString().trim();
  return uid && gid ? { uid: Number(uid), gid: Number(gid) } : undefined;
}

/** The programs the private services need, for programsAvailable(). */
export function privateServicePrograms(): Record<string, string | undefined> {
  const bin = postgresBin();
  const asRoot = process.getuid?.() === 0;
  return {
    initdb: bin && existsSync(join(bin, 'initdb')) ? join(bin, 'initdb') : undefined,
    pg_ctl: bin && existsSync(join(bin, 'pg_ctl')) ? join(bin, 'pg_ctl') : undefined,
    'nats-server': findProgram('nats-server', '/usr/sbin/nats-server'),
    ...(asRoot ? { 'a postgres user (PostgreSQL will not run as root)': postgresUser() ? 'postgres' : undefined, runuser: findProgram('runuser', '/usr/sbin/runuser') } : {}),
  };
}

export interface PrivatePostgres {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  url: string;
  /** `pg_ctl stop -m immediate`: the server ends without a checkpoint, as on a crash; start() recovers from the WAL. */
  crash(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and removes its folder. */
  close(): Promise<void>;
}

/**
 * A PostgreSQL cluster of its own: initdb in a temp folder (about a second), trust authentication,
 * the socket in that folder, a port from the OS. fsync is off: the faults here are process
 * crashes, after which the OS still holds every write (a machine crash would need it on).
 */
export async function privatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBin();
  if (!bin) throw new Error('PostgreSQL server programs (initdb, pg_ctl) not found');
  const owner = postgresUser();
  const dir = mkdtempSync(join(tmpdir(), 'fleetwire-pg-'));
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const data = join(dir, 'data');
  const port = await freeTcpPort();
  const runuser = findProgram('runuser', '/usr/sbin/runuser') ?? 'runuser';
  const pg = (program: string, args: string[]) => (owner ? run(runuser, ['-u', 'postgres', '--', join(bin, program), ...args]) : run(join(bin, program), args));
  await pg('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60`;
  const start = async () => {
    await pg('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '60', '-o', options, 'start']);
  };
  const crash = async () => {
    await pg('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
  };
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    crash,
    start,
    async close() {
      await crash().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface PrivateNats {
  /** nats://127.0.0.1:<port> */
  url: string;
  /** SIGKILL: JetStream recovers its streams from its folder on start(). */
  kill(): Promise<void>;
  start(): Promise<void>;
  /** Kills the server and removes its folder. */
  close(): Promise<void>;
}

/** A nats-server with JetStream of its own: its store in a temp folder, a port from the OS. */
export async function privateNats(): Promise<PrivateNats> {
  const program = findProgram('nats-server', '/usr/sbin/nats-server');
  if (!program) throw new Error('nats-server not found');
  const dir = mkdtempSync(join(tmpdir(), 'fleetwire-nats-'));
  const port = await freeTcpPort();
  let child: ChildProcess | undefined;
  let output = '';
  const kill = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  };
  const start = async () => {
    child = spawn(program, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    await portOpen(port, 20_000).catch((e: Error) => {
      throw new Error(`${e.message}; nats-server said: ${output}`);
    });
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    kill,
    start,
    async close() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
