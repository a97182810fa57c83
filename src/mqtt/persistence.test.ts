// Broker state in the database: persistent sessions, their messages and retained messages survive
// a restart of the broker (a new Broker on the same database, as after a process restart).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IPublishPacket, IConnackPacket } from 'mqtt-packet';
import { Broker } from './broker.js';
import { openPolicy } from './open-policy.js';
import { SqlRetainedStore, SqlSessionStore } from './sql-store.js';
import { createLogger } from '../core/logger.js';
import { RawQueries } from '../db/raw.js';
import { openTestDatabase, type TestDatabase } from '../../test/helpers/database.js';
import { rawClient, type RawClient } from '../../test/helpers/mqtt-raw.js';
import { eventually } from '../../test/helpers/eventually.js';

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

  async function startBroker(nodeId = 'node-a'): Promise<Broker> {
    const q = new RawQueries(t.db);
    const b = new Broker(openPolicy(undefined), createLogger('silent'), {}, undefined, { retained: new SqlRetainedStore(q), sessions: new SqlSessionStore(q), nodeId });
    await b.start();
    return b;
  }

  async function connect(b: Broker, clientId: string, opts: { v?: 4 | 5; clean?: boolean; expiry?: number } = {}): Promise<{ c: RawClient; connack: IConnackPacket }> {
    const v = opts.v ?? 5;
    const c = rawClient(b, v);
    c.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: v, clientId, clean: opts.clean ?? false, keepalive: 0, ...(v === 5 ? { properties: { sessionExpiryInterval: opts.expiry ?? 3600 } } : {}) });
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
    broker = await startBroker();
    const a = await connect(broker, 'to-clean');
    await a.c.subscribe('cl/#', 1);
    a.c.send({ cmd: 'disconnect' });
    const b = await connect(broker, 'short', { expiry: 1 });
    b.c.send({ cmd: 'disconnect' });
    await broker.close();

    await new Promise((r) => setTimeout(r, 1100));
    broker = await startBroker();
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
});
