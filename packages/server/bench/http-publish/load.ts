// The Node load generator of bench/http-publish, run in a process of its own: `connections`
// keep-alive connections (node:http Agent), each sending the next POST as soon as its answer came.
// Takes one JSON argument (LoadSpec); writes JSON lines: `{"event":"timed"}` when the warm-up is
// over, then `{"event":"result", …}` (LoadResult).
import http from 'node:http';
import { measure } from '../harness.js';

export interface LoadRequest {
  authorization: string;
  body: string;
}

export interface LoadSpec {
  url: string;
  contentType: string;
  /** Sent in turn: request i is requests[i % length]. */
  requests: LoadRequest[];
  connections: number;
  warmupSeconds: number;
  seconds: number;
}

export interface LoadResult {
  /** Answers per second over the timed run. */
  rate: number;
  /** Per-request latency, ns. */
  p50: number;
  p99: number;
  /** Answers in the timed run. */
  ops: number;
  /** Answers by status over warm-up and timed run ("error" when the request failed). */
  statuses: Record<string, number>;
  /** Answers by status in the timed run alone. */
  timedStatuses: Record<string, number>;
  /** CPU the generator used in the timed run, as a share of one core. */
  cpu: number;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec;
const target = new URL(spec.url);
const agent = new http.Agent({ keepAlive: true, maxSockets: spec.connections, maxFreeSockets: spec.connections });
const bodies = spec.requests.map((r) => ({ headers: { 'content-type': spec.contentType, 'content-length': String(Buffer.byteLength(r.body)), authorization: r.authorization }, body: Buffer.from(r.body) }));
const statuses: Record<string, number> = {};

function post(i: number): Promise<void> {
  const r = bodies[i % bodies.length]!;
  return new Promise((resolve) => {
    const count = (key: string) => {
      statuses[key] = (statuses[key] ?? 0) + 1;
      resolve();
    };
    const req = http.request({ agent, host: target.hostname, port: target.port, method: 'POST', path: target.pathname, headers: r.headers }, (res) => {
      res.resume();
      res.once('end', () => count(String(res.statusCode)));
      res.once('error', () => count('error'));
    });
    req.once('error', () => count('error'));
    req.end(r.body);
  });
}

const options = { batch: 1, concurrency: spec.connections, warmupSeconds: 0 };
await measure('warm-up', post, { ...options, seconds: spec.warmupSeconds });
const before = { ...statuses };
process.stdout.write(JSON.stringify({ event: 'timed' }) + '\n');
const cpu0 = process.cpuUsage();
const started = process.hrtime.bigint();
const m = await measure('timed', post, { ...options, seconds: spec.seconds });
const cpu = process.cpuUsage(cpu0);
const elapsedUs = Number(process.hrtime.bigint() - started) / 1000;
const timedStatuses: Record<string, number> = {};
for (const [k, v] of Object.entries(statuses)) if (v - (before[k] ?? 0) > 0) timedStatuses[k] = v - (before[k] ?? 0);
const result: LoadResult = { rate: m.rate, p50: m.p50, p99: m.p99, ops: m.ops, statuses, timedStatuses, cpu: (cpu.user + cpu.system) / elapsedUs };
process.stdout.write(JSON.stringify({ event: 'result', ...result }) + '\n');
agent.destroy();
