// The twin load generator, in a process of its own (bench/twins/run.ts): devices on the raw MQTT
// 3.1.1 client of bench/mqtt/client.ts, username = device id, password = secret. Driven by lines on
// stdin, answered by JSON lines on stdout.
// - `updates`: after "go", each device keeps `window` QoS 1 PUBLISHes in flight to `topic(device)`
//   (its twin's update topic, or a channel for the reference case), a new one as each PUBACK comes
//   (Fleetwire sends it once the update is stored), for `warmupSeconds` then `seconds`; it prints
//   `{"measuring":true}`, then the PUBACKs in the window and their latencies.
// - `deltas`: every device subscribes to its delta topic and prints `{"ready":n}`; each delta that
//   arrives carries `desired.t` (the sender's clock, ms since the epoch); latency = arrival − t.
//   "report" prints them; "done" ends.
// - `storm`: every device connects, subscribes to its delta topic (the catch-up sends the delta),
//   and the process prints how long until every device had a delta, and how many connects failed.
//
//   tsx bench/twins/load.ts @<spec file>
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import mqttPacket from 'mqtt-packet';
import { Client } from '../mqtt/client.js';

export interface TwinLoadSpec {
  mode: 'updates' | 'deltas' | 'storm';
  port: number;
  devices: { id: string; secret: string }[];
  /** updates: where each device publishes (`{id}` replaced by its id). */
  topic?: string;
  window?: number;
  seconds?: number;
  warmupSeconds?: number;
  /** Connects in progress at once. */
  concurrency?: number;
}

export interface UpdatesResult { acks: number; seconds: number; latencyMs: number[]; errors: string[] }
export interface DeltasResult { deltas: number; latencyMs: number[]; errors: string[] }
export interface StormResult { connected: number; withDelta: number; connectSeconds: number; allDeltasSeconds: number; errors: string[] }

const spec = JSON.parse(readFileSync(process.argv[2]!.slice(1), 'utf8')) as TwinLoadSpec;
const errors: string[] = [];
const noteError = (m: string) => void (errors.length < 5 && !errors.includes(m) && errors.push(m));
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const say = (value: unknown) => new Promise<void>((resolve) => process.stdout.write(`${JSON.stringify(value)}\n`, () => resolve()));
const deltaTopic = (id: string) => `devices/${id}/twin/update/delta`;

async function connectAll(onClient: (c: Client, k: number) => Promise<void>): Promise<Client[]> {
  const clients: Client[] = [];
  let next = 0;
  const worker = async () => {
    while (next < spec.devices.length) {
      const k = next++;
      const d = spec.devices[k]!;
      const c = new Client(spec.port, noteError);
      try {
        await c.connect(`bench-${d.id}`, { username: d.id, password: d.secret });
        await onClient(c, k);
        clients.push(c);
      } catch (e) {
        noteError((e as Error).message);
        c.sock.destroy();
      }
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency ?? 50 }, worker));
  return clients;
}

async function updates(): Promise<UpdatesResult> {
  const r: UpdatesResult = { acks: 0, seconds: 0, latencyMs: [], errors };
  const ids = new Map<Client, string>();
  const clients = await connectAll(async (c, k) => void ids.set(c, spec.devices[k]!.id));
  let measuring = false;
  let stop = false;
  let seq = 0;
  clients.forEach((c) => {
    const id = ids.get(c)!;
    const topic = spec.topic!.replace('{id}', id);
    const sent = new Map<number, number>();
    let messageId = 0;
    const publish = () => {
      messageId = (messageId % 65535) + 1;
      sent.set(messageId, performance.now());
      c.send(mqttPacket.generate({ cmd: 'publish', topic, qos: 1, messageId, retain: false, dup: false, payload: Buffer.from(JSON.stringify({ reported: { temp: 20 + (seq % 100) / 10, seq: seq++ } })) }));
    };
    c.onPuback = (id) => {
      const t0 = sent.get(id);
      sent.delete(id);
      if (measuring && t0 !== undefined) {
        r.acks++;
        if (r.latencyMs.length < 200_000) r.latencyMs.push(performance.now() - t0);
      }
      if (!stop) publish();
    };
    for (let w = 0; w < (spec.window ?? 1); w++) publish();
  });
  await new Promise((resolve) => setTimeout(resolve, (spec.warmupSeconds ?? 1) * 1000));
  measuring = true;
  await say({ measuring: true });
  const t0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, (spec.seconds ?? 10) * 1000));
  measuring = false;
  r.seconds = (performance.now() - t0) / 1000;
  stop = true;
  for (const c of clients) c.sock.destroy();
  return r;
}

async function deltas(): Promise<void> {
  const r: DeltasResult = { deltas: 0, latencyMs: [], errors };
  const clients = await connectAll(async (c, k) => {
    c.onPublish = (p) => {
      const now = Date.now();
      try {
        const body = JSON.parse(p.payload.toString()) as { state?: { t?: number } };
        if (typeof body.state?.t === 'number') {
          r.deltas++;
          r.latencyMs.push(now - body.state.t);
        }
      } catch {
        noteError('a delta that is not JSON');
      }
    };
    await c.subscribe(deltaTopic(spec.devices[k]!.id), 1);
  });
  r.latencyMs.length = 0; // catch-up deltas of earlier rounds are not what is measured
  r.deltas = 0;
  await say({ ready: clients.length });
  for (;;) {
    const line = await lines.next();
    if (line.done || line.value === 'done') break;
    await say(r);
    r.latencyMs = [];
    r.deltas = 0;
  }
  for (const c of clients) c.sock.destroy();
}

async function storm(): Promise<StormResult> {
  const got = new Set<number>();
  const t0 = performance.now();
  let allAt = 0;
  const total = spec.devices.length;
  const clients = await connectAll(async (c, k) => {
    c.onPublish = () => {
      if (got.has(k)) return;
      got.add(k);
      if (got.size === total) allAt = performance.now();
    };
    await c.subscribe(deltaTopic(spec.devices[k]!.id), 1);
  });
  const connectSeconds = (performance.now() - t0) / 1000;
  const deadline = performance.now() + 60_000;
  while (got.size < clients.length && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  const result: StormResult = { connected: clients.length, withDelta: got.size, connectSeconds, allDeltasSeconds: ((allAt || performance.now()) - t0) / 1000, errors };
  for (const c of clients) c.sock.destroy();
  return result;
}

await lines.next(); // go
if (spec.mode === 'updates') await say(await updates());
else if (spec.mode === 'deltas') await deltas();
else await say(await storm());
process.exit(0);
