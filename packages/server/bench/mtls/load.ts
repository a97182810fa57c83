// The mTLS load generator, in a process of its own (bench/mtls/run.ts, bench/revocation/run.ts):
// devices connect over TLS 1.2+ with their certificate and key (the raw MQTT 3.1.1 client of
// bench/mqtt/client.ts), CONNECT with no username or password, no keep-alive and a clean session.
// No TLS session is ever offered again (no `session` option), so every connect is a full
// handshake; the result says how many the server resumed anyway (it must be 0).
//
// Modes (the spec's `mode`), driven by lines on stdin, answered by JSON lines on stdout:
// - `connects`: after "go", `concurrency` devices at a time connect (TCP, TLS handshake, CONNECT →
//   CONNACK), send DISCONNECT and close, the next device of the list right after, for
//   `warmupSeconds` then `seconds`; it prints `{"measuring":true}` when the window opens and the
//   result (connects, per-connect times) when it closes.
// - `hold`: every device connects once (`concurrency` at a time) and stays; it prints how many got
//   in, then one line `{"closed":<id>,"at":<ms>}` for each connection the server closes
//   (`at`: performance.timeOrigin + performance.now(), the machine's clock, as the parent reads it).
//   "done" closes them all and ends the process.
//
//   tsx bench/mtls/load.ts @<spec file>
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import tls from 'node:tls';
import { Client } from '../mqtt/client.js';

export interface TlsLoadSpec {
  mode: 'connects' | 'hold';
  port: number;
  /** PEM: the CA that signed the listener's certificate. */
  ca: string;
  devices: { id: string; cert: string; key: string }[];
  /** Connections being opened at once. */
  concurrency: number;
  seconds?: number;
  warmupSeconds?: number;
}

export interface ConnectsResult {
  connects: number;
  seconds: number;
  /** Per connect in the window, ms: TCP connect + TLS handshake (`secureConnect`), and the whole connect until CONNACK. */
  handshakeMs: number[];
  connackMs: number[];
  /** Connects whose TLS session the server resumed (none was offered: must be 0). */
  resumed: number;
  /** Negotiated TLS version and cipher of the connects, counted. */
  protocols: Record<string, number>;
  failed: number;
  errors: string[];
}

export interface HoldResult {
  connected: number;
  seconds: number;
  errors: string[];
}

const spec = JSON.parse(readFileSync(process.argv[2]!.slice(1), 'utf8')) as TlsLoadSpec;
const errors: string[] = [];
const noteError = (m: string) => void (errors.length < 5 && !errors.includes(m) && errors.push(m));
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
/** One JSON line on stdout; resolves once it is written (a pipe's writes are asynchronous: exiting sooner cuts a long line). */
const say = (value: unknown) => new Promise<void>((resolve) => process.stdout.write(`${JSON.stringify(value)}\n`, () => resolve()));
const now = () => performance.timeOrigin + performance.now();
// DISCONNECT, MQTT 3.1.1 §3.14
const disconnect = Buffer.from([0xe0, 0x00]);

// one secure context per device, made before anything is timed: the key and certificate are parsed
// once, as a device that keeps its credentials loaded does
const contexts = spec.devices.map((d) => tls.createSecureContext({ cert: d.cert, key: d.key, ca: spec.ca, minVersion: 'TLSv1.2' }));

/** One device's TLS connection up to its CONNACK; its times (ms from the start), or a thrown error. */
async function open(k: number): Promise<{ client: Client; handshakeMs: number; connackMs: number }> {
  const t0 = performance.now();
  const client = new Client(spec.port, noteError, undefined, { secureContext: contexts[k]! });
  let handshakeMs = NaN;
  client.sock.once('secureConnect', () => (handshakeMs = performance.now() - t0));
  try {
    await client.connect(`mtls-${process.pid}-${k}`);
  } catch (e) {
    client.sock.destroy();
    throw e;
  }
  return { client, handshakeMs, connackMs: performance.now() - t0 };
}

async function connects(): Promise<ConnectsResult> {
  const r: ConnectsResult = { connects: 0, seconds: 0, handshakeMs: [], connackMs: [], resumed: 0, protocols: {}, failed: 0, errors };
  let measuring = false;
  let stop = false;
  let next = 0;
  const worker = async () => {
    while (!stop) {
      const k = next++ % spec.devices.length;
      try {
        const { client, handshakeMs, connackMs } = await open(k);
        const s = client.sock as tls.TLSSocket;
        if (measuring && !stop) {
          r.connects++;
          r.handshakeMs.push(handshakeMs);
          r.connackMs.push(connackMs);
          if (s.isSessionReused()) r.resumed++;
          const p = `${s.getProtocol()} ${s.getCipher().name}`;
          r.protocols[p] = (r.protocols[p] ?? 0) + 1;
        }
        s.end(disconnect);
      } catch (e) {
        if (measuring) r.failed++;
        noteError((e as Error).message);
      }
    }
  };
  const workers = Array.from({ length: spec.concurrency }, worker);
  await new Promise((resolve) => setTimeout(resolve, (spec.warmupSeconds ?? 1) * 1000));
  measuring = true;
  void say({ measuring: true });
  const t0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, (spec.seconds ?? 10) * 1000));
  measuring = false;
  r.seconds = (performance.now() - t0) / 1000;
  stop = true;
  await Promise.all(workers);
  return r;
}

async function hold(): Promise<void> {
  const held: Client[] = [];
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < spec.devices.length) {
      const k = next++;
      try {
        const { client } = await open(k);
        held.push(client);
        client.sock.once('close', () => void say({ closed: spec.devices[k]!.id, at: now() }));
      } catch (e) {
        noteError((e as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, worker));
  await say({ connected: held.length, seconds: (performance.now() - t0) / 1000, errors } satisfies HoldResult);
  await lines.next(); // done
  for (const c of held) c.sock.removeAllListeners('close').destroy();
}

await lines.next(); // go
if (spec.mode === 'connects') await say(await connects());
else await hold();
process.exit(0);
