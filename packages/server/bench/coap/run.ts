// CoAP publish bench: Fleetwire started as an operator starts it (`fleetwire start`, its own data
// folder), set up through its HTTP API, then driven by a load generator in another process
// (load.ts): a window of POSTs in flight on one UDP socket, each a 10-record SenML JSON message
// (Content-Format 110) with the device secret in ?auth=, confirmable (CON) and non-confirmable
// (NON). The reference, in the same run and with the same generator: a bare node-coap server that
// answers 2.04 and does nothing else (bare-server.ts). Afterwards the stored messages are counted
// through Fleetwire's metrics.
//
//   npm run bench:coap [-- --seconds 5 --window 32]
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { announcedPort, cleanupCli, cliEnv, cliFleet, dataFolder, startCli, type Server } from '../../test/helpers/cli.js';
import { formatRate, machine, numberOption, table, runBench } from '../harness.js';
import { random, senmlPack } from '../senml.js';
import type { LoadResult, LoadSpec } from './load.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const seconds = numberOption('seconds', 'FLEETWIRE_BENCH_SECONDS', 5);
const warmupSeconds = Math.min(2, Math.max(1, seconds / 4));
const window = Math.max(1, Math.floor(numberOption('window', 'FLEETWIRE_BENCH_WINDOW', 32)));
const children = new Set<ChildProcess>();

function track(c: ChildProcess): ChildProcess {
  children.add(c);
  c.once('exit', () => children.delete(c));
  return c;
}

function runLoad(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const c = track(spawn(process.execPath, ['--import', 'tsx', join(here, 'load.ts'), JSON.stringify(spec)], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] }));
    createInterface({ input: c.stdout! }).once('line', (line) => resolve(JSON.parse(line) as LoadResult));
    c.once('exit', (code) => code !== 0 && reject(new Error(`the load generator exited with ${code}`)));
  });
}

async function startBare(): Promise<{ port: number; child: ChildProcess }> {
  const child = track(spawn(process.execPath, ['--import', 'tsx', join(here, 'bare-server.ts')], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] }));
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve((JSON.parse(line) as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`the bare server exited with ${code}`)));
  });
  return { port, child };
}

async function metric(server: Server, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${server.api}/metrics`)).text();
  return Number(pattern.exec(text)?.[1] ?? 0);
}

const ms = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)} ms` : '-');

async function main(): Promise<number> {
  console.log(`CoAP publish bench: ${machine()}`);
  console.log(`load generator: one UDP socket in another process, ${window} requests in flight, ${warmupSeconds} s warm-up then ${seconds} s per case; 10-record SenML JSON (Content-Format 110)`);
  const rnd = random(7);
  const payloads = Array.from({ length: 64 }, (_, k) => JSON.stringify(senmlPack(k, rnd)));
  const bare = await startBare();
  const server = await startCli(cliEnv(dataFolder(), { FLEETWIRE_LOG_LEVEL: 'info', FLEETWIRE_ADMIN_EMAIL: 'bench@example.com', FLEETWIRE_ADMIN_PASSWORD: 'bench-password-1', FLEETWIRE_SECRET_KEY: 'b'.repeat(64) }));
  const coapPort = await announcedPort(server, 'CoAP listening');
  const { channel, device } = await cliFleet(server.api, { email: 'bench@example.com', password: 'bench-password-1' }, { types: ['publish'] });
  const rows: string[][] = [];
  const byCase = new Map<string, LoadResult>();
  for (const confirmable of [false, true]) {
    const kind = confirmable ? 'CON' : 'NON';
    for (const target of ['reference: bare node-coap server, 2.04', 'Fleetwire (authorised, stored)'] as const) {
      const fleetwire = target.startsWith('Fleetwire');
      const r = await runLoad({
        port: fleetwire ? coapPort : bare.port,
        path: ['channels', fleetwire ? channel : 'reference', 'messages', 'bench'],
        query: [`auth=${fleetwire ? device.secret : 'not-checked'}`],
        payloads,
        contentFormat: 110,
        confirmable,
        window,
        warmupSeconds,
        seconds,
      });
      byCase.set(`${target} ${kind}`, r);
      const codes = Object.entries(r.codes).map(([c, n]) => `${n} × ${c}`).join(', ');
      rows.push([`${target} ${kind}`, formatRate(r.rate), ms(r.p50Ms), ms(r.p99Ms), String(r.lost), codes, `${Math.round(r.cpu * 100)} %`]);
    }
  }
  console.log('\nmessages/s answered (latency from send to response)');
  console.log(table(['case', 'msgs/s', 'p50', 'p99', 'lost', 'answers (timed part)', 'generator CPU'], rows));

  // every 2.04 is a message Fleetwire took: the writer must store them all
  const received = await metric(server, /^fleetwire_messages_received_total\{protocol="coap"\} (\S+)$/m);
  const t0 = performance.now();
  while ((await metric(server, /^fleetwire_writer_lag_messages (\S+)$/m)) > 0 && performance.now() - t0 < 120_000) await new Promise((r) => setTimeout(r, 100));
  const stored = await metric(server, /^fleetwire_messages_stored_total\{kind="senml"\} (\S+)$/m);
  console.log(`\nFleetwire accepted ${formatRate(received)} CoAP messages (warm-up included) and stored ${formatRate(stored)} SenML records (${formatRate(stored / 10)} messages)`);
  const ratio = (kind: string) => byCase.get(`Fleetwire (authorised, stored) ${kind}`)!.rate / byCase.get(`reference: bare node-coap server, 2.04 ${kind}`)!.rate;
  console.log(`Fleetwire / reference: NON ${ratio('NON').toFixed(2)}×, CON ${ratio('CON').toFixed(2)}×`);
  const exit = await server.stop();
  bare.child.kill('SIGTERM');
  const complete = stored === received * 10;
  if (!complete) console.log(`MISSED: stored records (${stored}) are not 10 × accepted messages (${received})`);
  return exit === 0 && complete ? 0 : 1;
}

runBench(main, children, cleanupCli);
