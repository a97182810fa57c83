// MQTT load generator, run in a process of its own by bench/mqtt/run.ts: raw MQTT 3.1.1 clients
// (client.ts), one JSON result line on stdout. bench/README.md says how it counts.
//
//   tsx bench/mqtt/load.ts '<LoadSpec as JSON>'
import { readFileSync } from 'node:fs';
import { encodePublish } from '../../src/mqtt/wire.js';
import { Client } from './client.js';

export interface LoadSpec {
  port: number;
  scenario: 'p2p' | 'fan-in' | 'fan-out' | 'connect';
  qos: 0 | 1;
  /** Payload bytes (at least 8: the send time), or 'senml': a one-record SenML JSON pack carrying the send time. */
  payload: number | 'senml';
  seconds: number;
  /** Messages per second across all publishers; 0: as fast as the broker takes them. */
  rate: number;
  /** Topic prefix; Fleetwire device listeners need `channels/<id>/messages`. */
  topic: string;
  /** Credentials per client (device id, secret), used round-robin; none: anonymous. */
  credentials?: { username: string; password: string }[];
  /** `connect` scenario: how many connections to open and keep. */
  connections?: number;
  protocolVersion?: 4 | 5;
}

export interface LoadResult {
  sent: number;
  received: number;
  seconds: number;
  rate: number;
  p50Ms: number;
  p99Ms: number;
  connectRate?: number;
  connected?: number;
  errors: string[];
}

const errors: string[] = [];
const noteError = (message: string) => void (errors.length < 5 && errors.push(message));

/** The SenML pack's text before and after the send time (20 decimal digits of ns): `[{"n":"t","vs":"…"}]`, 37 bytes. */
const senmlHead = '[{"n":"t","vs":"';
const senmlTail = '"}]';

/** A PUBLISH whose payload carries the send time (ns, process clock): its first 8 bytes, or the SenML record's string value. */
function publishPacket(topic: string, qos: 0 | 1, size: number | 'senml', messageId: number): Buffer {
  let payload: Buffer;
  if (size === 'senml') {
    payload = Buffer.from(`${senmlHead}${process.hrtime.bigint().toString().padStart(20, '0')}${senmlTail}`, 'latin1');
  } else {
    payload = Buffer.alloc(Math.max(8, size));
    payload.writeBigUInt64BE(process.hrtime.bigint(), 0);
  }
  return encodePublish(topic, payload, qos, false, false, qos ? messageId : undefined, false);
}

/** The send time a received payload carries (ns), or undefined when it carries none. */
function sentAt(payload: Buffer, kind: number | 'senml'): bigint | undefined {
  if (kind !== 'senml') return payload.length >= 8 ? payload.readBigUInt64BE(0) : undefined;
  if (payload.length < senmlHead.length + 20) return undefined;
  return BigInt(payload.toString('latin1', senmlHead.length, senmlHead.length + 20));
}

async function connectScenario(spec: LoadSpec): Promise<LoadResult> {
  const n = spec.connections ?? 1000;
  const creds = spec.credentials ?? [];
  const clients: Client[] = [];
  const started = process.hrtime.bigint();
  let next = 0;
  let connected = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const c = new Client(spec.port, noteError);
      clients.push(c);
      try {
        await c.connect(`idle-${i}`, creds.length ? creds[i % creds.length] : undefined);
        connected++;
      } catch (e) {
        if (errors.length < 5) errors.push((e as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: 50 }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  // hold them open while the parent reads the broker's memory
  console.log(JSON.stringify({ sent: 0, received: 0, seconds, rate: 0, p50Ms: 0, p99Ms: 0, connectRate: connected / seconds, connected, errors } satisfies LoadResult));
  await new Promise((r) => process.stdin.once('data', r));
  for (const c of clients) c.sock.destroy();
  return { sent: 0, received: 0, seconds, rate: 0, p50Ms: 0, p99Ms: 0, errors };
}

async function run(spec: LoadSpec): Promise<LoadResult | undefined> {
  if (spec.scenario === 'connect') {
    await connectScenario(spec);
    return undefined;
  }
  const pubs = spec.scenario === 'fan-in' ? 10 : 1;
  const subs = spec.scenario === 'fan-out' ? 10 : 1;
  const creds = spec.credentials ?? [];
  let credIndex = 0;
  const cred = () => (creds.length ? creds[credIndex++ % creds.length] : undefined);
  const latencies = new Float64Array(2_000_000);
  let samples = 0;
  let received = 0;
  let measuring = false;
  const subscribers: Client[] = [];
  for (let i = 0; i < subs; i++) {
    const c = new Client(spec.port, noteError);
    await c.connect(`sub-${i}-${process.pid}`, cred());
    await c.subscribe(`${spec.topic}/#`, spec.qos);
    c.onPublish = (p) => {
      if (!measuring) return;
      received++;
      const at = sentAt(p.payload, spec.payload);
      if (at !== undefined && samples < latencies.length) latencies[samples++] = Number(process.hrtime.bigint() - at) / 1e6;
    };
    subscribers.push(c);
  }
  const publishers: Client[] = [];
  for (let i = 0; i < pubs; i++) {
    const c = new Client(spec.port, noteError);
    await c.connect(`pub-${i}-${process.pid}`, cred());
    publishers.push(c);
  }
  let sent = 0;
  let stop = false;
  const window = 64; // QoS 1 messages in flight per publisher
  const publishLoop = async (c: Client, index: number) => {
    const topic = `${spec.topic}/p${index}`;
    let inflight = 0;
    let id = 0;
    let wake: (() => void) | undefined;
    c.onPuback = () => {
      inflight--;
      wake?.();
    };
    const perPublisherRate = spec.rate / pubs;
    const startedAt = Date.now();
    let count = 0;
    while (!stop) {
      if (spec.qos === 1 && inflight >= window) {
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
        continue;
      }
      if (perPublisherRate > 0) {
        const due = ((Date.now() - startedAt) / 1000) * perPublisherRate;
        if (count >= due) {
          await new Promise((r) => setTimeout(r, 1));
          continue;
        }
      }
      id = id === 65535 ? 1 : id + 1;
      if (spec.qos === 1) inflight++;
      count++;
      if (measuring) sent++;
      if (!c.send(publishPacket(topic, spec.qos, spec.payload, id))) await new Promise((r) => c.sock.once('drain', r));
      if (count % 256 === 0) await new Promise((r) => setImmediate(r));
    }
  };
  const loops = publishers.map((c, i) => publishLoop(c, i));
  await new Promise((r) => setTimeout(r, 1000)); // warm-up
  measuring = true;
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, spec.seconds * 1000));
  measuring = false;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  stop = true;
  for (const p of publishers) p.onPuback?.(0);
  await Promise.race([Promise.all(loops), new Promise((r) => setTimeout(r, 2000))]);
  for (const c of [...publishers, ...subscribers]) c.sock.destroy();
  const sorted = latencies.slice(0, samples).sort();
  const pct = (q: number) => (samples ? sorted[Math.min(samples - 1, Math.floor(q * samples))]! : NaN);
  return { sent, received, seconds, rate: received / seconds, p50Ms: pct(0.5), p99Ms: pct(0.99), errors };
}

// the spec as JSON, or `@<file>` holding it (10,000 credentials do not fit in an argument list)
const arg = process.argv[2]!;
const spec = JSON.parse(arg.startsWith('@') ? readFileSync(arg.slice(1), 'utf8') : arg) as LoadSpec;
run(spec).then(
  (r) => {
    if (r) console.log(JSON.stringify(r));
    process.exit(0);
  },
  (e: unknown) => {
    console.log(JSON.stringify({ sent: 0, received: 0, seconds: 0, rate: 0, p50Ms: NaN, p99Ms: NaN, errors: [String(e)] }));
    process.exit(1);
  },
);
