/**
 * What each `fleetwire-device` command does, given its parsed options. They log JSON lines to
 * stdout (one object a line: time, level, msg, and the facts) and throw on failure; main.ts turns
 * a throw into a message on stderr and an exit code.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FleetwireDevice } from '../device.js';
import { FleetwireError } from '../errors.js';
import { enrolledDevice } from '../identity/connect.js';
import { enrol, ensureDeviceKey, renew } from '../identity/enrol.js';
import { platformRequest } from '../identity/http.js';
import { IdentityStore } from '../identity/store.js';
import type { SenmlRecord } from '../senml.js';

export type Log = (level: 'info' | 'warn' | 'error', msg: string, facts?: Record<string, unknown>) => void;

export const jsonLog: Log = (level, msg, facts = {}) => {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...facts })}\n`);
};

/** A usage mistake: exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

async function readCa(file: string | undefined): Promise<string | undefined> {
  return file === undefined ? undefined : readFile(file, 'utf8');
}

export async function enrolCommand(o: { url: string; token?: string; serial: string; dir: string; ca?: string; newKey: boolean }, log: Log): Promise<void> {
  const ca = await readCa(o.ca);
  const identity = await enrol({ url: o.url, serial: o.serial, dir: o.dir, newKey: o.newKey, ...(o.token !== undefined ? { token: o.token } : {}), ...(ca !== undefined ? { ca } : {}) });
  log('info', 'enrolled', { ...identity });
}

export async function renewCommand(o: { dir: string; url?: string; ca?: string; newKey: boolean }, log: Log): Promise<void> {
  const ca = await readCa(o.ca);
  const identity = await renew({ dir: o.dir, newKey: o.newKey, ...(o.url !== undefined ? { url: o.url } : {}), ...(ca !== undefined ? { ca } : {}) });
  log('info', 'renewed', { ...identity });
}

/** Prints the device's public key (making the key if the store has none), for an operator to register. */
export async function keyCommand(o: { dir: string }): Promise<void> {
  const { publicKey } = await ensureDeviceKey(o.dir);
  process.stdout.write(publicKey);
}

export interface RunOptions {
  dir: string;
  /** Seconds between two telemetry messages. */
  interval: number;
  /** Stop after this many messages (undefined: until SIGINT/SIGTERM). */
  count?: number;
  channel?: string;
  url?: string;
  ca?: string;
}

/** Connects with the store's certificate and publishes sample telemetry until stopped. */
export async function runCommand(o: RunOptions, log: Log, stop: AbortSignal): Promise<void> {
  const ca = await readCa(o.ca);
  const { identity } = await new IdentityStore(o.dir).read();
  const channel = o.channel ?? identity.channel_ids[0];
  const device = await enrolledDevice({ dir: o.dir, clientId: identity.device_id, ...(o.url !== undefined ? { url: o.url } : {}), ...(ca !== undefined ? { ca } : {}) });
  watch(device, log, { device_id: identity.device_id });
  await publishLoop(device, { ...o, channel, serial: identity.serial }, log, stop);
}

/**
 * `count` devices, each with its own key and certificate in `<dir>/<serial>`, enrolled with a
 * token each (from `tokenFile`, one a line, or made with the operator's `accessToken`), then
 * publishing telemetry until stopped.
 */
export interface SimulateOptions {
  url: string;
  count: number;
  serialPrefix: string;
  dir: string;
  interval: number;
  /** Messages per device before stopping (undefined: until SIGINT/SIGTERM). */
  messages?: number;
  tokenFile?: string;
  accessToken?: string;
  org?: string;
  channel?: string;
  ca?: string;
}

/** Enrolments at once: each is a CSR signature and a round trip. */
const enrolConcurrency = 8;

export async function simulateCommand(o: SimulateOptions, log: Log, stop: AbortSignal): Promise<void> {
  if (!o.tokenFile && !(o.accessToken && o.org)) throw new UsageError('simulate needs --token-file (one enrolment token a line), or --access-token and --org to make the tokens');
  const ca = await readCa(o.ca);
  const width = String(o.count).length;
  const serials = Array.from({ length: o.count }, (_, k) => `${o.serialPrefix}${String(k + 1).padStart(width, '0')}`);
  const dirOf = (serial: string) => join(o.dir, serial);
  const enrolled = async (serial: string) => new IdentityStore(dirOf(serial)).read().then(() => true, () => false);
  const pending: string[] = [];
  for (const serial of serials) if (!(await enrolled(serial))) pending.push(serial);

  const tokens = await enrolmentTokens(o, pending, ca);
  await inBatches(pending, enrolConcurrency, async (serial, k) => {
    const identity = await enrol({ url: o.url, serial, dir: dirOf(serial), token: tokens[k]!, ...(ca !== undefined ? { ca } : {}) });
    log('info', 'enrolled', { serial, device_id: identity.device_id, channel_ids: identity.channel_ids });
  });

  const devices: { device: FleetwireDevice; channel: string | undefined; serial: string }[] = [];
  try {
    for (const serial of serials) {
      const { identity } = await new IdentityStore(dirOf(serial)).read();
      const device = await enrolledDevice({ dir: dirOf(serial), clientId: identity.device_id, ...(ca !== undefined ? { ca } : {}) });
      watch(device, log, { serial, device_id: identity.device_id });
      devices.push({ device, channel: o.channel ?? identity.channel_ids[0], serial });
    }
    await Promise.all(devices.map((d) => publishLoop(d.device, { interval: o.interval, channel: d.channel, serial: d.serial, ...(o.messages !== undefined ? { count: o.messages } : {}) }, log, stop)));
  } finally {
    await Promise.all(devices.map((d) => d.device.close()));
  }
}

/** One token per serial: the file's lines, or made now (with `serial_pattern` = the prefix, and the serials registered on `channel` first). */
async function enrolmentTokens(o: SimulateOptions, serials: string[], ca: string | undefined): Promise<string[]> {
  if (serials.length === 0) return [];
  if (o.tokenFile) {
    const lines = (await readFile(o.tokenFile, 'utf8')).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    if (lines.length < serials.length) throw new UsageError(`${o.tokenFile} holds ${lines.length} tokens and ${serials.length} devices need one each (tokens are single use)`);
    return lines.slice(0, serials.length);
  }
  const api = (path: string, body: unknown) => platformRequest<{ token?: string }>({ method: 'POST', url: new URL(`/orgs/${o.org}${path}`, o.url).href, body, authorization: `Bearer ${o.accessToken}`, ...(ca !== undefined ? { ca } : {}) });
  if (o.channel) {
    // registered with the channel, so that each device may publish to it once enrolled
    for (let k = 0; k < serials.length; k += 1000) {
      await api('/registrations/bulk', { registrations: serials.slice(k, k + 1000).map((serial) => ({ serial, model: 'fleetwire-device simulate', channel_ids: [o.channel] })) });
    }
  }
  const tokens: string[] = [];
  for (const _ of serials) tokens.push((await api('/enrolment-tokens', { serial_pattern: `${o.serialPrefix}*` })).token!);
  return tokens;
}

async function inBatches<T>(items: T[], size: number, each: (item: T, index: number) => Promise<void>): Promise<void> {
  for (let k = 0; k < items.length; k += size) await Promise.all(items.slice(k, k + size).map((item, j) => each(item, k + j)));
}

/** Logs what the client reports. */
function watch(device: FleetwireDevice, log: Log, who: Record<string, unknown>): void {
  device.on('connected', (i) => log('info', 'connected', { ...who, reconnected: i.reconnected }));
  device.on('disconnected', (i) => log('warn', 'disconnected', { ...who, error: i.error?.message, reason_code: i.reasonCode }));
  device.on('reconnecting', (i) => log('info', 'reconnecting', { ...who, attempt: i.attempt, delay_ms: i.delayMs }));
  device.on('renewed', (i) => log('info', 'certificate renewed', { ...who, certificate_serial: i.certificateSerial, not_after: i.notAfter.toISOString() }));
  device.on('renewal-error', (e, i) => log('error', 'renewal failed', { ...who, error: e.message, code: (e as FleetwireError).code, attempt: i.attempt, retry_in_ms: i.retryInMs }));
  device.on('error', (e) => log('error', e.message, { ...who, code: (e as FleetwireError).code }));
}

/** Sample SenML (RFC 8428): a temperature that wanders and the seconds since start. */
function telemetry(serial: string, sent: number, startedAt: number): SenmlRecord[] {
  const temperature = Math.round((21 + 2 * Math.sin(sent / 10) + Math.random() * 0.2) * 100) / 100;
  return [
    { bn: `${serial}:`, n: 'temperature', u: 'Cel', v: temperature },
    { n: 'uptime', u: 's', v: Math.round((Date.now() - startedAt) / 1000) },
  ];
}

async function publishLoop(device: FleetwireDevice, o: { interval: number; count?: number; channel: string | undefined; serial: string }, log: Log, stop: AbortSignal): Promise<void> {
  const closed = new Promise<Error>((resolve) => device.once('close', (i) => resolve(i.error ?? new FleetwireError('closed', 'the client was closed'))));
  try {
    await device.connect(); // rejects when the platform refuses for good
    if (o.channel === undefined) {
      log('warn', 'the device is connected to no channel: nothing to publish (an operator connects it to one)', { serial: o.serial });
      await Promise.race([closed, aborted(stop)]);
      return;
    }
    const startedAt = Date.now();
    for (let sent = 0; o.count === undefined || sent < o.count; ) {
      if (stop.aborted) return;
      try {
        await device.publishSenml(o.channel, telemetry(o.serial, sent, startedAt));
        sent++;
        log('info', 'published', { serial: o.serial, channel: o.channel, sent });
      } catch (e) {
        if (device.state === 'closed') throw e;
        log('error', 'publish failed', { serial: o.serial, error: (e as Error).message, code: (e as FleetwireError).code });
      }
      if (o.count !== undefined && sent >= o.count) break;
      const failure = await Promise.race([sleep(o.interval * 1000, stop), closed]);
      if (failure) throw failure;
    }
  } finally {
    await device.close();
  }
}

function sleep(ms: number, stop: AbortSignal): Promise<undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    stop.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      stop.removeEventListener('abort', done);
      resolve(undefined);
    }
  });
}

function aborted(stop: AbortSignal): Promise<void> {
  return new Promise((resolve) => (stop.aborted ? resolve() : stop.addEventListener('abort', () => resolve(), { once: true })));
}
