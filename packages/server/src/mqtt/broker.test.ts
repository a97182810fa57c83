// test-database: none
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { Broker, type BrokerOptions } from './broker.js';
import { openPolicy } from './open-policy.js';
import { aclAllowsPublish, aclSubscription, parseAcl } from './acl.js';
import { listenTcp } from './transports/tcp.js';
import { createLogger } from '../core/logger.js';
import { ManualClock, type Clock } from '../core/clock.js';
import { eventually } from '../../test/helpers/eventually.js';

interface Received {
  topic: string;
  payload: string;
  packet: mqtt.IPublishPacket;
}

async function startBroker(options: Partial<BrokerOptions> = {}, acl?: string, clock?: Clock) {
  const broker = new Broker(openPolicy(acl === undefined ? undefined : parseAcl(acl)), createLogger('silent'), options, undefined, clock ? { clock } : {});
  const server = await listenTcp(broker, '127.0.0.1', 0);
  const url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clients: MqttClient[] = [];
  return {
    broker,
    url,
    port: (server.address() as AddressInfo).port,
    async client(opts: IClientOptions = {}): Promise<MqttClient & { received: Received[] }> {
      // the listener is attached before CONNACK: a resumed session's messages follow it at once
      const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 3000, ...opts }) as MqttClient & { received: Received[] };
      c.received = [];
      c.on('message', (topic, payload, packet) => c.received.push({ topic, payload: payload.toString(), packet }));
      clients.push(c);
      await new Promise((resolve, reject) => {
        c.once('connect', resolve);
        c.once('error', reject);
      });
      return c;
    },
    async stop() {
      for (const c of clients) c.end(true);
      await broker.close();
      await new Promise((r) => server.close(r));
    },
  };
}

for (const protocolVersion of [4, 5] as const) {
  describe(`broker core over TCP, MQTT ${protocolVersion === 4 ? '3.1.1' : '5.0'}`, () => {
    let b: Awaited<ReturnType<typeof startBroker>>;
    before(async () => {
      b = await startBroker();
    });
    after(() => b.stop());
    const client = (opts: IClientOptions = {}) => b.client({ protocolVersion, ...opts });

    test('publish and subscribe at QoS 0, 1 and 2; delivered QoS is the lower of the two', async () => {
      const sub = await client();
      await sub.subscribeAsync('q/+', { qos: 1 });
      const pub = await client();
      await pub.publishAsync('q/0', 'zero', { qos: 0 });
      await pub.publishAsync('q/1', 'one', { qos: 1 });
      await pub.publishAsync('q/2', 'two', { qos: 2 });
      await eventually(() => assert.equal(sub.received.length, 3));
      assert.deepEqual(sub.received.map((r) => [r.topic, r.payload, r.packet.qos]), [['q/0', 'zero', 0], ['q/1', 'one', 1], ['q/2', 'two', 1]]);
    });

    test('retained messages are sent on subscribe with RETAIN set, and an empty payload deletes them', async () => {
      const pub = await client();
      await pub.publishAsync('r/a', 'kept', { qos: 1, retain: true });
      const s1 = await client();
      await s1.subscribeAsync('r/#');
      await eventually(() => assert.equal(s1.received.length, 1));
      assert.equal(s1.received[0]!.packet.retain, true);
      await pub.publishAsync('r/a', '', { qos: 1, retain: true });
      const s2 = await client();
      await s2.subscribeAsync('r/#');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(s2.received.length, 0);
    });

    test('the will is published when a client goes away without DISCONNECT, not after a clean DISCONNECT', async () => {
      const watcher = await client();
      await watcher.subscribeAsync('wills/#');
      const raw = new net.Socket();
      const dying = await client({ will: { topic: 'wills/dying', payload: Buffer.from('gone'), qos: 1, retain: false } });
      const polite = await client({ will: { topic: 'wills/polite', payload: Buffer.from('never'), qos: 1, retain: false } });
      await polite.endAsync();
      (dying as unknown as { stream: net.Socket }).stream.destroy();
      await eventually(() => assert.deepEqual(watcher.received.map((r) => r.topic), ['wills/dying']));
      raw.destroy();
    });

    test('a persistent session keeps subscriptions and queues QoS 1 messages while offline', async () => {
      const opts: IClientOptions = protocolVersion === 5 ? { clientId: `persist-${protocolVersion}`, clean: false, properties: { sessionExpiryInterval: 300 } } : { clientId: `persist-${protocolVersion}`, clean: false };
      const first = await client(opts);
      await first.subscribeAsync('offline/#', { qos: 1 });
      await first.endAsync();
      const pub = await client();
      await pub.publishAsync('offline/1', 'while away', { qos: 1 });
      await pub.publishAsync('offline/0', 'qos0 may be dropped', { qos: 0 });
      const back = await client(opts);
      await eventually(() => assert.ok(back.received.some((r) => r.payload === 'while away')));
      // a clean start discards the session
      await back.endAsync();
      const fresh = await client({ ...opts, clean: true });
      await pub.publishAsync('offline/2', 'nobody', { qos: 1 });
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(fresh.received.length, 0);
    });

    test('a second connection with the same client id takes the session over', async () => {
      const a = await client({ clientId: `dup-${protocolVersion}` });
      const closed = new Promise((r) => a.once('close', () => r(undefined)));
      await client({ clientId: `dup-${protocolVersion}` });
      await closed;
    });

    test('unsubscribe stops delivery', async () => {
      const sub = await client();
      await sub.subscribeAsync('u/x');
      await sub.unsubscribeAsync('u/x');
      const pub = await client();
      await pub.publishAsync('u/x', 'hi', { qos: 1 });
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(sub.received.length, 0);
    });

    test('$ topics are not matched by a leading wildcard', async () => {
      const sub = await client();
      await sub.subscribeAsync('#');
      const sys = await client();
      await sys.subscribeAsync('$SYS/test');
      const pub = await client();
      await pub.publishAsync('$SYS/test', 'internal', { qos: 1 });
      await eventually(() => assert.equal(sys.received.length, 1));
      assert.ok(!sub.received.some((r) => r.topic === '$SYS/test'));
    });
  });
}

describe('MQTT 5 features', () => {
  let b: Awaited<ReturnType<typeof startBroker>>;
  const clock = new ManualClock(Date.now());
  before(async () => {
    b = await startBroker({ maxKeepAliveSeconds: 30 }, undefined, clock);
  });
  after(() => b.stop());
  const client = (opts: IClientOptions = {}) => b.client({ protocolVersion: 5, ...opts });

  test('No Local, Retain As Published and subscription identifiers', async () => {
    const c = await client();
    await c.subscribeAsync('nl/t', { qos: 1, nl: true });
    await c.subscribeAsync('rap/#', { qos: 1, rap: true, properties: { subscriptionIdentifier: 7 } });
    await c.publishAsync('nl/t', 'own', { qos: 1 });
    await c.publishAsync('rap/t', 'kept flag', { qos: 1, retain: true });
    await eventually(() => assert.equal(c.received.length, 1));
    assert.equal(c.received[0]!.topic, 'rap/t');
    assert.equal(c.received[0]!.packet.retain, true);
    assert.equal(c.received[0]!.packet.properties?.subscriptionIdentifier, 7);
  });

  test('shared subscriptions deliver each message to one member of the group', async () => {
    const m1 = await client();
    const m2 = await client();
    await m1.subscribeAsync('$share/g/work/#', { qos: 1 });
    await m2.subscribeAsync('$share/g/work/#', { qos: 1 });
    const pub = await client();
    for (let i = 0; i < 10; i++) await pub.publishAsync('work/item', String(i), { qos: 1 });
    await eventually(() => assert.equal(m1.received.length + m2.received.length, 10));
    assert.ok(m1.received.length > 0 && m2.received.length > 0, 'both members get work');
  });

  test('message expiry: a queued message that expired is not delivered; the remaining lifetime is forwarded', async () => {
    const opts: IClientOptions = { clientId: 'expiry', clean: false, properties: { sessionExpiryInterval: 60 } };
    const s = await client(opts);
    await s.subscribeAsync('exp/#', { qos: 1 });
    await s.endAsync();
    const pub = await client();
    await pub.publishAsync('exp/short', 'gone', { qos: 1, properties: { messageExpiryInterval: 1 } });
    await pub.publishAsync('exp/long', 'stays', { qos: 1, properties: { messageExpiryInterval: 100 } });
    clock.advance(1100);
    const back = await client(opts);
    await eventually(() => assert.equal(back.received.length, 1));
    assert.equal(back.received[0]!.payload, 'stays');
    assert.equal(back.received[0]!.packet.properties?.messageExpiryInterval, 99, '100 s less the 1.1 s it waited, rounded up [MQTT-3.3.2-6]');
  });

  test('server keep-alive caps what the client asked and CONNACK says so', async () => {
    const c = await client({ keepalive: 600 });
    const connack = (c as unknown as { connackPacket?: { properties?: { serverKeepAlive?: number } } }).connackPacket;
    assert.equal(connack?.properties?.serverKeepAlive, 30);
  });

  test('an empty client id gets an assigned one', async () => {
    const c = await client({ clientId: '' });
    const connack = (c as unknown as { connackPacket?: { properties?: { assignedClientIdentifier?: string } } }).connackPacket;
    assert.match(String(connack?.properties?.assignedClientIdentifier), /^fw-/);
  });

  test('user properties, content type, response topic and correlation data travel with the message', async () => {
    const sub = await client();
    await sub.subscribeAsync('props/t', { qos: 1 });
    const pub = await client();
    await pub.publishAsync('props/t', 'p', { qos: 1, properties: { userProperties: { a: '1' }, contentType: 'text/plain', responseTopic: 'reply/here', correlationData: Buffer.from('c1') } });
    await eventually(() => assert.equal(sub.received.length, 1));
    const p = sub.received[0]!.packet.properties!;
    assert.deepEqual({ ...p.userProperties }, { a: '1' });
    assert.equal(p.contentType, 'text/plain');
    assert.equal(p.responseTopic, 'reply/here');
    assert.equal(Buffer.from(p.correlationData!).toString(), 'c1');
  });
});

describe('ACL and limits', () => {
  test('the ACL refuses publish (MQTT 5: PUBACK 0x87; 3.1.1: close) and subscribe (SUBACK 0x80 at both levels)', async () => {
    const b = await startBroker({}, 'allow all open/#\ndeny all #\n');
    try {
      const v5 = await b.client({ protocolVersion: 5 });
      const suback = await new Promise<{ granted: number[] }>((resolve) => v5.subscribe(['open/a', 'secret/a'], (err) => resolve((err as unknown as { packet: { granted: number[] } }).packet)));
      assert.deepEqual(suback.granted, [0, 0x80]);
      await assert.rejects(v5.publishAsync('secret/a', 'x', { qos: 1 }), /Not authorized|135/i);
      const v3 = await b.client({ protocolVersion: 4 });
      const g3 = await new Promise<{ granted: number[] }>((resolve) => v3.subscribe('secret/b', (err) => resolve((err as unknown as { packet: { granted: number[] } }).packet)));
      assert.deepEqual(g3.granted, [128]);
      const closed = new Promise((r) => v3.once('close', () => r(undefined)));
      v3.publish('secret/b', 'x', { qos: 1 });
      await closed;
    } finally {
      await b.stop();
    }
  });

  test('ACL rules: the first rule that covers a subscription decides it; a deny rule covering part of it is left out of it', () => {
    const rules = parseAcl('# comment\ndeny subscribe a/secret\nallow subscribe a/#\nallow publish $SYS/#\n');
    assert.deepEqual(aclSubscription(rules, 'a/secret'), { allow: false });
    assert.deepEqual(aclSubscription(rules, 'a/+'), { allow: true, exclude: ['a/secret'] });
    assert.deepEqual(aclSubscription(rules, 'a/public'), { allow: true, exclude: [] });
    assert.deepEqual(aclSubscription(rules, '#'), { allow: false }, 'an allow rule must cover the whole subscription');
    assert.equal(aclAllowsPublish(rules, '$SYS/broker/load'), true);
    assert.equal(aclAllowsPublish(rules, 'a/public'), false, 'no rule applies: denied');
    assert.throws(() => parseAcl('allow all a/#/b'), /line 1/);
  });

  test('a deny rule inside a wildcard subscription narrows it: "#" is granted, the denied topic never arrives through it, live or retained', async () => {
    const b = await startBroker({}, 'deny subscribe test/nosubscribe\nallow all #\n');
    try {
      const pub = await b.client({ protocolVersion: 5 });
      await pub.publishAsync('test/nosubscribe', 'hidden', { qos: 1, retain: true });
      await pub.publishAsync('test/open', 'retained', { qos: 1, retain: true });
      for (const protocolVersion of [4, 5] as const) {
        const sub = await b.client({ protocolVersion });
        const refused = await new Promise<{ granted: number[] }>((resolve) => sub.subscribe('test/nosubscribe', (err) => resolve((err as unknown as { packet: { granted: number[] } }).packet)));
        assert.deepEqual(refused.granted, [0x80]);
        const granted = await sub.subscribeAsync(['#', '+/+'], { qos: 1 });
        assert.deepEqual(granted.map((g) => g.qos), [1, 1]);
        await pub.publishAsync('test/nosubscribe', 'live hidden', { qos: 1 });
        await pub.publishAsync('test/open', 'live', { qos: 1 });
        // each matching subscription brings the retained message (§3.3.1.3): here two
        await eventually(() => assert.deepEqual([...new Set(sub.received.map((r) => r.payload))].sort(), ['live', 'retained']));
        await new Promise((r) => setTimeout(r, 100));
        assert.ok(!sub.received.some((r) => r.topic === 'test/nosubscribe'), `MQTT ${protocolVersion}: nothing from the denied topic`);
      }
    } finally {
      await b.stop();
    }
  });

  test('"allow all #" lets a client publish to a $ topic; wildcard subscribers still do not get it [MQTT-4.7.2-1]', async () => {
    const b = await startBroker({}, 'allow all #\n');
    try {
      const wild = await b.client({ protocolVersion: 4 });
      await wild.subscribeAsync(['#', '+/+'], { qos: 1 });
      const exact = await b.client({ protocolVersion: 4 });
      await exact.subscribeAsync('$TopicA/+', { qos: 1 });
      const pub = await b.client({ protocolVersion: 4 });
      await pub.publishAsync('$TopicA/B', 'dollar', { qos: 1 }); // acknowledged: a 3.1.1 publisher the ACL refused would be disconnected
      await eventually(() => assert.deepEqual(exact.received.map((r) => r.topic), ['$TopicA/B']));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(wild.received.length, 0);
    } finally {
      await b.stop();
    }
  });

  test('after its DISCONNECT the broker reads on until the client closes: what the client still sends is not answered with a reset', async () => {
    const b = await startBroker({ receiveMaximum: 1 });
    try {
      // half-open: the client may go on writing after the server's FIN, as a client does while it reads its backlog
      const sock = net.connect({ port: b.port, host: '127.0.0.1', allowHalfOpen: true });
      const errors: Error[] = [];
      sock.on('error', (e) => errors.push(e));
      const parser = mqttPacket.parser({ protocolVersion: 5 });
      const got: mqttPacket.Packet[] = [];
      parser.on('packet', (p) => got.push(p));
      sock.on('data', (d) => parser.parse(d));
      const serverEnded = new Promise((r) => sock.once('end', r));
      await new Promise((r) => sock.once('connect', r));
      const send = (p: mqttPacket.Packet) => sock.write(mqttPacket.generate(p, { protocolVersion: 5 }));
      send({ cmd: 'connect', protocolVersion: 5, clientId: 'over-the-limit', clean: true, keepalive: 0 });
      for (const messageId of [1, 2]) send({ cmd: 'publish', topic: 'rm', payload: Buffer.from('x'), qos: 2, messageId, retain: false, dup: false });
      await serverEnded;
      const disconnect = got.find((p) => p.cmd === 'disconnect') as mqttPacket.IDisconnectPacket | undefined;
      assert.equal(disconnect?.reasonCode, 0x93);
      // the client answers the PUBREC it read before the DISCONNECT
      for (let i = 0; i < 3; i++) {
        send({ cmd: 'pubrel', messageId: 1 });
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual(errors.map((e) => (e as NodeJS.ErrnoException).code), []);
      const closed = new Promise((r) => sock.once('close', r));
      sock.end();
      await closed;
    } finally {
      await b.stop();
    }
  });

  test('keep-alive: a silent client is disconnected after 1.5 × its keep-alive', async () => {
    const b = await startBroker();
    try {
      const sock = net.connect(b.port, '127.0.0.1');
      sock.resume(); // read, so that the server's close is seen
      await new Promise((r) => sock.once('connect', r));
      sock.write(mqttPacket.generate({ cmd: 'connect', clientId: 'silent', keepalive: 1, protocolVersion: 4, clean: true }));
      const started = Date.now();
      await new Promise((r) => sock.once('close', r));
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 1400 && elapsed < 3000, `closed after ${elapsed} ms`);
    } finally {
      await b.stop();
    }
  });

  test('malformed input closes that connection only; the broker keeps serving', async () => {
    const b = await startBroker();
    try {
      const good = await b.client({ protocolVersion: 4 });
      await good.subscribeAsync('still/alive');
      for (const garbage of [Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]), Buffer.from('GET / HTTP/1.1\r\n\r\n'), Buffer.from([0x30, 0x02, 0x00])]) {
        const sock = net.connect(b.port, '127.0.0.1');
        sock.resume();
        await new Promise((r) => sock.once('connect', r));
        sock.write(garbage);
        await new Promise((r) => {
          sock.once('close', r);
          setTimeout(() => (sock.destroy(), r(undefined)), 2000);
        });
      }
      const pub = await b.client({ protocolVersion: 4 });
      await pub.publishAsync('still/alive', 'yes', { qos: 1 });
      await eventually(() => assert.equal(good.received.length, 1));
    } finally {
      await b.stop();
    }
  });
});
