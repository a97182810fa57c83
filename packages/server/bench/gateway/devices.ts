// Simulated devices for bench/gateway, in a process of their own: each device connects with its id
// and secret, subscribes to its own command topic (QoS 1) and publishes one SenML record at QoS 1
// every period, at a phase of its own. The PUBACK comes once the platform stored the message, so
// the time from PUBLISH to PUBACK is publish → stored.
//
// The parent drives it with one JSON command per line on stdin and reads one JSON answer per line:
//   {"op":"connect","count":N}   connect N more devices (those not connected yet), then publish
//   {"op":"stats"}               what happened since the last stats: sent, acked, PUBACK p50/p99/max
//   {"op":"reconnect"}           after the server restarted: every device connects again at once
//   {"op":"stop"}
//
//   tsx bench/gateway/devices.ts @<spec file>
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { encodePublish } from '../../src/mqtt/wire.js';
import { Client } from '../mqtt/client.js';

export interface DevicesSpec {
  port: number;
  /** Address to connect from (127.x.y.z): each generator process has its own ephemeral ports. */
  localAddress: string;
  /** Milliseconds between two messages of one device. */
  periodMs: number;
  /** Connections opened at once while connecting. */
  concurrency: number;
  devices: { id: string; secret: string; channel: string }[];
}

export interface DevicesStats {
  connected: number;
  sent: number;
  acked: number;
  /** Messages sent more than 5 s ago without a PUBACK, now. */
  overdue: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Connections the server closed since the last stats. */
  dropped: number;
  errors: string[];
}

const spec = JSON.parse(readFileSync(process.argv[2]!.slice(1), 'utf8')) as DevicesSpec;
const errors: string[] = [];
const noteError = (m: string) => void (errors.length < 5 && !errors.includes(m) && errors.push(m));

interface Device {
  id: string;
  secret: string;
  topic: string;
  client: Client | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Send time (ns) of each message waiting for its PUBACK, by packet id. */
  waiting: Map<number, bigint>;
  nextId: number;
}

const devices: Device[] = spec.devices.map((d) => ({ id: d.id, secret: d.secret, topic: `channels/${d.channel}/messages/${d.id}`, client: undefined, timer: undefined, waiting: new Map(), nextId: 0 }));
let connectedUpTo = 0;
let connected = 0;
let sent = 0;
let acked = 0;
let dropped = 0;
let latencies: number[] = [];

function pack(): Buffer {
  return Buffer.from(`[{"n":"temperature","u":"Cel","v":${(20 + Math.random() * 5).toFixed(2)}}]`);
}

function publish(d: Device): void {
  const c = d.client;
  if (!c) return;
  d.nextId = d.nextId === 65535 ? 1 : d.nextId + 1;
  d.waiting.set(d.nextId, process.hrtime.bigint());
  sent++;
  c.send(encodePublish(`${d.topic}/telemetry`, pack(), 1, false, false, d.nextId, false));
}

async function connect(d: Device): Promise<void> {
  const c = new Client(spec.port, noteError, spec.localAddress);
  d.client = c;
  c.onPuback = (id) => {
    const at = d.waiting.get(id);
    if (at === undefined) return;
    d.waiting.delete(id);
    acked++;
    latencies.push(Number(process.hrtime.bigint() - at) / 1e6);
  };
  await c.connect(d.id, { username: d.id, password: d.secret });
  await c.subscribe(`${d.topic}/commands`, 1);
  connected++;
  c.sock.once('close', () => {
    connected--;
    dropped++;
    if (d.client === c) d.client = undefined;
    if (d.timer) clearInterval(d.timer);
    d.timer = undefined;
    d.waiting.clear();
  });
  // a phase of its own: the fleet's messages spread over the period
  const phase = Math.random() * spec.periodMs;
  d.timer = setTimeout(() => {
    publish(d);
    d.timer = setInterval(() => publish(d), spec.periodMs);
  }, phase);
}

/** Connects `list`, `concurrency` at a time; the seconds it took and how many failed. */
async function connectAll(list: Device[]): Promise<{ seconds: number; failed: number }> {
  const t0 = performance.now();
  let next = 0;
  let failed = 0;
  const worker = async () => {
    while (next < list.length) {
      const d = list[next++]!;
      try {
        await connect(d);
      } catch (e) {
        failed++;
        noteError((e as Error).message);
        d.client?.sock.destroy();
        d.client = undefined;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(spec.concurrency, list.length) }, worker));
  return { seconds: (performance.now() - t0) / 1000, failed };
}

function stats(): DevicesStats {
  const sorted = latencies.sort((a, b) => a - b);
  const pct = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN);
  const now = process.hrtime.bigint();
  let overdue = 0;
  for (const d of devices) for (const at of d.waiting.values()) if (now - at > 5_000_000_000n) overdue++;
  const out: DevicesStats = { connected, sent, acked, overdue, p50Ms: pct(0.5), p99Ms: pct(0.99), maxMs: sorted.at(-1) ?? NaN, dropped, errors: errors.splice(0) };
  sent = 0;
  acked = 0;
  dropped = 0;
  latencies = [];
  return out;
}

const answer = (m: unknown) => process.stdout.write(`${JSON.stringify(m)}\n`);

createInterface({ input: process.stdin }).on('line', (line) => {
  const m = JSON.parse(line) as { op: 'connect'; count: number } | { op: 'stats' } | { op: 'reconnect' } | { op: 'stop' };
  if (m.op === 'connect') {
    const list = devices.slice(connectedUpTo, connectedUpTo + m.count);
    connectedUpTo += list.length;
    void connectAll(list).then(answer);
  } else if (m.op === 'stats') {
    answer(stats());
  } else if (m.op === 'reconnect') {
    void connectAll(devices.slice(0, connectedUpTo).filter((d) => d.client === undefined)).then(answer);
  } else {
    for (const d of devices) d.client?.sock.destroy();
    process.exit(0);
  }
});
answer({ ready: true });
