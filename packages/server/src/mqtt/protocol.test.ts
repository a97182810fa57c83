// test-database: none
// Protocol details driven over an in-memory duplex pair with mqtt-packet: no sockets, exact packets.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type mqttPacket from 'mqtt-packet';
import { type Packet } from 'mqtt-packet';
import { Broker, type BrokerOptions } from './broker.js';
import { openPolicy } from './open-policy.js';
import { createLogger } from '../core/logger.js';
import { rawClient } from '../../test/helpers/mqtt-raw.js';
import { eventually } from '../../test/helpers/eventually.js';

function newBroker(options: Partial<BrokerOptions> = {}) {
  return new Broker(openPolicy(undefined), createLogger('silent'), options);
}

const connect = (clientId: string, props: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Packet => ({ cmd: 'connect', protocolVersion: 5, clientId, clean: true, keepalive: 0, properties: props, ...extra }) as Packet;

describe('MQTT 5 protocol details over an in-memory stream', () => {
  test('receive maximum: the broker keeps at most that many QoS 1 messages unacknowledged, then sends the rest as acks arrive', async () => {
    const broker = newBroker();
    const sub = rawClient(broker, 5);
    sub.send(connect('slow-reader', { receiveMaximum: 2 }));
    await sub.next('connack');
    await sub.subscribe('rm/#', 1);
    const pub = rawClient(broker, 5);
    pub.send(connect('pub'));
    await pub.next('connack');
    for (let i = 1; i <= 5; i++) pub.send({ cmd: 'publish', topic: 'rm/x', payload: Buffer.from(String(i)), qos: 1, messageId: i, retain: false, dup: false } as Packet);
    await pub.ping(); // the broker has routed all five
    await sub.ping(); // and the subscriber has read what it was sent
    const first = sub.packets.filter((p) => p.cmd === 'publish') as mqttPacket.IPublishPacket[];
    assert.equal(first.length, 2, 'only receive-maximum messages in flight');
    sub.packets.length = 0;
    sub.send({ cmd: 'puback', messageId: first[0]!.messageId! } as Packet);
    const third = (await sub.next('publish')) as mqttPacket.IPublishPacket;
    assert.equal(third.payload.toString(), '3');
  });

  test('U+0000 in the client id or the user name is refused (0x85, 0x86) before anything is looked up [MQTT-1.5.4-2]', async () => {
    const broker = newBroker();
    const byId = rawClient(broker, 5);
    byId.send(connect('nul\u0000id'));
    assert.equal(((await byId.next('connack')) as mqttPacket.IConnackPacket).reasonCode, 0x85);
    await eventually(() => assert.equal(byId.closed, true));
    const byName = rawClient(broker, 5);
    byName.send(connect('nul-user', {}, { username: 'dev\u0000ice' }));
    assert.equal(((await byName.next('connack')) as mqttPacket.IConnackPacket).reasonCode, 0x86);
    const v3 = rawClient(broker, 4);
    v3.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'old\u0000client', clean: true, keepalive: 0 } as Packet);
    assert.equal(((await v3.next('connack')) as mqttPacket.IConnackPacket).returnCode, 2, '3.1.1: identifier rejected');
    broker.close();
  });

  test('a client that exceeds our receive maximum (QoS 2 ids not yet released count) is disconnected with 0x93', async () => {
    const broker = newBroker({ receiveMaximum: 1 });
    const c = rawClient(broker, 5);
    c.send(connect('greedy'));
    const connack = (await c.next('connack')) as mqttPacket.IConnackPacket;
    assert.equal(connack.properties?.receiveMaximum, 1);
    c.send({ cmd: 'publish', topic: 'a', payload: Buffer.from('1'), qos: 2, messageId: 1, retain: false, dup: false } as Packet);
    await c.next('pubrec');
    c.send({ cmd: 'publish', topic: 'a', payload: Buffer.from('2'), qos: 2, messageId: 2, retain: false, dup: false } as Packet);
    const d = (await c.next('disconnect')) as mqttPacket.IDisconnectPacket;
    assert.equal(d.reasonCode, 0x93);
  });

  test('QoS 2: a PUBLISH repeated before PUBREL is not delivered twice', async () => {
    const broker = newBroker();
    const sub = rawClient(broker, 5);
    sub.send(connect('q2-sub'));
    await sub.next('connack');
    await sub.subscribe('q2', 2);
    const pub = rawClient(broker, 5);
    pub.send(connect('q2-pub'));
    await pub.next('connack');
    const p = { cmd: 'publish', topic: 'q2', payload: Buffer.from('once'), qos: 2, messageId: 9, retain: false, dup: false } as Packet;
    pub.send(p);
    await pub.next('pubrec');
    pub.send({ ...p, dup: true } as Packet);
    await pub.next('pubrec');
    pub.send({ cmd: 'pubrel', messageId: 9 } as Packet);
    await pub.next('pubcomp');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(sub.packets.filter((x) => x.cmd === 'publish').length, 1);
  });

  test('topic aliases: the client may publish by alias; an alias above our maximum is 0x94', async () => {
    const broker = newBroker({ topicAliasMaximum: 2 });
    const sub = rawClient(broker, 5);
    sub.send(connect('alias-sub'));
    await sub.next('connack');
    await sub.subscribe('al/#', 0);
    const pub = rawClient(broker, 5);
    pub.send(connect('alias-pub'));
    await pub.next('connack');
    pub.send({ cmd: 'publish', topic: 'al/long/topic', payload: Buffer.from('a'), qos: 0, retain: false, dup: false, properties: { topicAlias: 1 } } as Packet);
    pub.send({ cmd: 'publish', topic: '', payload: Buffer.from('b'), qos: 0, retain: false, dup: false, properties: { topicAlias: 1 } } as Packet);
    await new Promise((r) => setTimeout(r, 50));
    const got = sub.packets.filter((x) => x.cmd === 'publish') as mqttPacket.IPublishPacket[];
    assert.deepEqual(got.map((g) => [g.topic, g.payload.toString()]), [['al/long/topic', 'a'], ['al/long/topic', 'b']]);
    pub.send({ cmd: 'publish', topic: 'al/x', payload: Buffer.from('c'), qos: 0, retain: false, dup: false, properties: { topicAlias: 3 } } as Packet);
    const d = (await pub.next('disconnect')) as mqttPacket.IDisconnectPacket;
    assert.equal(d.reasonCode, 0x94);
  });

  test('server-assigned outbound topic aliases: the topic is sent once, then the alias alone', async () => {
    const broker = newBroker();
    const sub = rawClient(broker, 5);
    sub.send(connect('out-alias', { topicAliasMaximum: 4 }));
    await sub.next('connack');
    await sub.subscribe('oa', 0);
    const pub = rawClient(broker, 5);
    pub.send(connect('oa-pub'));
    await pub.next('connack');
    for (const x of ['1', '2']) pub.send({ cmd: 'publish', topic: 'oa', payload: Buffer.from(x), qos: 0, retain: false, dup: false } as Packet);
    await new Promise((r) => setTimeout(r, 50));
    const got = sub.packets.filter((x) => x.cmd === 'publish') as mqttPacket.IPublishPacket[];
    assert.deepEqual(got.map((g) => [g.topic, g.properties?.topicAlias]), [['oa', 1], ['', 1]]);
  });

  test("messages larger than the client's maximum packet size are not sent to it", async () => {
    const broker = newBroker();
    const sub = rawClient(broker, 5);
    sub.send(connect('small', { maximumPacketSize: 64 }));
    await sub.next('connack');
    await sub.subscribe('mp', 0);
    const pub = rawClient(broker, 5);
    pub.send(connect('mp-pub'));
    await pub.next('connack');
    pub.send({ cmd: 'publish', topic: 'mp', payload: Buffer.alloc(200), qos: 0, retain: false, dup: false } as Packet);
    pub.send({ cmd: 'publish', topic: 'mp', payload: Buffer.from('fits'), qos: 0, retain: false, dup: false } as Packet);
    const got = (await sub.next('publish')) as mqttPacket.IPublishPacket;
    assert.equal(got.payload.toString(), 'fits');
  });

  test('a packet larger than our maximum packet size ends the connection with 0x95', async () => {
    const broker = newBroker({ maxPacketSize: 1024 });
    const c = rawClient(broker, 5);
    c.send(connect('big'));
    await c.next('connack');
    c.send({ cmd: 'publish', topic: 'x', payload: Buffer.alloc(4096), qos: 0, retain: false, dup: false } as Packet);
    const d = (await c.next('disconnect')) as mqttPacket.IDisconnectPacket;
    assert.equal(d.reasonCode, 0x95);
  });

  test('the will waits for the will delay and is cancelled when the client comes back in time', async () => {
    const broker = newBroker();
    const watcher = rawClient(broker, 5);
    watcher.send(connect('will-watch'));
    await watcher.next('connack');
    await watcher.subscribe('will/#', 0);
    const willConnect = (id: string, delay: number) =>
      connect(id, { sessionExpiryInterval: 60 }, { clean: false, will: { topic: `will/${id}`, payload: Buffer.from('bye'), qos: 0, retain: false, properties: { willDelayInterval: delay } } });
    const a = rawClient(broker, 5);
    a.send(willConnect('comes-back', 1));
    await a.next('connack');
    const b = rawClient(broker, 5);
    b.send(willConnect('stays-away', 1));
    await b.next('connack');
    // both vanish without DISCONNECT
    for (const conn of [...broker.connections]) if (conn.clientId === 'comes-back' || conn.clientId === 'stays-away') conn.close();
    const again = rawClient(broker, 5);
    again.send(willConnect('comes-back', 1));
    await again.next('connack');
    const will = (await watcher.next('publish', 3000)) as mqttPacket.IPublishPacket;
    assert.equal(will.topic, 'will/stays-away');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(watcher.packets.filter((p) => p.cmd === 'publish').length, 0, 'no will for the client that came back');
  });

  test('a second CONNECT is a protocol error', async () => {
    const broker = newBroker();
    const c = rawClient(broker, 5);
    c.send(connect('twice'));
    await c.next('connack');
    c.send(connect('twice'));
    const d = (await c.next('disconnect')) as mqttPacket.IDisconnectPacket;
    assert.equal(d.reasonCode, 0x82);
  });

  test('an MQTT 3.1.1 client with an empty client id and no clean session is refused with return code 2', async () => {
    const broker = newBroker();
    const c = rawClient(broker, 4);
    // mqtt-packet refuses to generate this packet, so it is written by hand: CONNECT, "MQTT" level 4, flags 0 (no clean session), keep-alive 0, empty client id
    c.sendRaw(Buffer.from([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00]));
    const connack = (await c.next('connack')) as mqttPacket.IConnackPacket;
    assert.equal(connack.returnCode, 2);
  });
});

describe('slow subscribers', () => {
  /** A connected MQTT 3.1.1 client, subscribed to `topic` at QoS 0 when given, and its connection on the broker's side. */
  async function connected(broker: Broker, clientId: string, topic?: string) {
    const client = rawClient(broker, 4);
    client.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId, clean: true, keepalive: 0 });
    await client.next('connack');
    if (topic !== undefined) {
      await client.subscribe(topic, 0);
    }
    return { client, conn: [...broker.connections].find((c) => c.clientId === clientId)! };
  }

  test('QoS 0 messages to a subscriber that does not read are dropped, and the subscriber stays connected', async () => {
    const broker = newBroker({ maxWriteBuffer: 64 * 1024 });
    const { conn } = await connected(broker, 'slow', 'flood');
    conn.stream.cork(); // nothing leaves: the write buffer only grows, as with a client that stops reading
    const { client: pub } = await connected(broker, 'fast');
    const payload = Buffer.alloc(1000);
    for (let i = 0; i < 500; i++) pub.send({ cmd: 'publish', topic: 'flood', payload, qos: 0, retain: false, dup: false });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(conn.closed, false, 'still connected');
    assert.ok(conn.stream.writableLength <= 64 * 1024 / 2 + 1100, `buffered ${conn.stream.writableLength} bytes`);
    broker.close();
  });

  test('a publisher is not read while its subscriber catches up, and nothing is lost', async () => {
    const broker = newBroker({ maxWriteBuffer: 256 * 1024 }); // waits above 32 KiB buffered
    const { client: sub, conn: subConn } = await connected(broker, 'behind', 'burst');
    subConn.stream.cork();
    const { client: pub, conn: pubConn } = await connected(broker, 'bursty');
    // 100 KB: past the subscriber stream's high-water mark (64 KiB), below where QoS 0 is dropped (128 KiB)
    for (let i = 0; i < 100; i++) pub.send({ cmd: 'publish', topic: 'burst', payload: Buffer.alloc(1000, i), qos: 0, retain: false, dup: false });
    await eventually(() => assert.equal(pubConn.stream.isPaused(), true, 'the publisher waits'));
    subConn.stream.uncork();
    await eventually(() => assert.equal(sub.packets.filter((p) => p.cmd === 'publish').length, 100, 'every message delivered'));
    await eventually(() => assert.equal(pubConn.stream.isPaused(), false, 'reading again once the subscriber drained'));
    broker.close();
  });

  test('a publisher whose messages are routed later (retained: stored first) is the one that waits', async () => {
    const broker = newBroker({ maxWriteBuffer: 256 * 1024 });
    const { conn: subConn } = await connected(broker, 'behind-r', 'kept');
    subConn.stream.cork();
    const { client: other, conn: bystander } = await connected(broker, 'bystander');
    const { client: pub, conn: pubConn } = await connected(broker, 'retainer');
    for (let i = 0; i < 100; i++) pub.send({ cmd: 'publish', topic: 'kept', payload: Buffer.alloc(1000, i), qos: 0, retain: true, dup: false });
    await new Promise((r) => setTimeout(r, 50));
    // another client publishes elsewhere, also routed later: it meets no slow subscriber and must not be paused
    other.send({ cmd: 'publish', topic: 'elsewhere', payload: Buffer.from('x'), qos: 0, retain: true, dup: false });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(pubConn.stream.isPaused(), true, 'the publisher waits');
    assert.equal(bystander.stream.isPaused(), false, 'nobody else does');
    subConn.stream.uncork();
    broker.close();
  });
});
