// mTLS device connects a second: Fleetwire's MQTT TLS listener beside Mosquitto, the same devices,
// certificates, keys and generator (bench/mtls/load.ts, processes of their own) in the same run.
// - The devices: `--devices` P-256 keys made by the bench, enrolled once through Fleetwire
//   (`POST /enrol`, registered keys; bench/mtls/fleet.ts), before anything is timed.
// - Mosquitto (a private one, on a port the system picked, its config in a temp folder):
//   `require_certificate true`, `use_identity_as_username true`, cafile = the organization's
//   issuing CA and the platform root. Fleetwire: `fleetwire start` from the compiled build, SQLite,
//   FLEETWIRE_MQTT_TLS_CERT/KEY (it trusts the platform's CAs by itself). Both listeners present
//   the same P-256 certificate.
// - Each connect: TCP, a full TLS handshake (resumption off: no session is ever offered again),
//   CONNECT with the certificate alone (no username, no password) → CONNACK, DISCONNECT, close;
//   `--concurrency` at a time per generator, one after another, for `--seconds` after 1 s of
//   warm-up. The brokers are measured one after the other, each alone on the machine.
// Counted: connects that got their CONNACK in the window, ÷ its seconds; CONNACK latency from the
// TCP connect's start (the handshake's share beside it); the broker's CPU over the window (all its
// threads, ms per connect), and the generators', so that a generator-bound run shows as one.
//
//   npm run bench:mtls [-- --devices 2000 --seconds 10 --rounds 2 --concurrency 16 --generators 1]
//
// --rounds: each broker measured that many times, in the order M F, F M, M F, …; the table sums them.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { announcedPort, call, cleanupCli, cliEnv, dataFolder, login, startCli, stopChild } from '../../test/helpers/cli.js';
import { machine, numberOption, percentile, runBench, table } from '../harness.js';
import { procTicks } from '../http-publish/processes.js';
import { children, freePort, root, track, waitForPort, type Broker } from '../mqtt/brokers.js';
import { enrolFleet, listenerCertificate, specFile, type EnrolledFleet } from './fleet.js';
import type { ConnectsResult, TlsLoadSpec } from './load.js';

const here = dirname(fileURLToPath(import.meta.url));
const deviceCount = Math.max(1, Math.floor(numberOption('devices', 'FLEETWIRE_BENCH_MTLS_DEVICES', 2000)));
const seconds = numberOption('seconds', 'FLEETWIRE_BENCH_SECONDS', 10);
const concurrency = Math.max(1, Math.floor(numberOption('concurrency', 'FLEETWIRE_BENCH_MTLS_CONCURRENCY', 16)));
const roundCount = Math.max(1, Math.floor(numberOption('rounds', 'FLEETWIRE_BENCH_MTLS_ROUNDS', 2)));
const generatorCount = Math.max(1, Math.floor(numberOption('generators', 'FLEETWIRE_BENCH_GENERATORS', 1)));
const admin = { email: 'mtls-bench@example.com', password: 'mtls-bench-password' };
/** The issue's target: Fleetwire's mTLS connects a second ≥ this × Mosquitto's. */
const targetRatio = 1.0;

/** Mosquitto with client certificates required, the certificate's CN as the username. */
async function startMosquittoMtls(listener: { cert: string; key: string }, caChain: string): Promise<Broker> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'fw-bench-mosquitto-mtls-'));
  writeFileSync(join(dir, 'cas.pem'), caChain);
  writeFileSync(join(dir, 'm.conf'), [
    // as root, Mosquitto drops to the user `mosquitto`, who cannot read the bench's temp folders
    `user ${userInfo().username}`,
    `listener ${port} 127.0.0.1`,
    `cafile ${join(dir, 'cas.pem')}`,
    `certfile ${listener.cert}`,
    `keyfile ${listener.key}`,
    'require_certificate true',
    // Fleetwire's sockets have Nagle off; Mosquitto's only with this (else its CONNACK waits behind the TLS 1.3 session tickets for a delayed ACK, ~40 ms)
    'set_tcp_nodelay true',
    'use_identity_as_username true',
    'allow_anonymous false',
    'persistence false',
    'log_type error',
    '',
  ].join('\n'));
  const c = track(spawn('mosquitto', ['-c', join(dir, 'm.conf')], { stdio: 'ignore' }));
  try {
    await waitForPort(port, c);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return { name: 'Mosquitto 2 (require_certificate, use_identity_as_username)', port, pid: c.pid, stop: async () => (await stopChild(c, 10_000), rmSync(dir, { recursive: true, force: true })) };
}

interface Case {
  name: string;
  result: ConnectsResult;
  /** CPU over the window, share of one core: the broker (all its threads), the generators (summed). */
  brokerCpu: number;
  generatorCpu: number;
}

const cpuTicks = (pids: (number | undefined)[]) => pids.reduce<number>((sum, pid) => sum + (procTicks(pid) ?? 0), 0);

/** One broker under `generatorCount` generators; their results merged. */
async function measure(broker: Broker, fleet: EnrolledFleet, ca: string): Promise<Case> {
  const gens: { child: ChildProcess; spec: ReturnType<typeof specFile>; lines: AsyncIterator<string> }[] = [];
  for (let g = 0; g < generatorCount; g++) {
    // each generator has its own devices, so that no two connections share a certificate at once
    const devices = fleet.devices.filter((_, k) => k % generatorCount === g).map((d) => ({ id: d.serial, cert: d.cert, key: d.key }));
    const spec = specFile({ mode: 'connects', port: broker.port, ca, devices, concurrency, seconds, warmupSeconds: 1 } satisfies TlsLoadSpec);
    const child = track(spawn(process.execPath, ['--import', 'tsx', join(here, 'load.ts'), `@${spec.path}`], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] }));
    gens.push({ child, spec, lines: createInterface({ input: child.stdout! })[Symbol.asyncIterator]() });
  }
  const next = async (g: (typeof gens)[number]) => {
    const line = await g.lines.next();
    if (line.done) throw new Error(`the generator exited with ${g.child.exitCode}`);
    return JSON.parse(String(line.value)) as unknown;
  };
  try {
    for (const g of gens) g.child.stdin!.write('go\n');
    await Promise.all(gens.map(next)); // measuring
    const pids = gens.map((g) => g.child.pid);
    const broker0 = procTicks(broker.pid)!;
    const gen0 = cpuTicks(pids);
    const t0 = performance.now();
    const results = (await Promise.all(gens.map(next))) as ConnectsResult[];
    const window = (performance.now() - t0) / 1000;
    const brokerCpu = (procTicks(broker.pid)! - broker0) / 100 / window;
    const generatorCpu = (cpuTicks(pids) - gen0) / 100 / window;
    const merged: ConnectsResult = {
      connects: results.reduce((a, r) => a + r.connects, 0),
      seconds: Math.max(...results.map((r) => r.seconds)),
      handshakeMs: results.flatMap((r) => r.handshakeMs),
      connackMs: results.flatMap((r) => r.connackMs),
      resumed: results.reduce((a, r) => a + r.resumed, 0),
      protocols: {},
      failed: results.reduce((a, r) => a + r.failed, 0),
      errors: results.flatMap((r) => r.errors),
    };
    for (const r of results) for (const [p, n] of Object.entries(r.protocols)) merged.protocols[p] = (merged.protocols[p] ?? 0) + n;
    return { name: broker.name, result: merged, brokerCpu, generatorCpu };
  } finally {
    for (const g of gens) {
      g.child.kill();
      g.spec.remove();
    }
  }
}

/** The rounds of one broker as one case: connects and seconds summed, every sample, CPU weighted by time. */
function combine(all: Case[], name: string): Case {
  const secondsOf = (c: Case) => c.result.seconds;
  const total = all.reduce((a, c) => a + secondsOf(c), 0);
  const protocols: Record<string, number> = {};
  for (const c of all) for (const [p, n] of Object.entries(c.result.protocols)) protocols[p] = (protocols[p] ?? 0) + n;
  return {
    name,
    result: {
      connects: all.reduce((a, c) => a + c.result.connects, 0),
      seconds: total,
      handshakeMs: all.flatMap((c) => c.result.handshakeMs),
      connackMs: all.flatMap((c) => c.result.connackMs),
      resumed: all.reduce((a, c) => a + c.result.resumed, 0),
      protocols,
      failed: all.reduce((a, c) => a + c.result.failed, 0),
      errors: all.flatMap((c) => c.result.errors),
    },
    brokerCpu: all.reduce((a, c) => a + c.brokerCpu * secondsOf(c), 0) / total,
    generatorCpu: all.reduce((a, c) => a + c.generatorCpu * secondsOf(c), 0) / total,
  };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)} ms` : '-');
const pct = (xs: number[], p: number) => percentile(Float64Array.from(xs).sort(), p);

async function main(): Promise<number> {
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  console.log(`mTLS connects: ${machine()}`);
  console.log(`${fmt(deviceCount)} devices (P-256 keys, platform certificates), ${generatorCount} generator process(es) × ${concurrency} connects at a time, ${seconds} s per broker and round after 1 s of warm-up, ${roundCount} round(s)`);
  const listener = listenerCertificate();
  try {
    const server = await startCli(cliEnv(dataFolder(), {
      FLEETWIRE_ADMIN_EMAIL: admin.email, FLEETWIRE_ADMIN_PASSWORD: admin.password, FLEETWIRE_SECRET_KEY: 'c'.repeat(64),
      FLEETWIRE_MQTT_TLS_CERT: listener.cert, FLEETWIRE_MQTT_TLS_KEY: listener.key, FLEETWIRE_MQTTS_PORT: '0',
      // every connect and enrolment comes from 127.0.0.1: the per-address flood limits are not what is measured
      FLEETWIRE_MQTT_MAX_CONNECT_RATE: '0', FLEETWIRE_ENROLMENT_MAX_PER_ADDRESS: '100000000',
    }), { built: true });
    const mqttsPort = await announcedPort(server, 'MQTT over TLS listening');
    const { token } = await login(server.api, admin.email, admin.password);
    const org = (await call<{ id: string }>(server.api, 'POST', '/orgs', { token, body: { name: 'mtls' } })).body.id;
    const channel = (await call<{ id: string }>(server.api, 'POST', `/orgs/${org}/channels`, { token, body: { name: 'telemetry' } })).body.id;
    const fleet = await enrolFleet(server.api, token, org, channel, deviceCount);
    console.log(`enrolled ${fmt(deviceCount)} devices (${fmt(fleet.enrolRate)}/s, set-up, not measured)\n`);

    // rounds in the order M F F M M F …: on a machine other work shares, a drift in the CPU left
    // over weighs on both brokers alike
    const fleetwire: Broker = { name: 'Fleetwire (certificate → device, SQLite)', port: mqttsPort, pid: server.child.pid, stop: async () => {} };
    const mosquitto = await startMosquittoMtls(listener, fleet.caChain);
    const rounds: Case[][] = [];
    try {
      for (let r = 0; r < roundCount; r++) {
        const order = r % 2 === 0 ? [mosquitto, fleetwire] : [fleetwire, mosquitto];
        const round: Case[] = [];
        for (const b of order) round.push(await measure(b, fleet, listener.caPem));
        rounds.push([mosquitto, fleetwire].map((b) => round.find((c) => c.name === b.name)!));
      }
    } finally {
      await mosquitto.stop();
      await server.stop();
    }
    const cases = [mosquitto, fleetwire].map((b, i) => combine(rounds.map((round) => round[i]!), b.name));
    if (roundCount > 1) {
      console.log('per round, connects/s (Mosquitto / Fleetwire):', rounds.map((round) => round.map((c) => fmt(c.result.connects / c.result.seconds)).join(' / ')).join(', '));
    }

    console.log(table(
      ['broker', 'connects/s', 'CONNACK p50', 'CONNACK p99', 'handshake p50', 'handshake p99', 'broker CPU', 'CPU/connect', 'generator CPU', 'failed'],
      cases.map(({ name, result: r, brokerCpu, generatorCpu }) => {
        const rate = r.connects / r.seconds;
        return [name, fmt(rate), ms(pct(r.connackMs, 0.5)), ms(pct(r.connackMs, 0.99)), ms(pct(r.handshakeMs, 0.5)), ms(pct(r.handshakeMs, 0.99)), `${(brokerCpu * 100).toFixed(0)} %`, `${((brokerCpu * 1000) / rate).toFixed(2)} ms`, `${(generatorCpu * 100).toFixed(0)} %`, fmt(r.failed)];
      }),
    ));
    for (const c of cases) {
      const protocols = Object.entries(c.result.protocols).map(([p, n]) => `${p} × ${fmt(n)}`).join(', ');
      console.log(`  ${c.name}: ${protocols}; sessions resumed: ${c.result.resumed}${c.result.errors.length ? `; errors: ${c.result.errors.join('; ')}` : ''}`);
    }
    console.log('CPU: share of one core over the window (the machine has two); handshake: TCP connect + TLS handshake, CONNACK: the whole connect; every connect a full handshake, P-256 keys on both sides');

    const [m, f] = cases.map((c) => c.result.connects / c.result.seconds) as [number, number];
    const clean = cases.every((c) => c.result.failed === 0 && c.result.resumed === 0);
    const met = f >= targetRatio * m && clean;
    console.log(`\nFleetwire mTLS connects/s ${fmt(f)} = ${(f / m).toFixed(2)} × Mosquitto's ${fmt(m)} (target ≥ ${targetRatio.toFixed(1)} ×, no failure, no resumption: ${met ? 'met' : 'MISSED'})`);
    // on a shared machine a process with more threads (Node's) gets more of the CPU than a single-threaded one: the CPU per connect compares the work itself
    const cpuPer = cases.map((c) => c.brokerCpu / (c.result.connects / c.result.seconds)) as [number, number];
    console.log(`CPU per connect: Fleetwire ${(cpuPer[1] * 1000).toFixed(2)} ms, Mosquitto ${(cpuPer[0] * 1000).toFixed(2)} ms (Mosquitto's ÷ Fleetwire's: ${(cpuPer[0] / cpuPer[1]).toFixed(2)} ×)`);
    return met ? 0 : 1;
  } finally {
    listener.remove();
  }
}

runBench(main, children, cleanupCli);
