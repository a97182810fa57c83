// Broker state in the database: persistent sessions, their messages and retained messages survive
// a restart of the broker (a new Broker on the same database, as after a process restart).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IPublishPacket, IConnackPacket } from 'mqtt-packet';
import { Broker, type BrokerOptions } from './broker.js';
import type { ClusterLink } from './cluster.js';
import { openPolicy } from './open-policy.js';
import type { BrokerPolicy } from './policy.js';
import { retainedCandidates, SqlRetainedStore, SqlSessionStore } from './sql-store.js';
import type { SessionChange, SessionStore, StoredSession } from './store.js';
import { topicMatches } from './topics.js';
import type { BrokerMessage, ClientIdentity } from './types.js';
import { createLogger } from '../core/logger.js';
import { ManualClock, type Clock } from '../core/clock.js';
import { RawQueries } from '../db/raw.js';
import { openTestDatabase, type TestDatabase } from '../../test/helpers/database.js';
import { rawClient, type RawClient } from '../../test/helpers/mqtt-raw.js';
import { eventually } from '../../test/helpers/eventually.js';
import { random } from '../../test/helpers/topics.js';

/** A session store that logs what the broker asks of it. */
class RecordingStore implements SessionStore {
  readonly calls: string[] = [];
  readonly batches: SessionChange[][] = [];
  constructor(private readonly inner: SessionStore) {}
  load(clientId: string): Promise<StoredSession | undefined> {
    this.calls.push(`load ${clientId}`);
    return this.inner.load(clientId);
  }
  holder(clientId: string): Promise<{ nodeId: string; identity: ClientIdentity } | undefined> {
    this.calls.push(`holder ${clientId}`);
    return this.inner.holder(clientId);
  }
  loadNode(nodeId: string): Promise<StoredSession[]> {
    return this.inner.loadNode(nodeId);
  }
  apply(changes: readonly SessionChange[]): Promise<void> {
    this.batches.push([...changes]);
    return this.inner.apply(changes);
  }
  purgeExpired(now: number): Promise<number> {
    return this.inner.purgeExpired(now);
  }
}

/** Raw queries that count the statements they run outside `all`. */
class CountingQueries extends RawQueries {
  writes = 0;
  override run(text: string, params: unknown[]): Promise<void> {
    this.writes++;
    return super.run(text, params);
  }
  override batch(statements: readonly (readonly [text: string, params: unknown[]])[]): Promise<void> {
    this.writes += statements.length;
    return super.batch(statements);
  }
}

/**
 * Broker nodes in one process, linked as over NATS: a claim has the other nodes let go of the
 * client at once. When the claim waits, `claimed` runs before they let go and `released` after.
 */
function localCluster(hooks: { claimed?: () => void; released?: () => void } = {}) {
  const handlers = new Map<string, (clientId: string, owner: string) => Promise<boolean>>();
  return (nodeId: string): ClusterLink => ({
    async claim(clientId, owner, wait) {
      if (wait) hooks.claimed?.();
      const letGo = Promise.all([...handlers].filter(([n]) => n !== nodeId).map(([, release]) => release(clientId, owner)));
      if (!wait) return;
      await letGo;
      hooks.released?.();
    },
    onClaim(handler) {
      handlers.set(nodeId, handler);
    },
    close() {
      handlers.delete(nodeId);
    },
  });
}

function queued(id: string, topic: string): BrokerMessage {
  return { id, topic, payload: Buffer.from(id), qos: 1, retain: false };
}

describe('MQTT state in the database survives a broker restart', () => {
  let t: TestDatabase;
  let broker: Broker;
  before(async () => {
    t = await openTestDatabase();
  });
  after(async () => {
    await broker?.close();
    await t.cleanup();
  });

  async function startBroker(nodeId = 'node-a', state: { sessions?: SessionStore; cluster?: ClusterLink; options?: Partial<BrokerOptions>; clock?: Clock; policy?: BrokerPolicy } = {}): Promise<Broker> {
    const q = new RawQueries(t.db);
    const b = new Broker(state.policy ?? openPolicy(undefined), createLogger('silent'), state.options ?? {}, undefined, { retained: new SqlRetainedStore(q), sessions: state.sessions ?? new SqlSessionStore(q), nodeId, ...(state.cluster ? { cluster: state.cluster } : {}), ...(state.clock ? { clock: state.clock } : {}) });
    await b.start();
    return b;
  }

  async function connect(b: Broker, clientId: string, opts: { v?: 4 | 5; clean?: boolean; expiry?: number; username?: string } = {}): Promise<{ c: RawClient; connack: IConnackPacket }> {
    const v = opts.v ?? 5;
    const c = rawClient(b, v);
    c.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: v, clientId, clean: opts.clean ?? false, keepalive: 0, ...(opts.username !== undefined ? { username: opts.username } : {}), ...(v === 5 ? { properties: { sessionExpiryInterval: opts.expiry ?? 3600 } } : {}) });
    return { c, connack: (await c.next('connack')) as IConnackPacket };
  }

  async function publish(b: Broker, topic: string, payload: string, qos: 0 | 1 | 2, retain = false): Promise<void> {
    const { c } = await connect(b, `pub-${Math.random()}`, { clean: true, expiry: 0 });
    c.send({ cmd: 'publish', topic, payload: Buffer.from(payload), qos, retain, dup: false, ...(qos > 0 ? { messageId: 1 } : {}) });
    if (qos === 1) await c.next('puback');
    if (qos === 2) {
      await c.next('pubrec');
      c.send({ cmd: 'pubrel', messageId: 1 });
      await c.next('pubcomp');
    }
    c.send({ cmd: 'disconnect' });
  }

  for (const v of [4, 5] as const) {
    test(`MQTT ${v === 4 ? '3.1.1' : '5.0'}: subscriptions and queued QoS 1/2 messages of an offline session come back after a restart`, async () => {
      broker = await startBroker();
      const id = `sub-v${v}`;
      const first = await connect(broker, id, { v });
      assert.equal(first.connack.sessionPresent, false);
      assert.deepEqual(await first.c.subscribe(`p${v}/#`, 2), [2]);
      first.c.send({ cmd: 'disconnect' });
      await eventually(() => assert.equal(broker.sessions.get(id)?.connected, false));

      await publish(broker, `p${v}/a`, 'one', 1);
      await publish(broker, `p${v}/b`, 'two', 2);
      await publish(broker, `p${v}/c`, 'dropped: QoS 0 to an offline client', 0);
      await broker.close();

      broker = await startBroker();
      const again = await connect(broker, id, { v });
      assert.equal(again.connack.sessionPresent, true, 'the session was restored');
      const m1 = (await again.c.next('publish')) as IPublishPacket;
      const m2 = (await again.c.next('publish')) as IPublishPacket;
      assert.deepEqual([m1.topic, m1.payload.toString(), m1.qos], [`p${v}/a`, 'one', 1]);
      assert.deepEqual([m2.topic, m2.payload.toString(), m2.qos], [`p${v}/b`, 'two', 2]);
      again.c.send({ cmd: 'puback', messageId: m1.messageId! });
      again.c.send({ cmd: 'pubrec', messageId: m2.messageId! });
      await again.c.next('pubrel');
      again.c.send({ cmd: 'pubcomp', messageId: m2.messageId! });

      // the subscription itself was restored: new messages arrive live
      await publish(broker, `p${v}/d`, 'three', 1);
      const m3 = (await again.c.next('publish')) as IPublishPacket;
      assert.equal(m3.payload.toString(), 'three');
      again.c.send({ cmd: 'puback', messageId: m3.messageId! });
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(again.c.packets.filter((p) => p.cmd === 'publish').length, 0, 'no QoS 0 message was kept, nothing twice');
      again.c.send({ cmd: 'disconnect' });
      await broker.close();

      // acknowledged messages are gone from the store: a restart sends nothing again
      broker = await startBroker();
      const third = await connect(broker, id, { v });
      assert.equal(third.connack.sessionPresent, true);
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(third.c.packets.filter((p) => p.cmd === "publish").map((p) => [(p as IPublishPacket).payload.toString(), (p as IPublishPacket).dup]), []);
      third.c.send({ cmd: 'disconnect' });
      await broker.close();
    });
  }

  test('a restored session keeps every subscription it held, also over a subscription limit lowered meanwhile; a new one is refused with 0x97', async () => {
    broker = await startBroker();
    const first = await connect(broker, 'many-filters');
    for (const f of ['m/1', 'm/2', '$share/g/m/3']) assert.deepEqual(await first.c.subscribe(f, 1), [1]);
    first.c.send({ cmd: 'disconnect' });
    await eventually(() => assert.equal(broker.sessions.get('many-filters')?.connected, false));
    await broker.close();

    broker = await startBroker('node-a', { options: { maxSubscriptions: 2 } });
    const again = await connect(broker, 'many-filters');
    assert.equal(again.connack.sessionPresent, true);
    assert.deepEqual(await again.c.subscribe('m/4', 1), [0x97]);
    assert.deepEqual(await again.c.subscribe('m/1', 1), [1], 'a filter it holds may be subscribed again');
    for (const topic of ['m/1', 'm/2', 'm/3', 'm/4']) await publish(broker, topic, topic, 1);
    const got: string[] = [];
    for (let i = 0; i < 3; i++) {
      const m = (await again.c.next('publish')) as IPublishPacket;
      got.push(m.topic);
      again.c.send({ cmd: 'puback', messageId: m.messageId! });
    }
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual([got, again.c.packets.filter((p) => p.cmd === 'publish').length], [['m/1', 'm/2', 'm/3'], 0]);
    again.c.send({ cmd: 'disconnect' });
    await broker.close();
  });

  test('a message sent and not acknowledged before the restart is sent again with DUP and its packet id [MQTT-4.4.0-1]', async () => {
    broker = await startBroker();
    const first = await connect(broker, 'unacked');
    await first.c.subscribe('u/#', 1);
    await publish(broker, 'u/1', 'promised', 1);
    const sent = (await first.c.next('publish')) as IPublishPacket;
    assert.equal(sent.dup, false);
    first.c.drop(); // gone without PUBACK
    await eventually(() => assert.equal(broker.sessions.get('unacked')?.connected, false));
    await broker.close();

    broker = await startBroker();
    const again = await connect(broker, 'unacked');
    const resent = (await again.c.next('publish')) as IPublishPacket;
    assert.deepEqual([resent.payload.toString(), resent.messageId, resent.dup], ['promised', sent.messageId, true]);
    again.c.send({ cmd: 'puback', messageId: resent.messageId! });
    again.c.send({ cmd: 'disconnect' });
    await broker.close();
  });

  test('a QoS 2 packet id received before the restart is still known after it [MQTT-4.3.3-9]', async () => {
    broker = await startBroker();
    const first = await connect(broker, 'qos2-in');
    first.c.send({ cmd: 'publish', topic: 'q2/x', payload: Buffer.from('once'), qos: 2, retain: false, dup: false, messageId: 7 });
    await first.c.next('pubrec');
    first.c.drop();
    await eventually(() => assert.equal(broker.sessions.get('qos2-in')?.connected, false));
    await broker.close();

    broker = await startBroker();
    const again = await connect(broker, 'qos2-in');
    again.c.send({ cmd: 'pubrel', messageId: 7 });
    const comp = await again.c.next('pubcomp');
    assert.equal((comp as { reasonCode?: number }).reasonCode ?? 0, 0, 'PUBCOMP success, not "packet id not found"');
    again.c.send({ cmd: 'disconnect' });
    await broker.close();
  });

  test('retained messages survive a restart; an empty retained message deletes', async () => {
    broker = await startBroker();
    await publish(broker, 'r/keep', 'kept', 1, true);
    await publish(broker, 'r/gone', 'soon deleted', 1, true);
    await publish(broker, 'r/gone', '', 1, true);
    await broker.close();

    broker = await startBroker();
    const { c } = await connect(broker, 'retained-reader', { clean: true, expiry: 0 });
    await c.subscribe('r/+', 1);
    const m = (await c.next('publish')) as IPublishPacket;
    assert.deepEqual([m.topic, m.payload.toString(), m.retain], ['r/keep', 'kept', true]);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(c.packets.filter((p) => p.cmd === 'publish').length, 0);
    c.send({ cmd: 'disconnect' });
    await broker.close();
  });

  test('clean start discards the stored session; an expired session is not restored', async () => {
    const clock = new ManualClock(Date.now());
    broker = await startBroker('node-a', { clock });
    const a = await connect(broker, 'to-clean');
    await a.c.subscribe('cl/#', 1);
    a.c.send({ cmd: 'disconnect' });
    const b = await connect(broker, 'short', { expiry: 1 });
    b.c.send({ cmd: 'disconnect' });
    await eventually(() => assert.equal(broker.sessions.get('short')?.connection, undefined, 'the broker saw the disconnect'));
    await broker.close();

    clock.advance(1100);
    broker = await startBroker('node-a', { clock });
    assert.equal(broker.sessions.has('short'), false, 'the expired session was purged at start');
    const fresh = await connect(broker, 'to-clean', { clean: true });
    assert.equal(fresh.connack.sessionPresent, false);
    await publish(broker, 'cl/x', 'not for the old subscription', 1);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(fresh.c.packets.filter((p) => p.cmd === 'publish').length, 0);
    fresh.c.send({ cmd: 'disconnect' });
    await broker.close();
    const stored = await new SqlSessionStore(new RawQueries(t.db)).load('short');
    assert.equal(stored, undefined);
  });

  test('a session that ends at disconnect is never written', async () => {
    broker = await startBroker();
    const { c } = await connect(broker, 'ephemeral', { clean: true, expiry: 0 });
    await c.subscribe('e/#', 1);
    const store = new SqlSessionStore(new RawQueries(t.db));
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(await store.load('ephemeral'), undefined);
    c.send({ cmd: 'disconnect' });
    await broker.close();
  });

  test('a clean start reads only whether a session is stored, then discards it [MQTT-3.1.2-4]', async () => {
    broker = await startBroker('node-a');
    const old = await connect(broker, 'fresh-start');
    await old.c.subscribe('fs/#', 1);
    old.c.send({ cmd: 'disconnect' });
    await eventually(() => assert.equal(broker.sessions.get('fresh-start')?.connected, false));
    await publish(broker, 'fs/1', 'for the old session', 1);
    await broker.close();

    // another node, which does not hold the session: it is in the store only
    const store = new RecordingStore(new SqlSessionStore(new RawQueries(t.db)));
    broker = await startBroker('node-b', { sessions: store });
    const fresh = await connect(broker, 'fresh-start', { clean: true, expiry: 0 });
    assert.equal(fresh.connack.sessionPresent, false);
    assert.deepEqual(store.calls, ['holder fresh-start'], 'neither its subscriptions nor its messages were read');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(fresh.c.packets.filter((p) => p.cmd === 'publish').length, 0);
    fresh.c.send({ cmd: 'disconnect' });
    await broker.close();
    assert.equal(await new SqlSessionStore(new RawQueries(t.db)).load('fresh-start'), undefined);
  });

  test('an inbound QoS 2 message writes its session row once', async () => {
    const store = new RecordingStore(new SqlSessionStore(new RawQueries(t.db)));
    broker = await startBroker('node-a', { sessions: store });
    const { c } = await connect(broker, 'qos2-row');
    const session = broker.sessions.get('qos2-row')!;
    store.batches.length = 0;
    // PUBREL at once: the packet id is added and removed within one batch [MQTT-4.3.3-9]
    c.send({ cmd: 'publish', topic: 'q2r/x', payload: Buffer.from('once'), qos: 2, retain: false, dup: false, messageId: 9 });
    c.send({ cmd: 'pubrel', messageId: 9 });
    await c.next('pubrec');
    await c.next('pubcomp');
    await broker.persisted(session);
    const rows = store.batches.map((b) => b.filter((change) => change.op === 'session').map((change) => (change.op === 'session' ? change.record.incomingQos2 : [])));
    assert.deepEqual(rows, [[[]]], 'one batch, one row, the packet id released');
    c.send({ cmd: 'disconnect' });
    await broker.close();
  });

  test('expired retained messages a lookup meets are deleted with one statement', async () => {
    let now = 1_000_000;
    const q = new CountingQueries(t.db);
    const retained = new SqlRetainedStore(q, () => now);
    for (const topic of ['ttl/a', 'ttl/b', 'ttl/c']) await retained.set({ topic, payload: Buffer.from('short'), qos: 1, retain: true, expiresAt: now + 1000 });
    await retained.set({ topic: 'ttl/kept', payload: Buffer.from('lasting'), qos: 1, retain: true });
    await retained.set({ topic: 'ttlx/other', payload: Buffer.from('not met'), qos: 1, retain: true, expiresAt: now + 1000 });
    now += 2000;
    q.writes = 0;
    assert.deepEqual((await retained.match('ttl/+')).map((m) => m.topic), ['ttl/kept']);
    assert.equal(q.writes, 1);
    const left = await q.all<{ topic: string }>("SELECT topic FROM mqtt_retained WHERE topic LIKE 'ttl%' ORDER BY topic", []);
    assert.deepEqual(left.map((r) => r.topic), ['ttl/kept', 'ttlx/other'], 'only what the lookup met');
  });

  test('wildcard lookups of retained messages in the database find exactly the topics topicMatches accepts', async () => {
    const retained = new SqlRetainedStore(new RawQueries(t.db));
    const r = random(77);
    // levels around the narrowing's edges: '.' < '/' < '0' byte-wise, case, non-ASCII, empty, `$`
    const words = ['a', 'A', 'a.', 'a0', 'b', 'é', '😀', '', '$SYS'];
    const pick = () => words[Math.floor(r() * words.length)]!;
    const topic = () => Array.from({ length: 1 + Math.floor(r() * 3) }, pick).join('/');
    for (let i = 0; i < 120; i++) await retained.set({ topic: topic(), payload: Buffer.from('v'), qos: 0, retain: true });
    // expired messages are never found
    const held = (await new RawQueries(t.db).all<{ topic: string }>('SELECT topic FROM mqtt_retained WHERE expires_at IS NULL', [])).map((row) => row.topic);
    for (let i = 0; i < 150; i++) {
      const levels = Array.from({ length: 1 + Math.floor(r() * 3) }, () => (r() < 0.35 ? '+' : pick()));
      if (r() < 0.25) levels.push('#');
      const filter = levels.join('/');
      const got = (await retained.match(filter)).map((m) => m.topic).sort();
      assert.deepEqual(got, held.filter((x) => topicMatches(filter, x)).sort(), `filter ${JSON.stringify(filter)}`);
    }
  });

  test('a wildcard lookup of retained messages reads its literal prefix with an index range scan, never every row', async () => {
    const q = new RawQueries(t.db);
    const filters = ['channels/0b7c/messages/#', 'channels/0b7c/messages/+/temp', 'channels/+/messages', '/+'];
    const plans: string[] = [];
    for (const filter of filters) {
      const [text, params] = retainedCandidates(q.kind, filter);
      if (t.db.sqlite) {
        const steps = t.db.sqlite.prepare(`EXPLAIN QUERY PLAN ${text}`).all(...params) as { detail: string }[];
        plans.push(steps.map((s) => s.detail).join('; '));
      } else {
        // with sequential scans priced out the planner takes an index wherever one serves the condition
        plans.push(
          await t.db.pgTransaction(async (client) => {
            await client.query('SET LOCAL enable_seqscan = off');
            let i = 0;
            const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${text.replace(/\?/g, () => `$${++i}`)}`, params);
            return rows.map((r) => r['QUERY PLAN']).join('; ');
          }),
        );
      }
    }
    const fullScan = t.db.sqlite ? /\bSCAN mqtt_retained\b/ : /Seq Scan/;
    const rangeScan = t.db.sqlite ? /SEARCH mqtt_retained USING INDEX \S+ \(topic>\? AND topic<\?\)/ : /Index Cond: \(\(\(topic\)::text >= /;
    for (const [i, filter] of filters.entries()) {
      assert.doesNotMatch(plans[i]!, fullScan, `${filter}: ${plans[i]}`);
      assert.match(plans[i]!, rangeScan, `${filter}: ${plans[i]}`);
    }
  });

  test('a session taken over from another node is written back only where it changed', async () => {
    let a: Broker | undefined;
    let b: Broker | undefined;
    try {
      const link = localCluster({
        // while node-b, subscribed for the arriving session, waits for node-a to let go: both nodes get it
        claimed: () => {
          a!.route(queued('m2', 'roam/2'));
          b!.route(queued('m2', 'roam/2'));
        },
        // once node-a let go: only node-b gets it
        released: () => b!.route(queued('m3', 'roam/3')),
      });
      const storeB = new RecordingStore(new SqlSessionStore(new RawQueries(t.db)));
      a = await startBroker('node-a', { cluster: link('node-a') });
      b = await startBroker('node-b', { sessions: storeB, cluster: link('node-b') });
      const first = await connect(a, 'roamer');
      await first.c.subscribe('roam/#', 1);
      first.c.send({ cmd: 'disconnect' });
      await eventually(() => assert.equal(a!.sessions.get('roamer')?.connected, false));
      a.route(queued('m1', 'roam/1'));
      await a.persisted(a.sessions.get('roamer')!);

      storeB.batches.length = 0;
      const resumed = await connect(b, 'roamer');
      assert.equal(resumed.connack.sessionPresent, true);
      const got: IPublishPacket[] = [];
      for (let i = 0; i < 3; i++) got.push((await resumed.c.next('publish')) as IPublishPacket);
      assert.deepEqual(got.map((p) => p.payload.toString()), ['m1', 'm2', 'm3'], 'in order, m2 once');
      const summary = (c: SessionChange) => (c.op === 'session' ? `session ${c.record.nodeId}` : c.op === 'message' ? `message ${c.message.seq} ${c.message.message.id}` : c.op);
      assert.deepEqual(storeB.batches[0]?.map(summary), ['session node-b', 'message 3 m3'], 'what node-a wrote is not written again');

      const session = b.sessions.get('roamer')!;
      await b.persisted(session);
      const stored = await new SqlSessionStore(new RawQueries(t.db)).load('roamer');
      assert.equal(stored?.nodeId, 'node-b');
      assert.deepEqual(stored?.subscriptions.map(([key]) => key), ['roam/#']);
      assert.deepEqual(stored?.messages.map((m) => [m.seq, m.message.id]), [[1, 'm1'], [2, 'm2'], [3, 'm3']]);
      for (const p of got) resumed.c.send({ cmd: 'puback', messageId: p.messageId! });
      resumed.c.send({ cmd: 'disconnect' });
    } finally {
      await a?.close();
      await b?.close();
    }
  });

  test("across nodes a client id stays its device's: a claim by another device takes over neither its live connection nor its stored session", async () => {
    let a: Broker | undefined;
    let b: Broker | undefined;
    // each username is a device of its own
    const devices: BrokerPolicy = { ...openPolicy(undefined), authenticate: async (req) => ({ ok: true, identity: { kind: 'device', deviceId: req.username ?? '', orgId: 'org' } }) };
    try {
      const link = localCluster();
      a = await startBroker('node-a', { cluster: link('node-a'), policy: devices });
      b = await startBroker('node-b', { cluster: link('node-b'), policy: devices });
      const live = await connect(a, 'shared-id', { username: 'device-x', clean: true, expiry: 0 });
      assert.equal(live.connack.reasonCode, 0);
      const intruder = await connect(b, 'shared-id', { username: 'device-y', clean: true, expiry: 0 });
      assert.equal(intruder.connack.reasonCode, 0, 'not stored anywhere: node-b cannot tell, and gives device-y a session of its own');
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(a.sessions.get('shared-id')?.connected, true, "node-a kept device-x's connection");
      intruder.c.send({ cmd: 'disconnect' });
      live.c.send({ cmd: 'disconnect' });
      await eventually(() => assert.equal(a!.sessions.get('shared-id'), undefined));

      // stored: refused on the other node as on this one
      const owner = await connect(a, 'stored-id', { username: 'device-x' });
      owner.c.send({ cmd: 'disconnect' });
      await eventually(() => assert.equal(a!.sessions.get('stored-id')?.connected, false));
      await a.persisted(a.sessions.get('stored-id')!);
      for (const clean of [true, false]) {
        const refused = await connect(b, 'stored-id', { username: 'device-y', clean });
        assert.equal(refused.connack.reasonCode, 0x85, `clean ${clean}`);
      }
      assert.ok(a.sessions.get('stored-id'), 'node-a still holds the session');
      const back = await connect(b, 'stored-id', { username: 'device-x' });
      assert.equal(back.connack.sessionPresent, true, 'its device resumes it on the other node');
      back.c.send({ cmd: 'disconnect' });
    } finally {
      await a?.close();
      await b?.close();
    }
  });
});
