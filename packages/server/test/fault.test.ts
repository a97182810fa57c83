// The seeded fault test: one `fleetwire start` process under steady publishing from two
// organizations' devices over HTTP, MQTT QoS 1 and confirmable CoAP while faults are injected —
// kill -9 and restart of the platform, a poison message, a PostgreSQL crash and restart, a NATS kill
// and restart. Every acknowledged message must be stored exactly once, and the organization that did
// not send the poison message must keep being stored while it is in. PostgreSQL and NATS are private
// to the test (test/helpers/services-private.ts); the machine's shared ones are never touched.
// The SQLite scenario runs in the SQLite pass of scripts/test.mjs, the PostgreSQL ones in its
// PostgreSQL pass. FLEETWIRE_FAULT_SEED replays a run; `npm run soak` runs the same for longer.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupCli } from './helpers/cli.js';
import { testDatabaseKind } from './helpers/database.js';
import { runScenario, type Setup } from './helpers/fault-scenario.js';
import { programsAvailable } from './helpers/services.js';
import { privateServicePrograms } from './helpers/services-private.js';

const available = programsAvailable(privateServicePrograms(), 'postgresql nats-server');
const seed = Number(process.env.FLEETWIRE_FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31));
const setups: Setup[] = testDatabaseKind() === 'postgres' ? ['postgres', 'postgres+nats'] : ['sqlite'];
const scenario: Record<Setup, string> = {
  sqlite: 'SQLite alone: kill -9 and restart twice, a poison message between',
  postgres: 'PostgreSQL alone: kill -9 and restart, a poison message, PostgreSQL crashed and restarted',
  'postgres+nats': 'PostgreSQL and NATS: kill -9 and restart, a poison message, NATS killed and restarted',
};

// the PostgreSQL pass's two setups run side by side: each has its own PostgreSQL, NATS, data folder
// and platform process, and most of a scenario is waiting for restarts
describe(`faults under load (FLEETWIRE_FAULT_SEED=${seed})`, { skip: available === true ? false : available, concurrency: true }, () => {
  after(cleanupCli);

  for (const [k, setup] of setups.entries()) {
    test(`${scenario[setup]}: every acknowledged message is stored exactly once, and the other organization is stored throughout`, { timeout: 110_000 }, async (t) => {
      t.diagnostic(`seed ${seed}: FLEETWIRE_FAULT_SEED=${seed} replays this run`);
      const report = await runScenario({
        setup,
        seed: seed + k,
        durationMs: 20_000,
        rounds: 1,
        rates: { http: 40, mqtt: 40, coap: 20 },
        log: () => {},
      });
      for (const line of report.timeline) t.diagnostic(line);
      for (const line of report.table.split('\n')) t.diagnostic(line);
      assert.deepEqual(report.failures, [], `seed ${seed}:\n${report.table}`);
    });
  }
});
