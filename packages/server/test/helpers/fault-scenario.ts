// One fault scenario: a `fleetwire start` process on SQLite, on a private PostgreSQL, or on a
// private PostgreSQL and NATS; two organizations' devices publishing over HTTP, MQTT and CoAP
// throughout; faults fired on a seeded schedule (kill -9 and restart of the platform, one poison
// message, a PostgreSQL crash and restart, a NATS kill and restart). At the end: every acknowledged
// message is stored exactly once, and the organization that did not send the poison message kept
// being stored while it was in. Shared by test/fault.test.ts (CI, short) and test/soak.ts (long).
import { type ChildProcess } from 'node:child_process';
import { Database, sqliteUrlFor } from '../../src/db/index.js';
import { RawQueries } from '../../src/db/raw.js';
import { cliEnv, cliFleet, dataFolder, exitOf, startCli, type CliFleet, type Server } from './cli.js';
import { idsPerPublisher, Publisher, sleep, type Protocol, type Target } from './publishers.js';
import { seededRandom } from './random.js';
import { freeTcpPort, freeUdpPort, privateNats, privatePostgres, type PrivateNats, type PrivatePostgres } from './services-private.js';

export type Setup = 'sqlite' | 'postgres' | 'postgres+nats';
export type Fault = 'kill' | 'poison' | 'postgres-restart' | 'nats-restart';

/** The faults of one round on each setup; a longer run repeats the round. */
export const faultRound: Record<Setup, Fault[]> = {
  sqlite: ['kill', 'poison', 'kill'],
  postgres: ['kill', 'poison', 'postgres-restart'],
  'postgres+nats': ['kill', 'poison', 'nats-restart'],
};

export interface ScenarioOptions {
  setup: Setup;
  seed: number;
  /** How long the devices publish; the faults are spread over it. */
  durationMs: number;
  /** Rounds of faultRound[setup] (1 in CI; more in the soak). */
  rounds: number;
  /** A round of other faults than faultRound[setup] (the soak's --faults). */
  round?: Fault[];
  /** Mean messages per second of each device, by protocol. */
  rates: Record<Protocol, number>;
  /** Progress lines (the seed first). */
  log: (line: string) => void;
}

export interface CountRow {
  publisher: string;
  sent: number;
  acked: number;
  refused: number;
  unanswered: number;
  /** Distinct ids of this publisher found stored (acknowledged or not). */
  stored: number;
  /** Acknowledged and not stored. */
  lost: number;
  /** Acknowledged and stored more than once. */
  duplicated: number;
  /** Acknowledged CoAP messages stored twice because their request was retransmitted across a restart (allowed). */
  retransmitted: number;
  /** Not acknowledged and stored more than once (allowed: at least once). */
  duplicatedUnacked: number;
  refusals: string;
}

export interface ScenarioReport {
  setup: Setup;
  seed: number;
  rows: CountRow[];
  timeline: string[];
  /** What broke a promise; empty when the scenario passed. */
  failures: string[];
  table: string;
}

const admin = { email: 'admin@example.com', password: 'change-me-please' };
/** One application/json message nested 40,000 levels deep (240 KB): it stopped the writer for everyone (issue 10). */
export const poisonPayload = '{"a":'.repeat(40_000) + '1' + '}'.repeat(40_000);
/** After the poison message, the other organization's messages acknowledged in this window… */
const poisonProbe = { fromMs: 500, toMs: 2500 };
/** …must be stored by this long after it. */
const poisonDeadlineMs = 6000;
/** The NATS consumer's ack wait (FLEETWIRE_NATS_ACK_WAIT): messages a killed writer held come back after it. */
const natsAckWaitMs = 1000;

export async function runScenario(o: ScenarioOptions): Promise<ScenarioReport> {
  const random = seededRandom(o.seed);
  const started = Date.now();
  const at = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
  const timeline: string[] = [];
  const note = (line: string) => {
    timeline.push(`${at()} ${line}`);
    o.log(`[${o.setup}] ${at()} ${line}`);
  };
  const failures: string[] = [];
  let postgres: PrivatePostgres | undefined;
  let nats: PrivateNats | undefined;
  let server: Server | undefined;
  let reader: Database | undefined;
  const publishers: Publisher[] = [];
  try {
    if (o.setup !== 'sqlite') postgres = await privatePostgres();
    if (o.setup === 'postgres+nats') nats = await privateNats();
    const dataDir = dataFolder();
    const target: Target = { api: `http://127.0.0.1:${await freeTcpPort()}`, mqttPort: await freeTcpPort(), coapPort: await freeUdpPort() };
    const env = cliEnv(dataDir, {
      FLEETWIRE_HTTP_PORT: new URL(target.api).port,
      FLEETWIRE_MQTT_PORT: String(target.mqttPort),
      FLEETWIRE_COAP_PORT: String(target.coapPort),
      FLEETWIRE_ADMIN_EMAIL: admin.email,
      FLEETWIRE_ADMIN_PASSWORD: admin.password,
      ...(postgres ? { FLEETWIRE_DATABASE_URL: postgres.url } : {}),
      ...(nats ? { FLEETWIRE_NATS_URL: nats.url, FLEETWIRE_NATS_ACK_WAIT: `${natsAckWaitMs}ms` } : {}),
    });
    server = await startCli(env);
    note(`platform started (seed ${o.seed})`);
    reader = await Database.open({ url: postgres ? postgres.url : sqliteUrlFor(dataDir), poolSize: 2 });
    const queries = new RawQueries(reader);
    const fleets = { A: await cliFleet(server.api, admin, { devices: 3 }), B: await cliFleet(server.api, admin, { devices: 3 }) };

    // A sends the poison message; both publish on every protocol (A's MQTT device speaks 3.1.1, B's 5)
    const plan: [keyof typeof fleets, Protocol, 4 | 5 | undefined][] = [
      ['A', 'http', undefined],
      ['A', 'mqtt', 4],
      ['A', 'coap', undefined],
      ['B', 'http', undefined],
      ['B', 'mqtt', 5],
      ['B', 'coap', undefined],
    ];
    plan.forEach(([org, protocol, mqttVersion], k) => {
      const fleet: CliFleet = fleets[org];
      publishers.push(
        new Publisher(target, {
          index: k + 1,
          org,
          channel: fleet.channel,
          device: fleet.devices[k % 3]!,
          protocol,
          rate: o.rates[protocol],
          window: protocol === 'mqtt' ? 32 : 8,
          seed: o.seed * 31 + k,
          ...(mqttVersion ? { mqttVersion } : {}),
        }),
      );
    });
    for (const p of publishers) p.start();
    const t0 = Date.now();
    note('publishing');

    const stored = async (channel: string): Promise<Map<number, number>> => {
      const rows = await queries.all<{ value: number; n: number }>("SELECT value, CAST(COUNT(*) AS INTEGER) AS n FROM message_records WHERE channel = ? AND name = 'seq' GROUP BY value", [channel]);
      return new Map(rows.map((r) => [Number(r.value), Number(r.n)]));
    };

    // the schedule: one fault per slot, at a seeded point within 15 % of the slot either side of its end
    const faults = Array.from({ length: o.rounds }, () => o.round ?? faultRound[o.setup]).flat();
    const slot = o.durationMs / (faults.length + 1);
    const schedule = faults.map((fault, i) => ({ fault, atMs: (i + 1) * slot + (random() - 0.5) * 0.3 * slot }));
    note(`schedule: ${schedule.map((s) => `${s.fault} at ${((t0 - started + s.atMs) / 1000).toFixed(1)} s`).join(', ')}`);
    let lastKill = 0;
    const kills: number[] = [];
    for (const { fault, atMs } of schedule) {
      await sleep(t0 + atMs - Date.now());
      if (fault === 'kill') {
        const child: ChildProcess = server.child;
        child.kill('SIGKILL');
        await exitOf(child);
        note('platform killed (SIGKILL)');
        const killedAt = Date.now();
        kills.push(killedAt);
        server = await startCli(env);
        lastKill = Date.now();
        note(`platform restarted (listening ${((lastKill - killedAt) / 1000).toFixed(1)} s after the kill)`);
      } else if (fault === 'postgres-restart') {
        await postgres!.crash();
        note('PostgreSQL stopped (immediate)');
        await sleep(1000 + random() * 2000);
        await postgres!.start();
        note('PostgreSQL started');
      } else if (fault === 'nats-restart') {
        await nats!.kill();
        note('NATS killed (SIGKILL)');
        await sleep(1000 + random() * 2000);
        await nats!.start();
        note('NATS started');
      } else {
        await sendPoison(server.api, fleets.A, note, failures);
        // the other organization as a whole must have been acknowledged and stored meanwhile (one
        // protocol alone may have had nothing in the window: CoAP's retransmission backoff after a restart)
        const sentAt = Date.now();
        await sleep(poisonDeadlineMs);
        let dueTotal = 0;
        for (const p of publishers.filter((q) => q.org === 'B')) {
          const due = [...p.acked].filter(([, t]) => t >= sentAt + poisonProbe.fromMs && t <= sentAt + poisonProbe.toMs).map(([id]) => id);
          const have = await stored(p.channel);
          const missing = due.filter((id) => !have.has(id));
          dueTotal += due.length;
          if (missing.length > 0) failures.push(`${label(p)}: ${missing.length} of ${due.length} messages acknowledged ${poisonProbe.fromMs}–${poisonProbe.toMs} ms after the poison message not stored ${poisonDeadlineMs} ms after it (seed ${o.seed})`);
          note(`poison probe ${label(p)}: ${due.length - missing.length} of ${due.length} stored in time`);
        }
        if (dueTotal === 0) failures.push(`B: nothing acknowledged ${poisonProbe.fromMs}–${poisonProbe.toMs} ms after the poison message (seed ${o.seed})`);
      }
    }
    await sleep(t0 + o.durationMs - Date.now());
    await Promise.all(publishers.map((p) => p.stop(10_000)));
    note('publishing stopped');

    // the writer catches up: until every acknowledged id is stored, or nothing new lands for 5 s
    // (and, with NATS, the ack wait after the last kill has passed)
    const acked = (p: Publisher) => p.acked.size;
    let last = -1;
    let lastChange = Date.now();
    const drainDeadline = Date.now() + 90_000;
    let counts = new Map<string, Map<number, number>>();
    for (;;) {
      counts = new Map();
      for (const f of Object.values(fleets)) counts.set(f.channel, await stored(f.channel));
      const missing = publishers.reduce((n, p) => n + [...p.acked.keys()].filter((id) => !counts.get(p.channel)!.has(id)).length, 0);
      const total = [...counts.values()].reduce((n, m) => n + m.size, 0);
      if (total !== last) {
        last = total;
        lastChange = Date.now();
      }
      const quiet = Date.now() - lastChange > 5000 && (!nats || Date.now() - lastKill > natsAckWaitMs + 5000);
      if (missing === 0 || quiet || Date.now() > drainDeadline) {
        note(`writer caught up: ${total} messages stored, ${missing} acknowledged ones missing (of ${publishers.reduce((n, p) => n + acked(p), 0)})`);
        break;
      }
      await sleep(500);
    }

    const rows = publishers.map((p) => countRow(p, counts.get(p.channel)!, kills));
    /** A few of the ids, each with when its acknowledgement came (to place it against the timeline). */
    const examples = (p: Publisher, ids: number[]) => ids.slice(0, 5).map((id) => `${id} acked at ${((p.acked.get(id)! - started) / 1000).toFixed(1)} s`).join(', ');
    rows.forEach((r, k) => {
      const p = publishers[k]!;
      if (r.acked === 0) failures.push(`${r.publisher}: no message acknowledged (seed ${o.seed})`);
      if (r.lost > 0) failures.push(`${r.publisher}: ${r.lost} of ${r.acked} acknowledged messages not stored, e.g. ${examples(p, r.lostIds)} (seed ${o.seed})`);
      if (r.duplicated > 0) failures.push(`${r.publisher}: ${r.duplicated} acknowledged messages stored more than once, e.g. ${examples(p, r.duplicatedIds)} (seed ${o.seed})`);
    });
    await server.stop();
    return { setup: o.setup, seed: o.seed, rows, timeline, failures, table: countsTable(o.setup, o.seed, rows) };
  } finally {
    for (const p of publishers) await p.stop(0);
    if (server) await server.stop();
    await reader?.close();
    await nats?.close();
    await postgres?.close();
  }
}

/** Sends the poison message once from A's HTTP device; any answer is allowed (202, or 400 where it is refused at the door). */
async function sendPoison(api: string, fleet: CliFleet, note: (l: string) => void, failures: string[]): Promise<void> {
  let status: string;
  try {
    const res = await fetch(`${api}/channels/${fleet.channel}/messages/poison`, {
      method: 'POST',
      headers: { authorization: `Device ${fleet.devices[0]!.secret}`, 'content-type': 'application/json' },
      body: poisonPayload,
      signal: AbortSignal.timeout(10_000),
    });
    status = `HTTP ${res.status}`;
    await res.arrayBuffer();
  } catch (e) {
    status = `no answer (${(e as Error).message})`;
    failures.push(`the poison message got ${status}`);
  }
  note(`poison message (${poisonPayload.length} bytes of JSON nested 40,000 deep) sent by A/http: ${status}`);
}

/** `A/http`, `B/mqtt5`: organization, protocol and MQTT version. */
function label(p: Publisher): string {
  return `${p.org}/${p.protocol}${p.mqttVersion === 4 ? '3.1.1' : (p.mqttVersion ?? '')}`;
}

/**
 * A confirmable CoAP request sent before a kill and answered after the restart was taken by the
 * killed process (stored, never answered) and again, as new, by the next one: RFC 7252's duplicate
 * detection lives in the memory of one process. That duplicate is at-least-once delivery, not a
 * broken acknowledgement: counted apart (retransmitted), never as duplicated.
 */
function retransmittedAcrossRestart(p: Publisher, id: number, kills: number[]): boolean {
  const sent = p.sentAt.get(id);
  const acked = p.acked.get(id);
  return p.protocol === 'coap' && sent !== undefined && acked !== undefined && kills.some((k) => sent < k && k < acked);
}

function countRow(p: Publisher, stored: Map<number, number>, kills: number[]): CountRow & { lostIds: number[]; duplicatedIds: number[] } {
  const lost: number[] = [];
  const duplicated: number[] = [];
  let retransmitted = 0;
  for (const id of p.acked.keys()) {
    const n = stored.get(id) ?? 0;
    if (n === 0) lost.push(id);
    else if (n > 1 && retransmittedAcrossRestart(p, id, kills)) retransmitted++;
    else if (n > 1) duplicated.push(id);
  }
  let mine = 0;
  let duplicatedUnacked = 0;
  for (const [id, n] of stored) {
    if (Math.floor(id / idsPerPublisher) !== p.index) continue;
    mine++;
    if (n > 1 && !p.acked.has(id)) duplicatedUnacked++;
  }
  return {
    publisher: label(p),
    sent: p.sent,
    acked: p.acked.size,
    refused: p.refusedTotal,
    unanswered: p.unanswered,
    stored: mine,
    lost: lost.length,
    duplicated: duplicated.length,
    retransmitted,
    lostIds: lost,
    duplicatedIds: duplicated,
    duplicatedUnacked,
    refusals: [...p.refused].map(([reason, n]) => `${reason} ×${n}`).join(', '),
  };
}

/** The counts as a Markdown table, one row per device and a total. */
export function countsTable(setup: Setup, seed: number, rows: CountRow[]): string {
  const columns = ['sent', 'acked', 'refused', 'unanswered', 'stored', 'lost', 'duplicated', 'retransmitted', 'duplicatedUnacked'] as const;
  const total = Object.fromEntries(columns.map((c) => [c, rows.reduce((n, r) => n + r[c], 0)])) as Record<(typeof columns)[number], number>;
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [
    `${setup}, seed ${seed}:`,
    line(['device', 'sent', 'acked', 'refused', 'unanswered', 'stored', 'lost', 'dup. acked', 'retransmitted', 'dup. unacked', 'refusals']),
    line(Array(11).fill('---')),
    ...rows.map((r) => line([r.publisher, ...columns.map((c) => r[c]), r.refusals])),
    line(['total', ...columns.map((c) => total[c]), '']),
  ].join('\n');
}
