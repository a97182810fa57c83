// A flood: devices that publish faster than the platform stores (QoS 0, 1-record SenML packs, as
// fast as their sockets take them), from a load generator in another process (flood.ts). Measured
// while it lasts: the platform's RSS and how fast /health and /ready answer (sampled every 50 ms);
// after it: how long until the writer has drained what it holds and /health answers in < 100 ms
// again. Mosquitto (anonymous, routing only, nothing stored) takes the same flood for its RSS.
//
//   npm run bench:flood -- [--seconds 20] [--devices 1,50]
//
// Fleetwire runs as `npm start` runs it, from the compiled build (the bench builds it first).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { announcedPort, cleanupCli, cliEnv, cliFleet, dataFolder, root, startCli } from '../../test/helpers/cli.js';
import { startFlood } from '../../test/helpers/flood.js';
import { machine, numberOption, table } from '../harness.js';
import { children, startMosquitto } from '../mqtt/brokers.js';

const seconds = numberOption('seconds', 'FLEETWIRE_BENCH_SECONDS', 20);
const deviceCounts = (process.argv.includes('--devices') ? process.argv[process.argv.indexOf('--devices') + 1]! : '1,50').split(',').map(Number);
const admin = { email: 'bench-admin@example.com', password: 'bench-password-not-secret' };

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const pct = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]! : NaN);
const ms = (n: number) => (Number.isFinite(n) ? `${n.toFixed(1)} ms` : '-');
const sleep = (n: number) => new Promise((r) => setTimeout(r, n));

async function timed(url: string): Promise<number> {
  const t = performance.now();
  try {
    await (await fetch(url, { signal: AbortSignal.timeout(5000) })).text();
  } catch {
    return 5000;
  }
  return performance.now() - t;
}

interface Row {
  broker: string;
  devices: number;
  rssStart: number;
  rssMax: number;
  health: number[];
  ready: number[];
  recovery: number;
  sent: number;
}

async function fleetwireCase(devices: number): Promise<Row> {
  const server = await startCli(cliEnv(dataFolder(), { FLEETWIRE_ADMIN_EMAIL: admin.email, FLEETWIRE_ADMIN_PASSWORD: admin.password, FLEETWIRE_PASSWORD_HASH_COST: '10' }), { built: true });
  try {
    const port = await announcedPort(server, 'MQTT listening');
    const fleet = await cliFleet(server.api, admin, { devices });
    const pid = server.child.pid!;
    const rssStart = rssMb(pid);
    const { stop } = await startFlood({ port, topic: `channels/${fleet.channel}/messages/flood`, connections: devices, credentials: fleet.devices.map((d) => ({ username: d.id, password: d.secret })) });
    const health: number[] = [];
    const ready: number[] = [];
    let rssMax = rssStart;
    const until = Date.now() + seconds * 1000;
    while (Date.now() < until) {
      health.push(await timed(`${server.api}/health`));
      ready.push(await timed(`${server.api}/ready`));
      rssMax = Math.max(rssMax, rssMb(pid));
      await sleep(50);
    }
    const sent = await stop();
    // recovered: the writer holds nothing more and /health answers in < 100 ms
    const ended = performance.now();
    for (;;) {
      const metrics = await (await fetch(`${server.api}/metrics`)).text();
      const lag = Number(/^fleetwire_writer_lag_messages (\S+)/m.exec(metrics)?.[1] ?? 0);
      if (lag === 0 && (await timed(`${server.api}/health`)) < 100) break;
      if (performance.now() - ended > 600_000) break;
      await sleep(100);
    }
    return { broker: 'Fleetwire (devices, stored)', devices, rssStart, rssMax, health, ready, recovery: (performance.now() - ended) / 1000, sent };
  } finally {
    await server.stop();
  }
}

async function mosquittoCase(devices: number): Promise<Row> {
  const m = await startMosquitto();
  try {
    const rssStart = rssMb(m.pid!);
    const { stop } = await startFlood({ port: m.port, topic: 'channels/flood/messages/flood', connections: devices });
    let rssMax = rssStart;
    const until = Date.now() + seconds * 1000;
    while (Date.now() < until) {
      rssMax = Math.max(rssMax, rssMb(m.pid!));
      await sleep(100);
    }
    const sent = await stop();
    return { broker: 'Mosquitto (routing only)', devices, rssStart, rssMax, health: [], ready: [], recovery: NaN, sent };
  } finally {
    await m.stop();
  }
}

async function main(): Promise<number> {
  execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'ignore' });
  console.log(`flood bench: ${machine()}`);
  console.log(`QoS 0 floods of 1-record SenML packs from N devices for ${seconds} s; /health and /ready sampled every 50 ms while it lasts\n`);
  const rows: Row[] = [];
  for (const n of deviceCounts) {
    rows.push(await mosquittoCase(n));
    rows.push(await fleetwireCase(n));
  }
  console.log(table(['broker', 'devices', 'sent msgs/s', 'RSS start → max', '/health p50', 'p99', 'max', '/ready p99', 'recovered in'], rows.map((r) => [
    r.broker,
    String(r.devices),
    Math.round(r.sent / seconds).toLocaleString('en-US'),
    `${r.rssStart.toFixed(0)} → ${r.rssMax.toFixed(0)} MB`,
    ms(pct(r.health, 0.5)),
    ms(pct(r.health, 0.99)),
    ms(pct(r.health, 1)),
    ms(pct(r.ready, 0.99)),
    Number.isFinite(r.recovery) ? `${r.recovery.toFixed(1)} s` : '-',
  ])));
  console.log('\nsent msgs/s: what the generator wrote into its sockets (a broker that does not read leaves it there). recovered in: from the end of the flood until the writer holds no message and /health answers in < 100 ms.');
  return 0;
}

process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});
main()
  .then(async (code) => (await cleanupCli(), process.exit(code)))
  .catch(async (e: unknown) => (console.error(e), await cleanupCli(), process.exit(2)));
