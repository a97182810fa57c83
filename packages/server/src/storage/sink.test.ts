import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { uuidv7 } from '../core/ids.js';
import { RawQueries } from '../db/raw.js';
import type { Envelope } from '../messaging/envelope.js';
import { anotherHandle, openTestDatabase, testDatabaseKind, type TestDatabase } from '../../test/helpers/database.js';
import { MessageReaders } from './readers.js';
import { toRows } from './rows.js';
import { createMessageSink, idBoundary, type MessageSink } from './sink.js';

const t0 = Date.UTC(2026, 0, 1); // ms

function envelope(receivedAt: number, contentType: string, payload: unknown, channel = 'ch'): Envelope {
  return { id: uuidv7(receivedAt), org: 'org', channel, subtopic: '', publisher: 'dev', protocol: 'http', contentType, payload: Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload)), receivedAt };
}
const senml = (at: number, pack: unknown[], channel?: string) => envelope(at, 'application/senml+json', pack, channel);

describe('message sink', () => {
  let t: TestDatabase;
  let sink: MessageSink;
  let readers: MessageReaders;
  let q: RawQueries;
  const count = async (table: string, channel: string) => Number((await q.all<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table} WHERE channel = ?`, [channel]))[0]!.n);
  const write = (envs: Envelope[]) => sink.write(toRows(envs, 1024));
  before(async () => {
    t = await openTestDatabase();
    sink = createMessageSink(t.db);
    readers = new MessageReaders(t.db);
    q = new RawQueries(t.db);
  });
  after(() => t.cleanup());

  test('a redelivered batch is stored once, also when it comes back with new messages or twice in one batch', async () => {
    const a = senml(t0, [{ n: 'x', v: 1 }, { n: 'y', v: 2 }], 'dup');
    const b = envelope(t0 + 1, 'application/json', { temp: 20, note: 'hi' }, 'dup');
    const c = envelope(t0 + 2, 'application/octet-stream', 'raw', 'dup');
    await write([a, b, c]);
    await write([a, b, c]); // redelivered after a crash
    const d = senml(t0 + 3, [{ n: 'x', v: 3 }], 'dup');
    await write([a, d, d, c]);
    assert.equal(await count('message_records', 'dup'), 2 + 1 + 1);
    assert.equal(await count('message_documents', 'dup'), 1);
    assert.equal(await count('message_payloads', 'dup'), 1);
    const latest = await readers.latest({ channel: 'dup' });
    assert.deepEqual(latest.map((r) => [r.name, r.value]), [['temp', 20], ['x', 3], ['y', 2]]);
  });

  test('latest value per name follows record time, not the order of arrival', async () => {
    const at = t0 / 1000;
    await write([senml(t0, [{ n: 'v', t: at + 10, v: 10 }, { n: 'v', t: at + 5, v: 5 }], 'late')]);
    await write([senml(t0 + 1, [{ n: 'v', t: at + 2, v: 2 }, { n: 'w', t: at + 1, v: 1 }], 'late')]); // older readings arrive later
    assert.deepEqual((await readers.latest({ channel: 'late' })).map((r) => [r.name, r.value]), [['v', 10], ['w', 1]]);
    await write([senml(t0 + 2, [{ n: 'v', t: at + 10, v: 11 }], 'late')]); // same time, later message: the later one wins, as in the records' order
    assert.deepEqual((await readers.latest({ channel: 'late' })).map((r) => [r.name, r.value]), [['v', 11], ['w', 1]]);
    // a filter the latest values do not key on still gives the newest matching record
    assert.deepEqual((await readers.latest({ channel: 'late', to: at + 6 })).map((r) => [r.name, r.value]), [['v', 5], ['w', 1]]);
    assert.deepEqual((await readers.latest({ channel: 'late', publisher: 'someone-else' })), []);
  });

  test('a publisher that sends the same name over two protocols in one batch keeps one latest value, the newest', async () => {
    const at = t0 / 1000;
    const over = (protocol: Envelope['protocol'], ms: number, t: number, v: number) => ({ ...senml(t0 + ms, [{ n: 'temp', t, v }], 'protocols'), protocol });
    await write([over('http', 0, at + 1, 1), over('mqtt', 1, at + 2, 2), over('coap', 2, at, 0)]);
    assert.deepEqual((await readers.latest({ channel: 'protocols' })).map((r) => [r.name, r.value, r.protocol]), [['temp', 2, 'mqtt']]);
    assert.equal(await count('message_records', 'protocols'), 3);
  });

  test('CSV export pages through records of one time without losing or repeating any, in both directions', async () => {
    // 1,201 packs of 10 records that share one time: every page boundary (5,000 rows) falls among equal times
    const at = t0 / 1000;
    // received an hour after t0: past the boundary of the retention test below, which would otherwise prune these 12,010 rows two at a time
    const receivedFrom = t0 + 3_600_000;
    const packs = Array.from({ length: 1201 }, (_, m) => senml(receivedFrom + m, Array.from({ length: 10 }, (_, i) => ({ n: `n${i}`, t: at, v: m * 10 + i })), 'csv-pages'));
    for (let i = 0; i < packs.length; i += 400) await write(packs.slice(i, i + 400));
    const values = async (dir: 'asc' | 'desc') => {
      const out: number[] = [];
      for await (const r of readers.allRecords({ channel: 'csv-pages' }, dir, 1_000_000)) out.push(r.value!);
      return out;
    };
    const stored = Array.from({ length: 12_010 }, (_, v) => v); // the order they were stored in
    assert.deepEqual(await values('asc'), stored);
    assert.deepEqual(await values('desc'), stored.reverse());
  });

  test('writers on two nodes that meet a new channel and source at once agree on their keys', { skip: testDatabaseKind() === 'sqlite' && 'SQLite has one writer (one process owns the file)' }, async () => {
    // a second connection pool on the same schema, as another node has
    const other = await anotherHandle(t.db, 2);
    try {
      const sinks = [sink, createMessageSink(other), createMessageSink(t.db), createMessageSink(other)];
      for (let round = 0; round < 5; round++) {
        const channel = `race-${round}`;
        // every sink stores messages of the same new channel and publishers in one transaction each, all at once
        await Promise.all(sinks.map((k, i) => k.write(toRows([0, 1, 2].map((p) => ({ ...senml(t0 + i * 10 + p, [{ n: 'v', v: i }], channel), publisher: `dev-${p}` })), 1024))));
        assert.equal(await count('message_records', channel), sinks.length * 3);
        const keys = await q.all<{ n: number }>('SELECT COUNT(*) AS n FROM message_sources WHERE channel = ?', [channel]);
        assert.equal(Number(keys[0]!.n), 3);
      }
    } finally {
      await other.close();
    }
  });

  test('latest values are exact at once, and a sink that crashed holding them leaves them to the next', async () => {
    const at = t0 / 1000;
    const stored = async (channel: string) => Number((await q.all<{ n: number }>('SELECT COUNT(*) AS n FROM latest_records WHERE channel = ?', [channel]))[0]!.n);
    // one sink stores two batches and "crashes": it is dropped without close()
    const crashed = createMessageSink(t.db);
    await crashed.write(toRows([senml(t0, [{ n: 'a', t: at, v: 1 }, { n: 'b', t: at, v: 1 }], 'held')], 1024));
    await crashed.write(toRows([senml(t0 + 1, [{ n: 'a', t: at + 1, v: 2 }], 'held')], 1024));
    assert.deepEqual((await readers.latest({ channel: 'held' })).map((r) => [r.name, r.value]), [['a', 2], ['b', 1]]);
    assert.deepEqual((await readers.latest({ channel: 'held', publisher: 'dev' })).map((r) => [r.name, r.value]), [['a', 2], ['b', 1]]);
    // on SQLite the values wait in the sink (the readers merged them in from the records); PostgreSQL upserts with each batch
    if (testDatabaseKind() === 'sqlite') assert.equal(await stored('held'), 0);
    else assert.equal(await stored('held'), 2);
    // the next sink on the database writes what the crashed one held before its first batch
    const next = createMessageSink(t.db);
    await next.write(toRows([senml(t0 + 2, [{ n: 'c', t: at, v: 3 }], 'held-next')], 1024));
    assert.equal(await stored('held'), 2);
    assert.deepEqual((await readers.latest({ channel: 'held' })).map((r) => [r.name, r.value]), [['a', 2], ['b', 1]]);
    // and what it holds itself goes out on close
    await next.close();
    assert.equal(await stored('held-next'), 1);
    assert.deepEqual((await readers.latest({ channel: 'held-next' })).map((r) => [r.name, r.value]), [['c', 3]]);
  });

  test('held latest values go out with a later batch once due, or on their own when none comes', async () => {
    const at = t0 / 1000;
    const stored = async (channel: string) => (await q.all<{ name: string; value: number }>('SELECT name, value FROM latest_records WHERE channel = ? ORDER BY name', [channel])).map((r) => [r.name, r.value]);
    const own = createMessageSink(t.db);
    await own.write(toRows([senml(t0, [{ n: 'x', t: at, v: 1 }], 'due')], 1024));
    await new Promise((r) => setTimeout(r, 600)); // past the hold (200 ms): the sink's timer wrote them
    assert.deepEqual(await stored('due'), [['x', 1]]);
    await own.write(toRows([senml(t0 + 1, [{ n: 'x', t: at + 1, v: 2 }], 'due')], 1024));
    await new Promise((r) => setTimeout(r, 250));
    await own.write(toRows([senml(t0 + 2, [{ n: 'y', t: at, v: 3 }], 'due')], 1024)); // takes x = 2 along, holds y
    assert.equal((await stored('due')).find(([n]) => n === 'x')![1], 2);
    assert.deepEqual((await readers.latest({ channel: 'due' })).map((r) => [r.name, r.value]), [['x', 2], ['y', 3]]);
    await own.close();
    assert.deepEqual(await stored('due'), [['x', 2], ['y', 3]]);
  });

  test('after retention removed every record, new records still reach the latest values', { skip: testDatabaseKind() !== 'sqlite' && 'about SQLite rowids, which start again from 1 in an empty table' }, async () => {
    const db = await openTestDatabase();
    try {
      const own = createMessageSink(db.db);
      const ownReaders = new MessageReaders(db.db);
      const many = Array.from({ length: 50 }, (_, i) => senml(t0 + i, [{ n: 'v', v: i }], 'empty'));
      await own.write(toRows(many, 1024));
      for (let n = -1; n !== 0; ) n = await own.pruneBefore(idBoundary(t0 + 3_600_000), 1000);
      assert.deepEqual(await ownReaders.latest({ channel: 'empty' }), []);
      await own.write(toRows([senml(t0 + 3_600_001, [{ n: 'v', v: 100 }], 'empty')], 1024));
      assert.deepEqual((await ownReaders.latest({ channel: 'empty', publisher: 'dev' })).map((r) => r.value), [100]);
      await own.close();
      const raw = await new RawQueries(db.db).all<{ value: number }>('SELECT value FROM latest_values', []);
      assert.deepEqual(raw.map((r) => r.value), [100]);
    } finally {
      await db.cleanup();
    }
  });

  test('aggregations agree with the records: before and after the per-minute sums catch up, and after retention cuts into a minute', async () => {
    const base = t0 / 1000 + 7.25; // records off the minute boundaries
    type Rec = { at: number; name: string; publisher: string; subtopic: string; t: number; v?: number };
    const recs: Rec[] = [];
    const envs: Envelope[] = [];
    for (let i = 0; i < 240; i++) {
      const at = t0 + i * 1000;
      const [publisher, subtopic] = [i % 3 === 0 ? 'dev2' : 'dev', i % 4 === 0 ? 'x' : ''];
      const pack: Rec[] = [
        { at, name: 'a', publisher, subtopic, t: base + i * 3.7, v: (i * 37) % 101 },
        { at, name: 'b', publisher, subtopic, t: base + i * 3.7 + 1.5, v: -((i * 13) % 29) / 4 },
        // not a number: counted, never averaged
        ...(i % 5 === 0 ? [{ at, name: 'a', publisher, subtopic, t: base + i * 3.7 + 2 }] : []),
      ];
      recs.push(...pack);
      envs.push({ ...senml(at, pack.map((r) => (r.v === undefined ? { n: r.name, t: r.t, vb: true } : { n: r.name, t: r.t, v: r.v })), 'minutes'), publisher, subtopic });
    }
    const expected = (kept: Rec[], f: { name?: string; publisher?: string; subtopic?: string; from?: number; to?: number }, agg: 'count' | 'avg' | 'min' | 'max' | 'sum', interval: number) => {
      const groups = new Map<string, { name: string; time: number; values: number[]; n: number }>();
      for (const r of kept) {
        if ((f.name !== undefined && r.name !== f.name) || (f.publisher !== undefined && r.publisher !== f.publisher) || (f.subtopic !== undefined && r.subtopic !== f.subtopic)) continue;
        if ((f.from !== undefined && r.t < f.from) || (f.to !== undefined && r.t >= f.to)) continue;
        if (agg !== 'count' && r.v === undefined) continue;
        const time = Math.trunc(r.t / interval) * interval;
        const g = groups.get(`${time}/${r.name}`) ?? { name: r.name, time, values: [], n: 0 };
        g.n++;
        if (r.v !== undefined) g.values.push(r.v);
        groups.set(`${time}/${r.name}`, g);
      }
      const value = (g: { values: number[]; n: number }) => ({ count: g.n, sum: g.values.reduce((a, b) => a + b, 0), avg: g.values.reduce((a, b) => a + b, 0) / g.values.length, min: Math.min(...g.values), max: Math.max(...g.values) })[agg];
      return [...groups.values()].sort((x, y) => x.time - y.time || (x.name < y.name ? -1 : 1)).map((g) => ({ name: g.name, time: g.time, value: value(g), count: g.n }));
    };
    const filters = [
      {},
      { name: 'a' },
      { name: 'b', publisher: 'dev2' },
      { subtopic: 'x' },
      { from: base + 100, to: base + 700 }, // part-minutes at both ends
      { name: 'a', from: t0 / 1000 + 120, to: t0 / 1000 + 600 }, // whole minutes
      { from: base + 300 },
      { to: base + 500.5 },
      { from: base + 10, to: base + 50 }, // inside one minute
    ];
    const check = async (kept: Rec[], when: string) => {
      for (const f of filters) {
        for (const agg of ['count', 'avg', 'min', 'max', 'sum'] as const) {
          for (const interval of [60, 300, 3600, 45]) {
            const got = await readers.aggregate({ channel: 'minutes', ...f }, agg, interval, { offset: 0, limit: 1000, dir: 'asc' });
            const want = expected(kept, f, agg, interval);
            const what = `${when}: ${agg} per ${interval} s of ${JSON.stringify(f)}`;
            assert.equal(got.total, want.length, what);
            assert.deepEqual(got.items.map((g) => [g.name, g.time, g.count]), want.map((g) => [g.name, g.time, g.count]), what);
            got.items.forEach((g, i) => assert.ok(Math.abs(g.value - want[i]!.value) < 1e-9, `${what}: ${g.value} against ${want[i]!.value}`));
          }
        }
      }
    };
    const rolledUp = async () => (testDatabaseKind() === 'sqlite' ? Number((await q.all<{ n: number }>('SELECT COALESCE(SUM(n), 0) AS n FROM record_minutes m JOIN message_channels c ON c.key = m.channel_key WHERE c.channel = ?', ['minutes']))[0]!.n) : undefined);
    // a sink stores 100 messages and "crashes" (dropped without close) holding their sums
    const crashed = createMessageSink(t.db);
    await crashed.write(toRows(envs.slice(0, 100), 1024));
    const upTo = (i: number) => recs.filter((r) => r.at < t0 + i * 1000);
    await check(upTo(100), 'records written');
    // the next rolls them up from the records before its first batch
    const own = createMessageSink(t.db);
    await own.write(toRows(envs.slice(100, 200), 1024));
    await check(upTo(200), 'some rolled up');
    await new Promise((r) => setTimeout(r, 600)); // past the hold (200 ms): the timers flushed what each held, the crashed one's too
    if (testDatabaseKind() === 'sqlite') assert.equal(await rolledUp(), upTo(200).length, 'every record so far rolled up, once');
    await check(upTo(200), 'rolled up');
    await own.write(toRows(envs.slice(200), 1024));
    await check(recs, 'rolled up and after');
    // retention takes the messages received before the 100th: record times cut into the minute of base + 370 s
    for (let n = -1; n !== 0; ) n = await own.pruneBefore(idBoundary(t0 + 100_000), 50);
    const kept = recs.filter((r) => r.at >= t0 + 100_000);
    await check(kept, 'after retention');
    if (testDatabaseKind() === 'sqlite') assert.equal(await rolledUp(), kept.length, 'the minutes hold the records retention kept');
    await own.close();
  });

  test('retention prunes records, documents, payloads, message ids and latest values of pruned records', async () => {
    const old = [senml(t0, [{ n: 'kept', v: 1 }, { n: 'gone', v: 1 }], 'ret'), envelope(t0 + 1, 'application/json', { j: 1 }, 'ret'), envelope(t0 + 2, 'text/plain', 'old', 'ret')];
    const young = [senml(t0 + 60_000, [{ n: 'kept', t: t0 / 1000 - 100, v: 2 }], 'ret'), envelope(t0 + 60_001, 'text/plain', 'new', 'ret')];
    await write([...old, ...young]);
    let pruned = 0;
    for (let n = -1; n !== 0; pruned += n) n = await sink.pruneBefore(idBoundary(t0 + 30_000), 2); // small chunks: several rounds
    assert.ok(pruned >= 3 + 1 + 1);
    assert.equal(await count('message_records', 'ret'), 1);
    assert.equal(await count('message_documents', 'ret'), 0);
    assert.equal(await count('message_payloads', 'ret'), 1);
    const ids = await q.all<{ id: string }>('SELECT id FROM message_ids WHERE id < ?', [idBoundary(t0 + 30_000)]);
    assert.deepEqual(ids, []);
    // 'kept' falls back to the older reading that retention kept; 'gone' and 'j' have none left
    assert.deepEqual((await readers.latest({ channel: 'ret' })).map((r) => [r.name, r.value]), [['kept', 2]]);
    // a message younger than the boundary is still recognised when redelivered
    await write(young);
    assert.equal(await count('message_records', 'ret'), 1);
  });
});
