// Subscription matching bench: publish throughput while 10, 1,000, 10,000 and 100,000 wildcard
// subscriptions are held (`channels/<i mod 10,000>/messages/+/x<i div 10,000>`, 100 to a
// connection, from a process of their own: bench/subscriptions/hold.ts), none matching what the
// publisher sends; p2p on Fleetwire's open listener (`fleetwire start`, the compiled build) and on
// Mosquitto in the same run, load from bench/mqtt/load.ts. The publisher's topic,
// `channels/7/messages/bench/p0`, shares its first three levels with ten held filters, so the
// index has to look past them. Then retained lookups, in this process: a wildcard filter against
// 10 and 100,000 retained topics, in memory and in SQLite.
//
//   npm run bench:subscriptions [-- --seconds 2 --rounds 3 --counts 10,100000 --baseline <folder>]
//
// Every case runs `rounds` times, the rounds interleaved (a busy machine slows a stretch of the
// run, not one case); the table shows each case's median.
//
// `--baseline <folder>`: another build of the platform (the `dist/` of an older commit, inside
// packages/server so that it finds node_modules) measured beside this one, case by case: check
// the older sources out, `npm run build`, copy `dist/` to `.bench-baseline/`, check the newer ones
// out again, then `--baseline .bench-baseline` (and delete the folder afterwards).
// Target: with 100,000 held, Fleetwire's throughput within 1.5× of its throughput with 10.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { isAbsolute, join } from 'node:path';
import { createInterface } from 'node:readline';
import { cleanupCli, cliEnv, dataFolder, stopChild } from '../../test/helpers/cli.js';
import { openBenchDatabase } from '../databases.js';
import { formatNs, machine, measure, numberOption, runBench, table, type Measurement } from '../harness.js';
import { children, freePort, root, runLoad, startMosquitto, track, waitForPort, type Broker } from '../mqtt/brokers.js';
import { RawQueries } from '../../src/db/raw.js';
import { MemoryRetainedStore, type RetainedStore } from '../../src/mqtt/retained.js';
import { SqlRetainedStore } from '../../src/mqtt/sql-store.js';
import type { HoldResult, HoldSpec } from './hold.js';

const seconds = numberOption('seconds', 'FLEETWIRE_BENCH_SECONDS', 2);
const rounds = Math.max(1, numberOption('rounds', 'FLEETWIRE_BENCH_ROUNDS', 3));
const countsArg = process.argv.indexOf('--counts');
const counts = countsArg >= 0 ? process.argv[countsArg + 1]!.split(',').map(Number) : [10, 1_000, 10_000, 100_000];
const baselineArg = process.argv.indexOf('--baseline');
const baseline = baselineArg >= 0 ? process.argv[baselineArg + 1] : undefined;
const perConnection = 100; // FLEETWIRE_MQTT_MAX_SUBSCRIPTIONS' default
const publishTopic = 'channels/7/messages/bench';

/** `fleetwire start` from a build folder, with only the open listener. */
async function startFleetwire(name: string, dist: string): Promise<Broker> {
  const port = await freePort();
  const env = cliEnv(dataFolder(), { FLEETWIRE_MQTT_PORT: 'off', FLEETWIRE_MQTT_OPEN_PORT: String(port), FLEETWIRE_LOG_LEVEL: 'error', FLEETWIRE_MQTT_MAX_CONNECT_RATE: '0' });
  const c = track(spawn(process.execPath, [join(isAbsolute(dist) ? dist : join(root, dist), 'cli.js'), 'start'], { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] }));
  c.stderr!.resume();
  await waitForPort(port, c);
  return { name, port, pid: c.pid, stop: async () => void (await stopChild(c, 10_000)) };
}

/** Holds `count` filters on the broker until `release` is called. */
async function hold(broker: Broker, count: number): Promise<{ result: HoldResult; release: () => Promise<void> }> {
  const spec: HoldSpec = { port: broker.port, count, perConnection };
  const c: ChildProcess = track(spawn(process.execPath, ['--import', 'tsx', join(root, 'bench', 'subscriptions', 'hold.ts'), JSON.stringify(spec)], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] }));
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: c.stdout! }).once('line', resolve);
    c.once('exit', (code) => reject(new Error(`holder exited with ${code}`)));
  });
  const result = JSON.parse(line) as HoldResult;
  return {
    result,
    release: async () => {
      const exited = new Promise((r) => c.once('exit', r));
      c.stdin!.write('done\n');
      await exited;
    },
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');

/** Wildcard lookups per second against `topics` retained topics (ten to a channel), and what one lookup finds. */
async function retainedLookups(name: string, store: RetainedStore, topics: number): Promise<Measurement & { found: number }> {
  for (let i = 0; i < topics; i++) await store.set({ topic: `channels/${i % 10_000}/messages/s${Math.floor(i / 10_000)}`, payload: Buffer.from('21.5'), qos: 1, retain: true });
  const found = (await store.match('channels/7/messages/+')).length;
  const m = await measure(`${name}, ${topics.toLocaleString('en-US')} retained`, () => store.match('channels/7/messages/+'), { seconds, warmupSeconds: 0.5, batch: 10, concurrency: 1 });
  return { ...m, found };
}

async function main(): Promise<number> {
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  console.log(`subscription matching bench: ${machine()}`);
  console.log(`held: channels/<i mod 10,000>/messages/+/x<i div 10,000>, ${perConnection} to a connection; p2p QoS 0 and 1, 16 B, on ${publishTopic}/p0; 1 s warm-up, then ${seconds} s per case; MQTT 3.1.1`);
  const brokers = [await startMosquitto(), await startFleetwire('Fleetwire', 'dist')];
  if (baseline) brokers.push(await startFleetwire('Fleetwire (baseline)', baseline));
  const runs = new Map<string, number[]>(); // `${broker} ${count} ${qos}` → messages/s, one per round
  for (let round = 0; round < rounds; round++) {
    for (const count of counts) {
      for (const b of brokers) {
        const h = await hold(b, count);
        if (h.result.held !== count) console.log(`  ${b.name}: ${h.result.held} of ${count} held (${h.result.errors.join('; ')})`);
        for (const qos of [0, 1] as const) {
          const r = await runLoad({ port: b.port, scenario: 'p2p', qos, payload: 16, seconds, rate: 0, topic: publishTopic });
          if (r.errors.length) console.log(`  ${b.name} ${count} QoS ${qos}: ${r.errors.join('; ')}`);
          const key = `${b.name} ${count} ${qos}`;
          runs.set(key, [...(runs.get(key) ?? []), r.rate]);
        }
        await h.release();
      }
    }
  }
  const rate = (broker: string, count: number, qos: number) => median(runs.get(`${broker} ${count} ${qos}`)!);
  const rows: string[][] = [];
  for (const count of counts) {
    for (const qos of [0, 1]) {
      const row = [`${count.toLocaleString('en-US')} held, QoS ${qos}`];
      for (const b of brokers) {
        const r = rate(b.name, count, qos);
        row.push(r > 0 ? `${fmt(r)} (${(rate(b.name, counts[0]!, qos) / r).toFixed(2)}×)` : '0 (none received)');
      }
      rows.push(row);
    }
  }
  for (const b of brokers) await b.stop();
  console.log(`\nmessages/s received, median of ${rounds} (in brackets: how many times slower than with ${counts[0]} held)`);
  console.log(table(['case', ...brokers.map((b) => b.name)], rows));

  const retainedRows: string[][] = [];
  for (const topics of [10, 100_000]) {
    const memory = await retainedLookups('memory', new MemoryRetainedStore(), topics);
    const sqlite = await openBenchDatabase('sqlite');
    try {
      const sql = await retainedLookups('SQLite', new SqlRetainedStore(new RawQueries(sqlite.db)), topics);
      for (const m of [memory, sql]) retainedRows.push([m.name, String(m.found), fmt(m.rate), formatNs(m.p50), formatNs(m.p99)]);
    } finally {
      await sqlite.close();
    }
  }
  console.log('\nretained lookups of channels/7/messages/+ (found: the topics it matches)');
  console.log(table(['store', 'found', 'lookups/s', 'p50', 'p99'], retainedRows));

  const largest = counts[counts.length - 1]!;
  const slowdown = [0, 1].map((qos) => rate('Fleetwire', counts[0]!, qos) / rate('Fleetwire', largest, qos));
  const met = slowdown.every((s) => s <= 1.5);
  console.log(`\ntarget: Fleetwire with ${largest.toLocaleString('en-US')} held within 1.5× of ${counts[0]} held: QoS 0 ${slowdown[0]!.toFixed(2)}×, QoS 1 ${slowdown[1]!.toFixed(2)}× (${met ? 'met' : 'MISSED'})`);
  return met ? 0 : 1;
}

runBench(main, children, cleanupCli);
