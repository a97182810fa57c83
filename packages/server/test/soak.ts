// The fault scenarios of test/fault.test.ts for longer, with more faults: `npm run soak -- --minutes 30`.
// Options: --minutes N (split evenly over the setups; default 30), --seed N (default random, printed),
// --setups sqlite,postgres,postgres+nats (default all three), --faults kill,poison,… (one round of
// other faults than each setup's own; repeated to fill the time). Prints each setup's counts table
// and what failed; exits 1 if any promise was broken. Needs what the fault test needs (PostgreSQL's
// initdb and pg_ctl, nats-server); the machine's own PostgreSQL and NATS are not used.
import { parseArgs } from 'node:util';
import { cleanupCli } from './helpers/cli.js';
import { faultRound, runScenario, type Fault, type Setup } from './helpers/fault-scenario.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    seed: { type: 'string' },
    setups: { type: 'string', default: 'sqlite,postgres,postgres+nats' },
    faults: { type: 'string' },
  },
});
const setups = values.setups.split(',') as Setup[];
for (const s of setups) if (!(s in faultRound)) throw new Error(`unknown setup ${s} (sqlite, postgres, postgres+nats)`);
const round = values.faults?.split(',') as Fault[] | undefined;
const known: Fault[] = ['kill', 'poison', 'postgres-restart', 'nats-restart'];
for (const f of round ?? []) if (!known.includes(f)) throw new Error(`unknown fault ${f} (${known.join(', ')})`);
const seed = Number(values.seed ?? process.env.FLEETWIRE_FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31));
const durationMs = (Number(values.minutes) * 60_000) / setups.length;
/** About one round of faults per 24 s, as in the CI test. */
const rounds = Math.max(1, Math.round(durationMs / 24_000));

console.log(`soak: ${values.minutes} min over ${setups.join(', ')}, ${rounds} rounds each, seed ${seed} (--seed ${seed} replays it)`);
const tables: string[] = [];
const failures: string[] = [];
try {
  for (const [k, setup] of setups.entries()) {
    const report = await runScenario({
      setup,
      seed: seed + k,
      durationMs,
      rounds,
      ...(round ? { round } : {}),
      rates: { http: 40, mqtt: 40, coap: 20 },
      log: (line) => console.log(line),
    });
    console.log(report.table);
    tables.push(report.table);
    failures.push(...report.failures.map((f) => `${setup}: ${f}`));
  }
} finally {
  await cleanupCli();
}
console.log(`\n${tables.join('\n\n')}\n`);
if (failures.length > 0) {
  console.log(`FAILED (seed ${seed}):\n${failures.map((f) => `- ${f}`).join('\n')}`);
  process.exitCode = 1;
} else console.log(`passed (seed ${seed})`);
