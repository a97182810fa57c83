import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repositoryRoot } from '../../scripts/docs-content.js';
import { startTestPlatform, type TestPlatform } from '../../test/helpers/platform.js';
import { eventually } from '../../test/helpers/eventually.js';
import { MemoryBus } from '../messaging/memory-bus.js';
import { uuidv7 } from '../core/ids.js';
import { eventTypeTable, eventTypes, parseTypeFilter, type FleetEvent } from './index.js';

describe('fleet event log', () => {
  let t: TestPlatform;
  let org: string;
  let other: string;
  const device = uuidv7();
  const user = uuidv7();

  before(async () => {
    t = await startTestPlatform({ eventRetention: 7 * 86_400_000 });
    const owner = await t.user('events-owner@example.com');
    org = (await t.request('POST', '/orgs', { token: owner.token, body: { name: 'E' } })).json().id;
    other = (await t.request('POST', '/orgs', { token: owner.token, body: { name: 'F' } })).json().id;
  });
  after(() => t.close());

  test('recorded events are stored in batches and listed newest first, with filters and paging', async () => {
    const { events } = t.platform;
    const start = t.clock.now();
    for (let i = 0; i < 1200; i++) {
      t.clock.advance(1);
      events.record({ orgId: org, type: i % 3 === 0 ? 'device.connected' : i % 3 === 1 ? 'device.disconnected' : 'twin.updated', actor: { kind: 'device', id: device }, subject: { kind: 'device', id: i % 2 === 0 ? device : uuidv7() }, data: { i } });
    }
    t.clock.advance(1);
    events.record({ orgId: org, type: 'channel.created', actor: { kind: 'user', id: user }, subject: { kind: 'channel', id: uuidv7() } });
    events.record({ orgId: other, type: 'device.created', actor: { kind: 'user', id: user }, subject: { kind: 'device', id: device } });

    const all = await events.list(org, { offset: 0, limit: 10 });
    // the organizations' own (1201), and the org.created of the audit log
    assert.equal(all.total, 1202);
    assert.equal(all.items[0]!.type, 'channel.created');
    assert.deepEqual(all.items[0]!.actor, { kind: 'user', id: user });
    assert.equal(all.items[1]!.data.i, 1199);
    assert.ok(all.items.every((e, i) => i === 0 || e.time <= all.items[i - 1]!.time));

    const prefix = parseTypeFilter('device.*');
    assert.ok(prefix.ok);
    assert.equal((await events.list(org, { offset: 0, limit: 1, types: prefix })).total, 800);
    const two = parseTypeFilter('device.connected,channel.created');
    assert.ok(two.ok);
    assert.equal((await events.list(org, { offset: 0, limit: 1, types: two })).total, 401);
    assert.equal((await events.list(org, { offset: 0, limit: 1, device })).total, 600);
    assert.equal((await events.list(org, { offset: 0, limit: 1, actor: user })).total, 1);
    const from = new Date(start + 101).toISOString();
    const to = new Date(start + 201).toISOString();
    const window = await events.list(org, { offset: 0, limit: 1000, from, to, order: 'asc' });
    assert.equal(window.total, 100);
    assert.deepEqual(window.items.map((e) => e.data.i), Array.from({ length: 100 }, (_, i) => i + 100));

    const pages: FleetEvent[] = [];
    for (let offset = 0; offset < 30; offset += 10) pages.push(...(await events.list(org, { offset, limit: 10, types: prefix })).items);
    assert.equal(new Set(pages.map((e) => e.id)).size, 30, 'pages do not overlap');
    assert.deepEqual((await events.list(other, { offset: 0, limit: 10, device })).items.map((e) => e.type), ['device.created']);
  });

  test('an event of an organization deleted meanwhile costs the others nothing', async () => {
    const { events } = t.platform;
    events.record({ orgId: uuidv7(), type: 'device.created', actor: { kind: 'system' }, subject: { kind: 'device', id: device } });
    t.clock.advance(1);
    events.record({ orgId: other, type: 'device.deleted', actor: { kind: 'system' }, subject: { kind: 'device', id: device } });
    const listed = await events.list(other, { offset: 0, limit: 10, device });
    assert.deepEqual(listed.items.map((e) => e.type), ['device.deleted', 'device.created']);
  });

  test('record never throws into its caller', () => {
    assert.doesNotThrow(() => t.platform.events.record(undefined as never));
    assert.doesNotThrow(() => t.platform.events.record({ orgId: org, type: 'device.created', actor: { kind: 'system' }, subject: { kind: 'device', id: device }, data: { big: 1n } as never }));
  });

  test('events older than the retention are pruned', async () => {
    const { events } = t.platform;
    events.record({ orgId: other, type: 'group.created', actor: { kind: 'system' }, subject: { kind: 'group', id: uuidv7() } });
    await events.flush();
    const before = (await events.list(other, { offset: 0, limit: 1 })).total;
    t.clock.advance(7 * 86_400_000 - 1000);
    events.record({ orgId: other, type: 'group.deleted', actor: { kind: 'system' }, subject: { kind: 'group', id: uuidv7() } });
    await events.flush();
    t.clock.advance(2000);
    assert.ok((await events.prune()) >= before, 'every organization\'s old events go');
    const left = await events.list(other, { offset: 0, limit: 10 });
    assert.deepEqual(left.items.map((e) => e.type), ['group.deleted']);
  });

  test('the type filter takes types, prefixes and every type, and refuses the rest', () => {
    assert.deepEqual(parseTypeFilter('device.*, twin.updated'), { ok: true, exact: ['twin.updated'], prefixes: ['device.'] });
    assert.deepEqual(parseTypeFilter('*'), { ok: true, exact: [], prefixes: [''] });
    for (const bad of ['', 'device', 'Device.created', 'device.*.x', 'device%', 'a..b', 'device.nope']) assert.equal(parseTypeFilter(bad).ok, false, bad);
    for (const type of Object.keys(eventTypes)) assert.match(type, /^[a-z_]+\.[a-z_]+$/);
  });
});

describe('fleet events across nodes', () => {
  test('an event recorded on one node reaches the live listeners of another on the same bus', async () => {
    const bus = new MemoryBus({ durable: ['writer'] });
    const a = await startTestPlatform({}, { bus });
    const b = await startTestPlatform({}, { bus, writer: false }, { sharing: a });
    try {
      const owner = await a.user('nodes@example.com');
      const org = (await a.request('POST', '/orgs', { token: owner.token, body: { name: 'N' } })).json().id;
      const seen: FleetEvent[] = [];
      const stop = b.platform.events.onEvent((e) => e.org_id === org && e.type.startsWith('device.') && seen.push(e));
      a.platform.events.record({ orgId: org, type: 'device.connected', actor: { kind: 'device', id: org }, subject: { kind: 'device', id: org } });
      await eventually(() => assert.deepEqual(seen.map((e) => e.type), ['device.connected']));
      stop();
      // and node B lists what node A stored
      await a.platform.events.flush();
      assert.equal((await b.platform.events.list(org, { offset: 0, limit: 10, types: { exact: ['device.connected'], prefixes: [] } })).total, 1);
    } finally {
      await b.close();
      await a.close();
      await bus.close();
    }
  });
});

test('docs/events.md lists every event type with its meaning, as src/events/types.ts does', () => {
  const doc = readFileSync(join(repositoryRoot, 'docs/events.md'), 'utf8');
  assert.ok(doc.includes(eventTypeTable()), 'the table of docs/events.md is out of date: paste eventTypeTable() from src/events/types.ts');
});

describe('the backlog gate of the event log', () => {
  test('a writer waits while the backlog is at the limit, goes on once it is written, and never waits past maxWaitMs', async () => {
    const { EventLog } = await import('./log.js');
    const { systemClock } = await import('../core/clock.js');
    const { createLogger } = await import('../core/logger.js');
    let open: () => void = () => {};
    let stored = 0;
    // a database that takes each transaction only when the test lets it
    const store = {
      insertMany: (rows: unknown[]) => new Promise<void>((resolve) => (open = () => ((stored += rows.length), resolve()))),
      insertEach: async () => 0,
      reachable: async () => true,
    };
    const bus = new MemoryBus();
    const log = new EventLog(store as never, bus, systemClock, createLogger('silent'), { batchSize: 10, transactionSize: 10, flushIntervalMs: 60_000, retentionMs: 0, pruneIntervalMs: 60_000, maxBuffered: 1000 });
    const org = uuidv7();
    const record = (n: number) => { for (let i = 0; i < n; i++) log.record({ orgId: org, type: 'twin.updated', actor: { kind: 'device' }, subject: { kind: 'device', id: org } }); };
    assert.equal(log.below(25), undefined, 'nothing waiting: go on');
    record(40);
    await new Promise((resolve) => setImmediate(resolve)); // the first 10 are being written, 30 wait
    const gate = log.below(25, 60_000);
    assert.ok(gate, 'at the limit: wait');
    let passed = false;
    void gate.then(() => (passed = true));
    open(); // 10 stored, the next 10 taken: 20 wait
    await eventually(() => assert.ok(passed, 'the gate opens once fewer than the limit wait'));
    assert.equal(stored, 10);
    const timed = log.below(5, 50);
    assert.ok(timed);
    const t0 = Date.now();
    await timed; // the database takes nothing more: the wait ends anyway
    assert.ok(Date.now() - t0 >= 40);
    while (stored < 40) {
      open();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await log.close();
    await bus.close();
  });
});
