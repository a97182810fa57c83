// The CoAP load generator of bench/coap, in a process of its own: `window` requests in flight on
// one UDP socket, each answered request replaced by the next, confirmable (CON) or not (NON).
// Latency is from send to response, matched by token. A request unanswered after 2 s counts as
// lost (no retransmission: on loopback a loss is the server dropping it). Takes one JSON
// argument (LoadSpec); writes one JSON line (LoadResult).
import dgram from 'node:dgram';
import { generate, parse } from 'coap-packet';

export interface LoadSpec {
  port: number;
  /** Uri-Path segments and Uri-Query values of every request. */
  path: string[];
  query: string[];
  payloads: string[];
  contentFormat: number;
  confirmable: boolean;
  window: number;
  warmupSeconds: number;
  seconds: number;
}

export interface LoadResult {
  rate: number;
  p50Ms: number;
  p99Ms: number;
  /** Answers in the timed run, by response code. */
  codes: Record<string, number>;
  lost: number;
  /** Generator CPU, share of one core. */
  cpu: number;
}

const spec = JSON.parse(process.argv[2]!) as LoadSpec;
const socket = dgram.createSocket('udp4');
socket.on('error', () => {});
await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
try {
  socket.setRecvBufferSize(4 * 1024 * 1024);
  socket.setSendBufferSize(4 * 1024 * 1024);
} catch {
  // capped by the kernel
}

const options = [...spec.path.map((p) => ({ name: 'Uri-Path' as const, value: Buffer.from(p) })), { name: 'Content-Format' as const, value: Buffer.of(spec.contentFormat) }, ...spec.query.map((q) => ({ name: 'Uri-Query' as const, value: Buffer.from(q) }))];
const lostAfterMs = 2000;
let messageId = 0;
let tokenCounter = 0;
const inFlight = new Map<number, { sent: bigint; timer: NodeJS.Timeout }>();
let timed = false;
let stopping = false;
const samples: number[] = [];
const codes: Record<string, number> = {};
let lost = 0;

function sendNext(): void {
  if (stopping) return;
  const id = tokenCounter++ >>> 0;
  const token = Buffer.alloc(4);
  token.writeUInt32BE(id);
  messageId = (messageId + 1) & 0xffff;
  const datagram = generate({ code: 'POST', confirmable: spec.confirmable, messageId, token, options, payload: Buffer.from(spec.payloads[id % spec.payloads.length]!) });
  const timer = setTimeout(() => {
    inFlight.delete(id);
    if (timed) lost++;
    sendNext();
  }, lostAfterMs);
  inFlight.set(id, { sent: process.hrtime.bigint(), timer });
  socket.send(datagram, spec.port, '127.0.0.1');
}

socket.on('message', (m) => {
  let p;
  try {
    p = parse(m);
  } catch {
    return;
  }
  if (p.token.length !== 4) return;
  const id = p.token.readUInt32BE(0);
  const f = inFlight.get(id);
  if (!f) return;
  clearTimeout(f.timer);
  inFlight.delete(id);
  if (timed) {
    samples.push(Number(process.hrtime.bigint() - f.sent) / 1e6);
    codes[p.code] = (codes[p.code] ?? 0) + 1;
  }
  sendNext();
});

for (let i = 0; i < spec.window; i++) sendNext();
await new Promise((r) => setTimeout(r, spec.warmupSeconds * 1000));
timed = true;
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
await new Promise((r) => setTimeout(r, spec.seconds * 1000));
timed = false;
stopping = true;
const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);
samples.sort((a, b) => a - b);
const pct = (q: number) => (samples.length ? samples[Math.min(samples.length - 1, Math.ceil(q * samples.length) - 1)]! : NaN);
const result: LoadResult = { rate: samples.length / elapsed, p50Ms: pct(0.5), p99Ms: pct(0.99), codes, lost, cpu: (cpu.user + cpu.system) / 1e6 / elapsed };
process.stdout.write(JSON.stringify(result) + '\n');
for (const f of inFlight.values()) clearTimeout(f.timer);
socket.close();
