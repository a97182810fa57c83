// The readers API over a day of data: one day of 1 Hz SenML records on a channel (86,400 per name),
// seeded through the sink, then GET /channels/:id/messages timed through the whole HTTP app
// (`inject`: routing, authorization, query, serialisation) on SQLite and on PostgreSQL.
//
//   npm run bench -- --seconds 3          (every bench)
//   npx tsx bench/readers/run.ts [--seconds 3] [--names 1] [--records 1m,10m]
//
// --names N seeds N names per second (N × 86,400 records) and still queries one of them: how the
// per-name queries fare on a busier channel. --records seeds as many names as make about that many
// records (1m: 12 names, 1,036,800 records; 10m: 116, 10,022,400), one scale after the other in
// one run (a comma list; it takes the place of --names). PostgreSQL: see bench/databases.ts.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../src/core/clock.js';
import { loadConfig } from '../../src/core/config.js';
import { uuidv7 } from '../../src/core/ids.js';
import { createLogger } from '../../src/core/logger.js';
import { buildApp } from '../../src/http/app.js';
import { createPlatform } from '../../src/platform.js';
import { emptyBatch, type RecordRow } from '../../src/storage/rows.js';
import { createMessageSink } from '../../src/storage/sink.js';
import { describeDatabase, openBenchDatabase, postgresSkipReason, type BenchDatabaseKind } from '../databases.js';
import { formatNs, formatRate, machine, measure, numberOption, table, type Measurement, type MeasureOptions } from '../harness.js';
import { baseName, random } from '../senml.js';

const target = 100e6; // ns: the 1-minute average over a day, p50 and p99, on each database
const pageTarget = 20e6; // ns: a page of 100 (first, of one name, deep by cursor), p50 and p99

const seconds = numberOption('seconds', 'FLEETWIRE_BENCH_SECONDS', 2);
const recordsOption = process.argv.includes('--records') ? process.argv[process.argv.indexOf('--records') + 1]! : undefined;
/** Names per second of each scale: --records (1m, 10m, 250k…) or --names. */
const scales = recordsOption
  ? recordsOption.split(',').map((r) => {
      const m = /^(\d+(?:\.\d+)?)([km]?)$/i.exec(r.trim());
      if (!m) throw new Error(`--records takes counts such as 1m,10m or 250k, got ${r}`);
      const n = Number(m[1]) * { '': 1, k: 1e3, m: 1e6 }[m[2]!.toLowerCase() as '' | 'k' | 'm'];
      return Math.max(1, Math.round(n / 86_400));
    })
  : [Math.max(1, Math.floor(numberOption('names', 'FLEETWIRE_BENCH_NAMES', 1)))];
/** Names of the scale being measured. */
let names = scales[0]!;
const options: MeasureOptions = { seconds, warmupSeconds: 0.5, batch: 1, concurrency: 1, minOps: 20 };
const day = 86_400;
/** Midnight UTC a week ago: a whole day in the past, as a dashboard looks back. */
const dayStart = Math.floor(Date.now() / 86_400_000 - 7) * day;
const seriesNames = ['temperature', 'humidity', 'pressure', 'co2', 'battery', 'voltage', 'rssi', 'pm25', 'noise', 'lux'];
const nameOf = (k: number) => `${baseName(k >> 4)}${seriesNames[k % seriesNames.length]}${k >= seriesNames.length ? `-${k}` : ''}`;
const queried = nameOf(0);

interface Query {
  name: string;
  /** `cursor`: what `prepare` found (the cursor of a deep page). */
  url: (channel: string, cursor: string) => string;
  /** Runs once before the case, with a GET of the app: its result goes to `url`. */
  prepare?: (get: (url: string) => Promise<Page>, channel: string) => Promise<string>;
  /** Throws unless the answer is what the seeded data must give. */
  check: (body: unknown) => void;
}

function expect(cond: boolean, what: string): void {
  if (!cond) throw new Error(`unexpected answer: ${what}`);
}

const enc = encodeURIComponent;
type Page = { total?: number; more: boolean; next?: string; messages: { time: number; name: string; value?: number; count?: number }[] };
/** Rows a deep page is past: walked to with cursors, once, before its case. */
const depth = 50_000;
const queries: Query[] = [
  {
    name: `avg per 1 min over the day, one name (1440 buckets, limit 1000)`,
    url: (c) => `/channels/${c}/messages?name=${enc(queried)}&aggregation=avg&interval=1m&limit=1000`,
    check: (b) => {
      const p = b as Page;
      expect(p.total === 1440 && p.messages.length === 1000, `total ${p.total}, ${p.messages.length} buckets`);
      expect(p.messages[0]!.time === dayStart + day - 60 && p.messages[0]!.count === 60, `newest bucket ${JSON.stringify(p.messages[0])}`);
    },
  },
  {
    name: 'page of 100, newest first (no filter)',
    url: (c) => `/channels/${c}/messages?limit=100`,
    check: (b) => {
      const p = b as Page;
      expect(p.total === undefined && p.more && p.next !== undefined && p.messages.length === 100 && p.messages[0]!.time === dayStart + day - 1, `more ${p.more}, newest ${p.messages[0]?.time}`);
    },
  },
  {
    name: 'page of 100, newest first, with total=true',
    url: (c) => `/channels/${c}/messages?limit=100&total=true`,
    check: (b) => {
      const p = b as Page;
      expect(p.total === day * names && p.messages.length === 100 && p.messages[0]!.time === dayStart + day - 1, `total ${p.total}, newest ${p.messages[0]?.time}`);
    },
  },
  {
    name: 'page of 100, newest first, one name',
    url: (c) => `/channels/${c}/messages?name=${enc(queried)}&limit=100`,
    check: (b) => {
      const p = b as Page;
      expect(p.more && p.messages.length === 100 && p.messages[0]!.name === queried, `${p.messages.length} rows`);
    },
  },
  {
    name: 'page of 100, one name, with total=true',
    url: (c) => `/channels/${c}/messages?name=${enc(queried)}&limit=100&total=true`,
    check: (b) => {
      const p = b as Page;
      expect(p.total === day && p.messages.length === 100 && p.messages[0]!.name === queried, `total ${p.total}`);
    },
  },
  {
    name: `page of 100, ${depth.toLocaleString('en-US')} rows deep, by offset`,
    url: (c) => `/channels/${c}/messages?limit=100&offset=${depth}`,
    check: (b) => {
      const p = b as Page;
      expect(p.messages.length === 100 && p.messages[0]!.time === dayStart + day - 1 - Math.floor(depth / names), `newest ${p.messages[0]?.time}`);
    },
  },
  {
    name: `page of 100, ${depth.toLocaleString('en-US')} rows deep, by cursor`,
    prepare: async (get, c) => {
      let cursor = '';
      for (let n = 0; n < depth; n += 1000) cursor = (await get(`/channels/${c}/messages?limit=1000${cursor ? `&cursor=${cursor}` : ''}`)).next!;
      return cursor;
    },
    url: (c, cursor) => `/channels/${c}/messages?limit=100&cursor=${cursor}`,
    check: (b) => {
      const p = b as Page;
      expect(p.messages.length === 100 && p.messages[0]!.time === dayStart + day - 1 - Math.floor(depth / names), `newest ${p.messages[0]?.time}`);
    },
  },
  {
    name: 'latest value of each name',
    url: (c) => `/channels/${c}/messages/latest`,
    check: (b) => {
      const m = (b as { messages: { time: number }[] }).messages;
      expect(m.length === names && m.every((r) => r.time === dayStart + day - 1), `${m.length} names`);
    },
  },
];

/** One day at 1 Hz, `names` records a second, one message per second, written in transactions of 20,000 rows. */
async function seed(sink: ReturnType<typeof createMessageSink>, org: string, channel: string, publisher: string): Promise<number> {
  const rnd = random(7);
  const started = performance.now();
  let batch = emptyBatch();
  for (let s = 0; s < day; s++) {
    const time = dayStart + s;
    const id = uuidv7(time * 1000);
    batch.ids.push(id);
    for (let k = 0; k < names; k++) {
      const row: RecordRow = {
        id, seq: k, org_id: org, channel, subtopic: '', publisher, protocol: 'mqtt', name: nameOf(k), unit: 'Cel', time, update_time: null,
        value: Math.round((21 + 3 * Math.sin((2 * Math.PI * s) / day) + rnd() - 0.5) * 100) / 100,
        string_value: null, bool_value: null, data_value: null, sum: null,
      };
      batch.records.push(row);
    }
    if (batch.records.length >= 20_000) {
      await sink.write(batch);
      batch = emptyBatch();
    }
  }
  if (batch.records.length) await sink.write(batch);
  return performance.now() - started;
}

async function casesOn(kind: BenchDatabaseKind): Promise<Measurement[]> {
  const bench = await openBenchDatabase(kind);
  const dataDir = mkdtempSync(join(tmpdir(), 'fleetwire-bench-data-'));
  try {
    const { db } = bench;
    console.log(await describeDatabase(db));
    const config = loadConfig({}, { dataDir, logLevel: 'silent' });
    const platform = await createPlatform(config, { db, clock: systemClock, log: createLogger('silent'), key: randomBytes(32), writer: false });
    const app = await buildApp(platform);
    await app.ready();
    try {
      const password = 'bench-password-not-secret';
      const user = await platform.users.create({ email: 'reader@example.com', password });
      const org = await platform.orgs.create({ userId: user.id, email: user.email, platformRole: 'user' }, 'Bench');
      const channel = await platform.channels.create(org.id, { name: 'day' });
      const login = await app.inject({ method: 'POST', url: '/auth/token', payload: { email: user.email, password } });
      const token = (login.json() as { access_token: string }).access_token;

      const ms = await seed(createMessageSink(db), org.id, channel.id, uuidv7());
      if (db.pool) await db.pool.query('VACUUM ANALYZE messages'); // what autovacuum does to an insert-only table soon after
      console.log(`  seeded ${formatRate(day * names)} records (${names} name${names > 1 ? 's' : ''} × 86,400 s) in ${(ms / 1000).toFixed(1)} s${db.pool ? '; VACUUM ANALYZE' : ''}`);

      const results: Measurement[] = [];
      const getUrl = async (url: string) => {
        const res = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
        if (res.statusCode !== 200) throw new Error(`GET ${url}: ${res.statusCode} ${res.body}`);
        return res;
      };
      for (const q of queries) {
        const url = q.url(channel.id, q.prepare ? await q.prepare(async (u) => (await getUrl(u)).json() as Page, channel.id) : '');
        const get = () => getUrl(url);
        q.check((await get()).json());
        results.push(await measure(`${kind === 'sqlite' ? 'SQLite' : 'PostgreSQL'}: ${q.name}`, get, options));
      }
      return results;
    } finally {
      await app.close();
      await platform.close();
    }
  } finally {
    await bench.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

console.log(`readers bench: ${machine()}`);
console.log(`GET /channels/:id/messages through app.inject with a user token; ${options.warmupSeconds} s warm-up, then ${seconds} s and at least ${options.minOps} requests per case\n`);
const results: Measurement[] = [];
const skip = await postgresSkipReason();
if (skip) console.log(`SKIP PostgreSQL: ${skip}`);
for (const scale of scales) {
  names = scale;
  const label = scales.length > 1 ? ` ${formatRate(day * names)}` : '';
  for (const kind of skip ? (['sqlite'] as const) : (['sqlite', 'postgres'] as const)) {
    for (const m of await casesOn(kind)) results.push({ ...m, name: m.name.replace(':', `${label}:`) });
  }
}
console.log(
  '\n' +
    table(
      ['case', 'requests/s', 'p50', 'p99', 'requests'],
      results.map((m) => [m.name, m.rate.toFixed(1), formatNs(m.p50), formatNs(m.p99), String(m.ops)]),
    ) +
    '\n',
);
console.log('p50/p99: time of one request (query, authorization and JSON), one at a time.');
let missed = false;
for (const m of results.filter((r) => r.name.includes('avg per 1 min'))) {
  const ok = m.p50 < target && m.p99 < target;
  console.log(`${m.name.split(':')[0]}, 1-minute averages over a day: p50 ${formatNs(m.p50)}, p99 ${formatNs(m.p99)} against a target of < ${formatNs(target)}: ${ok ? 'met' : 'MISSED'}`);
  if (!ok) missed = true;
}
// a page needs no count of every row and no walk past the rows before it: offsets and totals are
// there to compare with
for (const m of results.filter((r) => r.name.includes('page of 100') && !r.name.includes('total=true') && !r.name.includes('by offset'))) {
  const ok = m.p50 < pageTarget && m.p99 < pageTarget;
  console.log(`${m.name}: p50 ${formatNs(m.p50)}, p99 ${formatNs(m.p99)} against a target of < ${formatNs(pageTarget)}: ${ok ? 'met' : 'MISSED'}`);
  if (!ok) missed = true;
}
if (missed) process.exitCode = 1;
