// test-database: once (the subject is the MQTT listener under a flood, not the database: run in the SQLite pass only, so that two floods never share the machine)
// Overload never takes the platform down: a `fleetwire start` process is flooded with QoS 0
// PUBLISHes of 1-record SenML packs, as fast as the sockets take them, by a load generator in a
// process of its own (bench/flood/flood.ts), from 1 device and then from 50. While a flood lasts the
// process's RSS stays bounded, /health and /readyz keep answering, and a device that is not flooding
// is still delivered and acknowledged; once it stops, /health is fast again within seconds and the
// writer drains what the bus holds. What holds a flood back is the device listener: a connection
// stops reading its socket while 64 PUBLISHes wait for room in the bus (maxWaitingPackets), so the
// rest waits in TCP, not in our memory. `npm run bench:flood` measures the same for longer.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { announcedPort, cleanupCli, cliEnv, cliFleet, dataFolder, startCli } from './helpers/cli.js';
import { startFlood } from './helpers/flood.js';
import { mqttClient, type TestClient } from './helpers/mqtt.js';
import { testDatabaseKind } from './helpers/database.js';
import { fleetwireMetric, rssMb } from '../bench/harness.js';

const admin = { email: 'flood-admin@example.com', password: 'flood-password-not-secret' };
const floodMs = 5000;
const sampleEveryMs = 50;
const probeEveryMs = 100;
/** A GET that takes longer is given up and counted as this long. */
const requestTimeoutMs = 5000;
/**
 * The platform runs with its old space capped, as a container's memory limit caps it (Node sizes
 * its heap from the cgroup limit). Uncapped, V8 lets garbage pile up far past what is live: with
 * backpressure, a 10 s flood from 50 devices took RSS from 200 to over 900 MB, while the same flood
 * with the old space capped at 256 MB ran with 170 to 240 MB of heap in use (the bus full all along,
 * 100,000 messages). Capped, RSS follows what the platform holds, and a platform that holds without
 * bound cannot hide: it collects without end or dies out of memory.
 */
const heapLimitMb = 512;

// The bounds, from what this machine (2 shared cores; the SQLite and PostgreSQL passes of
// scripts/test.mjs flooding side by side, other suites running — the file now runs in one pass,
// after a PostgreSQL pass flooding beside the SQLite one took /health p99 to 5 s) measured with backpressure, and
// what it measured with it disabled (maxWaitingPackets made a billion):
//
// - RSS: +145 to +240 MB over idle from 1 device, +245 to +395 MB from 50 (the bus full: 100,000
//   messages, and per connection the PUBLISHes waiting for room). Idle is about 180 MB. Without
//   backpressure the 50-device flood took +405 MB in the SQLite pass, and the PostgreSQL pass's
//   platform died before the flood ended.
const rssGrowthMb = 500;
// - /health p99: alone on the machine 0.08 s (1 device) and 0.2 to 1.4 s (50; `npm run bench:flood`);
//   0.2 to 2.4 s with the other pass flooding beside it (load average 4 to 8 on 2 cores). Not the
//   100 ms we want, and not a bound this machine can promise below the point where a request is
//   given up: a connection handles at most 64 packets of a read before the event loop serves the
//   others (which took the 50-device p99 from 1.6–4.3 to 0.3–2.4 s here), but four busy processes
//   share two cores, and how long a turn takes is how much CPU the process gets. Without
//   backpressure no request during the 50-device flood was answered within 5 s at all, and devices
//   connecting while it ran were refused (their CONNECT was not read before the connect timeout).
const healthP99Ms = 4500;
// - the probe: delivered within 0.3 to 3.8 s (without backpressure: 6.3 to 7.6 s); its PUBACK waits
//   for the message to be stored, behind what the bus holds: 1.3 to 8.7 s, none refused.
const probeDeliveredMs = 5000;
const probeAckedMs = 15_000;
// - after the flood: the platform still reads what the kernel holds of the 50 sockets (their
//   receive buffers grow to megabytes; the generator's own are dropped by its reset), so /health is
//   fast again 0.1 to 16 s after the generator stopped and the writer drained after 6 to 21 s (1 to
//   3 s after a flood from one device).
const healthyWithinS = 20;
const drainedWithinS = 40;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * p) - 1)]!;
const lag = (api: string) => fleetwireMetric(api, /^fleetwire_writer_lag_messages (\S+)$/m);

/** How long a GET takes to be answered 200; one not answered 200 in time counts as `requestTimeoutMs`. */
async function timed(url: string): Promise<number> {
  const t = performance.now();
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(requestTimeoutMs) });
    await res.text();
    return res.status === 200 ? performance.now() - t : requestTimeoutMs;
  } catch {
    return requestTimeoutMs;
  }
}

interface Report {
  devices: number;
  /** Flooding clients accepted and refused. */
  connected: number;
  refused: number;
  /** Whether the platform process still ran when the flood stopped; how it ended if not. */
  running: boolean;
  exit: string;
  written: number;
  rssIdle: number;
  rssMax: number;
  /** Answer times during the flood, ms. */
  health: number[];
  readyz: number[];
  /** Per probe message, ms until its PUBACK and until the watcher got it (Infinity: never). */
  acked: number[];
  delivered: number[];
  /** Probe messages refused, or lost with the probe's connection. */
  probesRefused: number;
  /** Messages the writer had not stored when the flood stopped. */
  lagAtStop: number;
  /** Seconds from the end of the flood until /health answered fast 10 times in a row, and until the writer lagged by nothing (Infinity: not within the bound). */
  healthyAfter: number;
  drainedAfter: number;
}

/**
 * One platform process, `devices` flooding devices and two more that do not flood: the probe
 * publishes a QoS 1 message every 100 ms on its own subtopic, the watcher is subscribed to it.
 */
async function floodCase(devices: number): Promise<Report> {
  const server = await startCli(cliEnv(dataFolder(), { FLEETWIRE_ADMIN_EMAIL: admin.email, FLEETWIRE_ADMIN_PASSWORD: admin.password }), { nodeArgs: [`--max-old-space-size=${heapLimitMb}`] });
  const clients: TestClient[] = [];
  try {
    const api = server.api;
    const pid = server.child.pid!;
    const port = await announcedPort(server, 'MQTT listening');
    const fleet = await cliFleet(api, admin, { devices: devices + 2 });
    const [p, w] = fleet.devices.slice(devices);
    const url = `mqtt://127.0.0.1:${port}`;
    const probe = await mqttClient(url, { protocolVersion: 5, username: p!.id, password: p!.secret, clientId: 'probe' }, clients);
    const watcher = await mqttClient(url, { protocolVersion: 5, username: w!.id, password: w!.secret, clientId: 'watcher' }, clients);
    const probeTopic = `channels/${fleet.channel}/messages/probe`;
    await watcher.subscribeAsync(probeTopic, { qos: 0 });
    const rssIdle = rssMb(pid);

    const generator = await startFlood({
      port,
      topic: `channels/${fleet.channel}/messages/flood`,
      connections: devices,
      credentials: fleet.devices.slice(0, devices).map((d) => ({ username: d.id, password: d.secret })),
      // what the generator's sockets still hold when the flood stops is dropped, as when devices
      // lose power; closed, the kernel would deliver their megabytes to the platform after the flood
      reset: true,
    });

    // RSS on a timer of its own, and requests sent on the clock whether the previous one was
    // answered or not: a platform that stops answering shows as many late answers, not as few samples
    let rssMax = rssIdle;
    const rssTimer = setInterval(() => (rssMax = Math.max(rssMax, rssMb(pid))), sampleEveryMs);
    const sentAt: number[] = [];
    const acked: number[] = [];
    const delivered: number[] = [];
    let probesRefused = 0;
    const onProbe = (_topic: string, payload: Buffer) => {
      const k = (JSON.parse(payload.toString()) as [{ v: number }])[0].v;
      delivered[k] ??= performance.now() - sentAt[k]!;
    };
    watcher.on('message', onProbe);
    const health: Promise<number>[] = [];
    const readyz: Promise<number>[] = [];
    const started = performance.now();
    for (let tick = 0; performance.now() - started < floodMs; tick++) {
      health.push(timed(`${api}/health`));
      readyz.push(timed(`${api}/readyz`));
      if (tick % (probeEveryMs / sampleEveryMs) === 0) {
        const k = sentAt.length;
        sentAt.push(performance.now());
        probe.publishAsync(probeTopic, `[{"n":"probe","v":${k}}]`, { qos: 1 }).then(
          () => (acked[k] = performance.now() - sentAt[k]!),
          () => probesRefused++,
        );
      }
      await sleep(started + (tick + 1) * sampleEveryMs - performance.now());
    }
    const written = await generator.stop();
    const running = server.child.exitCode === null && server.child.signalCode === null;
    const exit = running ? '' : `exit code ${server.child.exitCode}, signal ${server.child.signalCode}`;
    const stopped = performance.now();
    clearInterval(rssTimer);
    const lagAtStop = await lag(api).catch(() => NaN);

    // fast again: 10 answers in a row under 100 ms; the time is when the first of them was asked
    let healthyAfter = Infinity;
    for (let fast = 0, first = 0; running && fast < 10 && performance.now() - stopped < healthyWithinS * 1000; await sleep(sampleEveryMs)) {
      const t0 = performance.now();
      fast = (await timed(`${api}/health`)) < 100 ? fast + 1 : 0;
      if (fast === 1) first = t0;
      if (fast === 10) healthyAfter = (first - stopped) / 1000;
    }
    let drainedAfter = Infinity;
    while (running && performance.now() - stopped < drainedWithinS * 1000) {
      if ((await lag(api).catch(() => NaN)) === 0) {
        drainedAfter = (performance.now() - stopped) / 1000;
        break;
      }
      await sleep(100);
    }
    // the probes' PUBACKs wait for their messages to be stored: they are all in once the writer drained
    for (const deadline = performance.now() + 5000; running && acked.filter(Number.isFinite).length + probesRefused < sentAt.length && performance.now() < deadline; ) await sleep(50);
    watcher.off('message', onProbe);
    return {
      devices,
      connected: generator.connected,
      refused: generator.refused,
      running,
      exit,
      written,
      rssIdle,
      rssMax,
      health: await Promise.all(health),
      readyz: await Promise.all(readyz),
      acked: sentAt.map((_, k) => acked[k] ?? Infinity),
      delivered: sentAt.map((_, k) => delivered[k] ?? Infinity),
      probesRefused,
      lagAtStop,
      healthyAfter,
      drainedAfter,
    };
  } finally {
    for (const c of clients) c.end(true);
    await server.stop();
  }
}

function summary(r: Report): string[] {
  const f = (n: number) => (Number.isFinite(n) ? n.toFixed(n < 10 ? 1 : 0) : String(n));
  const spread = (xs: number[]) => `p50 ${f(percentile(xs, 0.5))} p99 ${f(percentile(xs, 0.99))} max ${f(Math.max(...xs))} ms`;
  return [
    `${testDatabaseKind()}, ${r.devices} flooding (${r.connected} accepted, ${r.refused} refused; the platform ${r.running ? 'ran' : `had exited: ${r.exit}`}): the generator wrote ${Math.round(r.written / (floodMs / 1000))} PUBLISH/s into its sockets`,
    `RSS ${f(r.rssIdle)} MB idle → ${f(r.rssMax)} MB max (+${f(r.rssMax - r.rssIdle)})`,
    `/health ${spread(r.health)} (${r.health.length} requests); /readyz ${spread(r.readyz)}`,
    `probe PUBACK ${spread(r.acked)}; delivered ${spread(r.delivered)} (${r.acked.length} probes, ${r.probesRefused} refused)`,
    `writer lag at stop ${r.lagAtStop}; /health fast again after ${f(r.healthyAfter)} s; writer drained after ${f(r.drainedAfter)} s`,
  ];
}

/** What must hold of every flood, however many devices send it. */
function assertWithstood(r: Report): void {
  assert.ok(r.running, 'the platform process still runs');
  assert.deepEqual({ connected: r.connected, refused: r.refused }, { connected: r.devices, refused: 0 }, 'every flooding device is accepted');
  assert.ok(r.rssMax - r.rssIdle <= rssGrowthMb, `RSS grew by ${(r.rssMax - r.rssIdle).toFixed(0)} MB (bound ${rssGrowthMb})`);
  assert.ok(percentile(r.health, 0.99) <= healthP99Ms, `/health p99 ${percentile(r.health, 0.99).toFixed(0)} ms (bound ${healthP99Ms})`);
  assert.ok(percentile(r.readyz, 0.99) <= healthP99Ms, `/readyz p99 ${percentile(r.readyz, 0.99).toFixed(0)} ms (bound ${healthP99Ms})`);
  assert.equal(r.probesRefused, 0, 'no probe message is refused');
  assert.ok(Math.max(...r.delivered) <= probeDeliveredMs, `every probe message is delivered within ${probeDeliveredMs} ms: ${Math.max(...r.delivered).toFixed(0)} ms`);
  assert.ok(Math.max(...r.acked) <= probeAckedMs, `every probe message is acknowledged within ${probeAckedMs} ms: ${Math.max(...r.acked).toFixed(0)} ms`);
  assert.ok(r.healthyAfter <= healthyWithinS, `/health fast again ${r.healthyAfter.toFixed(1)} s after the flood (bound ${healthyWithinS})`);
  assert.ok(r.drainedAfter <= drainedWithinS, `the writer drained ${r.drainedAfter.toFixed(1)} s after the flood (bound ${drainedWithinS})`);
}

describe('a QoS 0 flood from devices', () => {
  after(cleanupCli);

  for (const devices of [1, 50]) {
    test(`from ${devices} device${devices > 1 ? 's' : ''}: RSS stays bounded, /health and /readyz answer, a device beside it is delivered and acknowledged, and the platform recovers`, { timeout: 90_000 }, async (t) => {
      const r = await floodCase(devices);
      for (const line of summary(r)) t.diagnostic(line);
      assertWithstood(r);
    });
  }
});
