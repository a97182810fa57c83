// A real Fleetwire for the SDK's tests: `fleetwire start` from packages/server's sources (tsx), in
// its own process with a temporary data folder and ports chosen by the system, and a TCP relay in
// front of its MQTT listener so that devices keep one address when the platform restarts on
// another port (as a load balancer gives them one). With `tls: true` its HTTP API is HTTPS and MQTT
// over TLS listens too, with listener certificates of a CA made here with openssl (`listenerCa`):
// the platform's device certificates are accepted on both.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const serverRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'server');

export const admin = { email: 'sdk-admin@example.com', password: 'sdk-admin-password' };

export interface Fleet {
  token: string;
  org: string;
  channel: string;
  devices: { id: string; secret: string }[];
}

type LogLine = { msg: string; port?: number; [key: string]: unknown };

export interface PlatformOptions {
  /** HTTPS and MQTT over TLS, with listener certificates from `listenerCa`. */
  tls?: boolean;
  /** More settings, e.g. FLEETWIRE_CERTIFICATE_LIFETIME. */
  env?: Record<string, string>;
}

/** A CA and a listener certificate for 127.0.0.1 signed by it (openssl, P-256, one day). */
function listenerCertificates(dir: string): { ca: string; cert: string; key: string } {
  const f = (name: string) => join(dir, name);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  const p256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl('req', '-x509', ...p256, '-days', '1', '-subj', '/CN=SDK Test Listener CA', '-keyout', f('ca.key'), '-out', f('ca.pem'));
  ssl('req', ...p256, '-subj', '/CN=127.0.0.1', '-keyout', f('listener.key'), '-out', f('listener.csr'));
  writeFileSync(f('listener.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  ssl('x509', '-req', '-in', f('listener.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', f('listener.ext'), '-out', f('listener.pem'));
  return { ca: f('ca.pem'), cert: f('listener.pem'), key: f('listener.key') };
}

export class TestPlatform {
  /** The HTTP API of the process now running. */
  api = '';
  /** The MQTT listener of the process now running (changes with each start). */
  mqttPort = 0;
  /** MQTT over TLS of the process now running (tls only). */
  mqttsPort = 0;
  /** PEM of the CA that signed the listener certificates (tls only). */
  listenerCa = '';
  private listener: { ca: string; cert: string; key: string } | undefined;
  private child: ChildProcess | undefined;
  private readonly relay = net.createServer((socket) => this.forward(socket));
  private readonly relayed = new Set<net.Socket>();
  private stderr = '';

  private constructor(
    private readonly dataDir: string,
    private readonly options: PlatformOptions,
  ) {
    if (options.tls) {
      this.listener = listenerCertificates(mkdtempSync(join(dataDir, 'listener-')));
      this.listenerCa = readFileSync(this.listener.ca, 'utf8');
    }
  }

  /** Starts the platform (the first start creates the admin) and the relay. */
  static async start(options: PlatformOptions = {}): Promise<TestPlatform> {
    const platform = new TestPlatform(mkdtempSync(join(tmpdir(), 'fleetwire-sdk-')), options);
    try {
      await new Promise<void>((resolve, reject) => platform.relay.once('error', reject).listen(0, '127.0.0.1', () => resolve()));
      await platform.launch();
    } catch (e) {
      await platform.stop();
      throw e;
    }
    return platform;
  }

  /** The relay's address: stays the same across restarts. */
  get mqttUrl(): string {
    return `mqtt://127.0.0.1:${(this.relay.address() as net.AddressInfo).port}`;
  }

  /** MQTT over WebSocket on the HTTP listener of the process now running. */
  get wsUrl(): string {
    return `${this.api.replace(/^http/, 'ws')}/mqtt`;
  }

  /** kill -9: no graceful shutdown, the relayed connections drop with it. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child) {
      const exited = exitOf(child);
      child.kill('SIGKILL');
      await exited;
    }
    for (const s of this.relayed) s.destroy();
  }

  /** Starts the platform again on the same data folder. */
  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  /** Kills the platform, closes the relay and removes the data folder. */
  async stop(): Promise<void> {
    await this.kill();
    await new Promise<void>((resolve) => (this.relay.listening ? this.relay.close(() => resolve()) : resolve()));
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** A JSON request to the API as the admin (or with the given Authorization); throws unless the status is `expect`. */
  async call<T>(method: string, path: string, opts: { token?: string; authorization?: string; body?: unknown; contentType?: string; expect?: number } = {}): Promise<T> {
    const authorization = opts.authorization ?? (opts.token ? `Bearer ${opts.token}` : undefined);
    const body = opts.body === undefined ? undefined : Buffer.from(typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body));
    const headers = { ...(authorization ? { authorization } : {}), ...(body ? { 'content-type': opts.contentType ?? 'application/json', 'content-length': String(body.length) } : {}) };
    const url = new URL(this.api + path);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = send(url, { method, headers, timeout: 15_000, ...(this.listenerCa ? { ca: this.listenerCa } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in 15 s`)));
      req.on('error', reject);
      req.end(body);
    });
    if (opts.expect !== undefined && status !== opts.expect) throw new Error(`${method} ${path}: HTTP ${status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** An admin access token. */
  async adminToken(): Promise<string> {
    return (await this.call<{ access_token: string }>('POST', '/auth/token', { body: admin, expect: 200 })).access_token;
  }

  /** An organization, `devices` devices and a channel they are connected to for publish and subscribe, made over the HTTP API. */
  async fleet(devices = 1): Promise<Fleet> {
    const token = await this.adminToken();
    const org = (await this.call<{ id: string }>('POST', '/orgs', { token, body: { name: 'sdk' }, expect: 201 })).id;
    const made: Fleet['devices'] = [];
    for (let k = 0; k < devices; k++) {
      const d = await this.call<{ id: string; secret: string }>('POST', `/orgs/${org}/devices`, { token, body: { name: `sdk-device-${k}` }, expect: 201 });
      made.push({ id: d.id, secret: d.secret });
    }
    const channel = (await this.call<{ id: string }>('POST', `/orgs/${org}/channels`, { token, body: { name: 'sdk-telemetry' }, expect: 201 })).id;
    await this.call('POST', `/orgs/${org}/connections`, { token, body: { device_ids: made.map((d) => d.id), channel_ids: [channel], types: ['publish', 'subscribe'] }, expect: 204 });
    return { token, org, channel, devices: made };
  }

  private async launch(): Promise<void> {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FLEETWIRE_')) env[k] = v;
    Object.assign(env, {
      FLEETWIRE_DATA_DIR: this.dataDir,
      FLEETWIRE_HOST: '127.0.0.1',
      FLEETWIRE_HTTP_PORT: '0',
      FLEETWIRE_MQTT_PORT: '0',
      FLEETWIRE_COAP_PORT: '0',
      FLEETWIRE_LOG_LEVEL: 'info',
      FLEETWIRE_ADMIN_EMAIL: admin.email,
      FLEETWIRE_ADMIN_PASSWORD: admin.password,
      ...(this.listener
        ? { FLEETWIRE_HTTP_TLS_CERT: this.listener.cert, FLEETWIRE_HTTP_TLS_KEY: this.listener.key, FLEETWIRE_MQTT_TLS_CERT: this.listener.cert, FLEETWIRE_MQTT_TLS_KEY: this.listener.key, FLEETWIRE_MQTTS_PORT: '0' }
        : {}),
      ...this.options.env,
    });
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'start'], { cwd: serverRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.stderr = '';
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    const ports = await new Promise<{ http: number; mqtt: number; mqtts?: number }>((resolve, reject) => {
      const found: { http?: number; mqtt?: number; mqtts?: number } = {};
      const timer = setTimeout(() => reject(new Error(`fleetwire did not listen within 60 s: ${this.stderr}`)), 60_000);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        let entry: LogLine;
        try {
          entry = JSON.parse(line) as LogLine;
        } catch {
          return;
        }
        if (entry.msg === 'HTTP API listening') found.http = entry.port;
        if (entry.msg === 'MQTT listening') found.mqtt = entry.port;
        if (entry.msg === 'MQTT over TLS listening') found.mqtts = entry.port;
        if (found.http !== undefined && found.mqtt !== undefined && (!this.listener || found.mqtts !== undefined)) {
          clearTimeout(timer);
          resolve({ http: found.http, mqtt: found.mqtt, ...(found.mqtts !== undefined ? { mqtts: found.mqtts } : {}) });
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`fleetwire exited with ${code} before listening: ${this.stderr}`));
      });
    });
    this.api = `${this.listener ? 'https' : 'http'}://127.0.0.1:${ports.http}`;
    this.mqttPort = ports.mqtt;
    this.mqttsPort = ports.mqtts ?? 0;
  }

  /** One relayed connection; while the platform is down, connections are closed at once. */
  private forward(socket: net.Socket): void {
    if (!this.child) return void socket.destroy();
    const upstream = net.connect(this.mqttPort, '127.0.0.1');
    this.relayed.add(socket).add(upstream);
    const drop = () => {
      socket.destroy();
      upstream.destroy();
      this.relayed.delete(socket);
      this.relayed.delete(upstream);
    };
    for (const s of [socket, upstream]) s.on('error', drop).on('close', drop);
    socket.pipe(upstream).pipe(socket);
  }
}

function exitOf(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Retries `check` until it stops throwing or `ms` pass. */
export async function eventually<T>(check: () => Promise<T> | T, ms = 10_000, every = 25): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, every));
    }
  }
}
