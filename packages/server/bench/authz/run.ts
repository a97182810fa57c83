// The device authorization decision: decisions per second answered from the cache, and answered
// cold from SQLite and PostgreSQL (the same decisions with the cache off, so the speed-up shows).
//
//   npm run bench:authz [-- --seconds 5 --devices 10000 --channels 100]
//
// PostgreSQL comes from FLEETWIRE_BENCH_POSTGRES_URL, else FLEETWIRE_TEST_POSTGRES_URL, else
// postgres://postgres@127.0.0.1:5432/test; when it is not reachable that case is skipped.
import { postgresSkipReason, postgresUrl, postgresWhere } from '../databases.js';
import { DeviceAuthorizer } from '../../src/auth/decision.js';
import { createAccessStore } from '../../src/auth/access-store.js';
import { formatRate, machine, measure, measurementTable, numberOption, type Measurement, type MeasureOptions } from '../harness.js';
import { postgresFleet, sqliteFleet, type AuthzFixture, type AuthzRequest } from './fixture.js';

const targets = { cacheHit: 1_000_000, coldSqlite: 20_000 }; // decisions/s, from the issue

const seconds = numberOption('seconds', 'FLEETWIRE_BENCH_SECONDS', 5);
const size = { devices: numberOption('devices', 'FLEETWIRE_BENCH_DEVICES', 10_000), channels: numberOption('channels', 'FLEETWIRE_BENCH_CHANNELS', 100) };
const pgPoolSize = 10;

const timing = { seconds, warmupSeconds: Math.min(2, Math.max(0.5, seconds / 5)) };
/** Cached decisions take well under a microsecond: time them 256 at a time. */
const hitOptions: MeasureOptions = { ...timing, batch: 256, concurrency: 1 };
/** Cold decisions take microseconds: time each one. */
const coldOptions: MeasureOptions = { ...timing, batch: 1, concurrency: 1 };

/** Every request of the fixture must be allowed, or the bench would time the wrong path. */
async function checkAllowed(authorizer: DeviceAuthorizer, requests: AuthzRequest[]): Promise<void> {
  for (const r of requests) {
    const d = await authorizer.authorize(r.cred, r.channelId, r.action);
    if (!d.allow) throw new Error(`fixture request denied (${d.reason}): the fleet was not seeded as intended`);
  }
}

function decide(authorizer: DeviceAuthorizer, requests: AuthzRequest[]): (i: number) => Promise<unknown> {
  const n = requests.length;
  return (i) => {
    const r = requests[i % n]!;
    return authorizer.authorize(r.cred, r.channelId, r.action);
  };
}

async function sqliteCases(): Promise<Measurement[]> {
  const fleet = await sqliteFleet(size);
  try {
    const { platform, requests } = fleet;
    const version = platform.db.sqlite!.prepare('SELECT sqlite_version() AS v').get() as { v: string };
    console.log(`SQLite ${version.v}, file in a temp folder (WAL): ${size.devices} devices, ${size.channels} channels`);

    const cached = platform.authorizer; // as wired: the configured cache size (default 100,000)
    await checkAllowed(cached, requests); // fills the cache with the whole working set
    const hit = await measure(`cache hit, ${requests.length} devices in the working set`, decide(cached, requests), hitOptions);
    const stats = cached.getStats();
    if (stats.credentialEntries < requests.length) throw new Error(`the working set does not fit the cache (${stats.credentialEntries} entries)`);

    const cold = new DeviceAuthorizer(createAccessStore(platform.db), platform.keys, 0);
    await checkAllowed(cold, requests);
    const sqlite = await measure('cold (cache off), SQLite', decide(cold, requests), coldOptions);
    return [hit, sqlite];
  } finally {
    await fleet.close();
  }
}


async function postgresCases(): Promise<Measurement[]> {
  const skip = await postgresSkipReason();
  if (skip) {
    console.log(`SKIP PostgreSQL: ${skip}`);
    return [];
  }
  let fleet: AuthzFixture;
  try {
    fleet = await postgresFleet(postgresUrl, size, pgPoolSize);
  } catch (e) {
    console.log(`SKIP PostgreSQL: ${postgresWhere()} refused the bench (${(e as Error).message}).`);
    return [];
  }
  try {
    const { platform, requests } = fleet;
    const version = (await platform.db.pool!.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
    console.log(`PostgreSQL ${version} at ${postgresWhere()}, pool of ${pgPoolSize}: ${size.devices} devices, ${size.channels} channels`);
    const cold = new DeviceAuthorizer(createAccessStore(platform.db), platform.keys, 0);
    await checkAllowed(cold, requests);
    return [
      await measure('cold (cache off), PostgreSQL', decide(cold, requests), coldOptions),
      await measure(`cold (cache off), PostgreSQL, ${pgPoolSize} in flight`, decide(cold, requests), { ...coldOptions, concurrency: pgPoolSize }),
    ];
  } finally {
    await fleet.close();
  }
}

function verdict(rate: number, target: number): string {
  return `${formatRate(rate)}/s against a target of ≥ ${formatRate(target)}/s: ${rate >= target ? 'met' : 'MISSED'}`;
}

console.log(`authorization decision bench: ${machine()}`);
console.log(`${timing.warmupSeconds} s warm-up, then ${seconds} s per case\n`);
const [hit, coldSqlite] = await sqliteCases();
const pg = await postgresCases();
console.log(`\n${measurementTable([hit!, coldSqlite!, ...pg], 'decisions')}\n`);
console.log('p50/p99: latency per decision; with batch > 1 it is the mean over each batch of decisions.');
console.log(`cache hit:      ${verdict(hit!.rate, targets.cacheHit)}`);
console.log(`cold on SQLite: ${verdict(coldSqlite!.rate, targets.coldSqlite)}`);
console.log(`the cache answers ${(hit!.rate / coldSqlite!.rate).toFixed(0)}× faster than the same decisions made cold on SQLite` +
  (pg[0] ? `, ${(hit!.rate / pg[0].rate).toFixed(0)}× faster than cold on PostgreSQL (one in flight)` : ''));
if (hit!.rate < targets.cacheHit || coldSqlite!.rate < targets.coldSqlite) process.exitCode = 1;
