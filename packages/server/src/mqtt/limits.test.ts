// test-database: none
// What a client may hold of the broker before and after its CONNECT: real sockets for what arrives
// unfinished (partial packets, idle sockets), raw packets in memory for exact SUBACK codes.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import mqtt from 'mqtt';
import mqttPacket, { type IConnackPacket, type ISubackPacket, type Packet } from 'mqtt-packet';
import { Broker, type BrokerOptions } from './broker.js';
import { openPolicy } from './open-policy.js';
import { noMetrics } from './metrics.js';
import type { BrokerPolicy } from './policy.js';
import { parseAcl } from './acl.js';
import { listenTcp } from './transports/tcp.js';
import { createLogger } from '../core/logger.js';
import { rawClient } from '../../test/helpers/mqtt-raw.js';
import { mqttClient } from '../../test/helpers/mqtt.js';

async function tcpBroker(options: Partial<BrokerOptions>) {
  const broker = new Broker(openPolicy(undefined), createLogger('silent'), options);
  const server = await listenTcp(broker, '127.0.0.1', 0);
  const port = (server.address() as AddressInfo).port;
  const sockets: net.Socket[] = [];
  const clients: mqtt.MqttClient[] = [];
  return {
    broker,
    url: `mqtt://127.0.0.1:${port}`,
    clients,
    /** A TCP socket to the broker, open once it resolves; `closedAt` settles when the broker closes it. */
    async socket(): Promise<net.Socket & { closedAt: Promise<number> }> {
      const s = net.connect(port, '127.0.0.1') as net.Socket & { closedAt: Promise<number> };
      sockets.push(s);
      s.on('error', () => {});
      s.closedAt = new Promise((resolve) => s.once('close', () => resolve(Date.now())));
      await new Promise((resolve) => s.once('connect', resolve));
      return s;
    },
    async stop() {
      for (const c of clients) c.end(true);
      for (const s of sockets) s.destroy();
      await broker.close();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Resolves with 'closed' when the socket closes within `ms`, 'open' otherwise. */
function closedWithin(s: { closedAt: Promise<number> }, ms: number): Promise<'closed' | 'open'> {
  return Promise.race([s.closedAt.then(() => 'closed' as const), new Promise<'open'>((r) => setTimeout(() => r('open'), ms))]);
}

const connectBytes = (protocolVersion: 4 | 5, extra: Record<string, unknown> = {}) =>
  mqttPacket.generate({ cmd: 'connect', protocolVersion, clientId: 'raw', clean: true, keepalive: 0, ...extra } as Packet, { protocolVersion });

describe('MQTT before CONNECT', () => {
  test('idle sockets without CONNECT do not count toward the connection limit: a device still connects', async () => {
    const b = await tcpBroker({ maxConnections: 50 });
    try {
      for (let i = 0; i < 60; i++) await b.socket();
      const device = await mqttClient(b.url, { clientId: 'device', protocolVersion: 5 }, b.clients);
      assert.ok(device.connected);
      // the limit still holds for connections that completed their CONNECT
      for (let i = 1; i < 50; i++) await mqttClient(b.url, { clientId: `device-${i}`, protocolVersion: 5 }, b.clients);
      const refused = mqtt.connect(b.url, { clientId: 'one-too-many', protocolVersion: 5, reconnectPeriod: 0 });
      b.clients.push(refused);
      const code = await new Promise((resolve) => refused.once('error', (e) => resolve((e as unknown as { code: number }).code)));
      assert.equal(code, 0x89, 'server busy');
    } finally {
      await b.stop();
    }
  });

  test('connections refused at the limit are counted and logged at most every 10 s, not once each', async () => {
    const lines: { msg: string; refused?: number }[] = [];
    const log = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string; refused?: number }) });
    let now = 1_000_000;
    const broker = new Broker(openPolicy(undefined), log, { maxConnections: 1 }, noMetrics, { clock: { now: () => now } });
    const refusedLines = () => lines.filter((l) => /refused at the connection limit/.test(l.msg));
    try {
      const held = rawClient(broker, 5);
      held.send({ cmd: 'connect', protocolVersion: 5, clientId: 'held', clean: true, keepalive: 0 } as Packet);
      await held.next('connack');
      const attempt = async () => {
        const c = rawClient(broker, 5);
        c.send({ cmd: 'connect', protocolVersion: 5, clientId: `c${Math.random()}`, clean: true, keepalive: 0 } as Packet);
        assert.equal(((await c.next('connack')) as IConnackPacket).reasonCode, 0x89);
      };
      for (let i = 0; i < 5; i++) await attempt();
      assert.equal(refusedLines().length, 1, 'one line for the first refusal of a burst');
      now += 10_001;
      for (let i = 0; i < 3; i++) await attempt();
      assert.deepEqual(refusedLines().map((l) => l.refused), [1, 5], 'the next line counts the refusals since the last one');
      assert.equal(lines.filter((l) => l.msg === 'MQTT connection refused').length, 0, 'no line per refused connection');
    } finally {
      await broker.close();
    }
  });

  test('a socket that sends half a CONNECT, or nothing, is closed at the CONNECT deadline; a connected client is not', async () => {
    const b = await tcpBroker({ connectTimeoutMs: 300 });
    try {
      const opened = Date.now();
      const half = await b.socket();
      const bytes = connectBytes(4);
      half.write(bytes.subarray(0, bytes.length >> 1));
      const silent = await b.socket();
      const device = await mqttClient(b.url, { clientId: 'device', protocolVersion: 4 }, b.clients);
      assert.equal(await closedWithin(half, 3000), 'closed');
      assert.equal(await closedWithin(silent, 3000), 'closed');
      assert.ok((await half.closedAt) - opened >= 280, 'not before the deadline');
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(device.connected, 'the connected client stays');
      await device.publishAsync('still/here', 'yes', { qos: 1 });
    } finally {
      await b.stop();
    }
  });

  for (const protocolVersion of [4, 5] as const) {
    test(`MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}: a CONNECT larger than the limit before CONNECT is refused as soon as its header arrives${protocolVersion === 5 ? ' (CONNACK 0x95)' : ''}`, async () => {
      // the default limits: 64 KiB before CONNECT, 257 KiB after
      const b = await tcpBroker({});
      try {
        const big = connectBytes(protocolVersion, { will: { topic: 'wills/big', payload: Buffer.alloc(100 * 1024), qos: 0, retain: false } });
        const s = await b.socket();
        const received: Buffer[] = [];
        s.on('data', (d: Buffer) => received.push(d));
        s.write(big.subarray(0, 2048)); // 2 KiB of a 100 KiB CONNECT
        assert.equal(await closedWithin(s, 1000), 'closed', 'closed at once, not at the deadline (10 s)');
        const packets: Packet[] = [];
        const parser = mqttPacket.parser({ protocolVersion });
        parser.on('packet', (p: Packet) => packets.push(p));
        parser.parse(Buffer.concat(received));
        if (protocolVersion === 5) assert.deepEqual(packets.map((p) => [p.cmd, (p as IConnackPacket).reasonCode]), [['connack', 0x95]]);
        else assert.deepEqual(packets, []);
      } finally {
        await b.stop();
      }
    });
  }

  test('a CONNECT with a 32 KiB will fits under the limit, and packets after it may be as large as the maximum packet size', async () => {
    const b = await tcpBroker({});
    try {
      const watcher = await mqttClient(b.url, { clientId: 'watcher', protocolVersion: 5 }, b.clients);
      await watcher.subscribeAsync('big/#', { qos: 1 });
      const device = await mqttClient(b.url, { clientId: 'device', protocolVersion: 5, will: { topic: 'big/will', payload: Buffer.alloc(32 * 1024), qos: 1, retain: false } }, b.clients);
      await device.publishAsync('big/message', Buffer.alloc(200 * 1024), { qos: 1 });
      (device as unknown as { stream: net.Socket }).stream.destroy();
      const deadline = Date.now() + 3000;
      while (watcher.received.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(watcher.received.map((r) => [r.topic, r.payload.length]), [['big/message', 200 * 1024], ['big/will', 32 * 1024]]);
    } finally {
      await b.stop();
    }
  });

  test('too many sockets waiting for their CONNECT: the oldest is closed, and a device still connects', async () => {
    const b = await tcpBroker({ maxUnauthenticated: 5 });
    try {
      const waiting = [];
      for (let i = 0; i < 5; i++) waiting.push(await b.socket());
      await new Promise((r) => setTimeout(r, 50)); // the broker has taken all five
      const sixth = await b.socket();
      assert.equal(await closedWithin(waiting[0]!, 1000), 'closed', 'the oldest');
      const device = await mqttClient(b.url, { clientId: 'device', protocolVersion: 4 }, b.clients);
      assert.ok(device.connected);
      // the device's socket took the place of the next oldest; the newer ones stay until their deadline
      assert.equal(await closedWithin(waiting[1]!, 1000), 'closed');
      assert.deepEqual(await Promise.all([...waiting.slice(2), sixth].map((w) => closedWithin(w, 100))), ['open', 'open', 'open', 'open']);
      assert.equal(b.broker.unauthenticated.size, 4);
    } finally {
      await b.stop();
    }
  });
});

describe('MQTT subscription limit per client', () => {
  for (const protocolVersion of [4, 5] as const) {
    const quota = protocolVersion === 5 ? 0x97 : 0x80;
    test(`MQTT ${protocolVersion === 5 ? '5: SUBACK 0x97' : '3.1.1: SUBACK 0x80'} for filters over the limit; a resubscribe is not a new one, shared ones count, an unsubscribe frees one`, async () => {
      const broker = new Broker(openPolicy(undefined), createLogger('silent'), { maxSubscriptions: 3 });
      const c = rawClient(broker, protocolVersion);
      const opts = protocolVersion === 5 ? { properties: { sessionExpiryInterval: 300 } } : {};
      c.send({ cmd: 'connect', protocolVersion, clientId: `limits-${protocolVersion}`, clean: false, keepalive: 0, ...opts } as Packet);
      await c.next('connack');
      const subscribe = async (messageId: number, topics: string[]) => {
        c.send({ cmd: 'subscribe', messageId, subscriptions: topics.map((topic) => ({ topic, qos: 1 as const })) });
        return ((await c.next('suback')) as ISubackPacket).granted;
      };
      assert.deepEqual(await subscribe(1, ['a/1', '$share/g/a/1']), [1, 1]);
      assert.deepEqual(await subscribe(2, ['a/1', 'a/2', 'a/3', '$share/h/a/1']), [1, 1, quota, quota]);
      c.send({ cmd: 'unsubscribe', messageId: 3, unsubscriptions: ['a/2'] });
      await c.next('unsuback');
      assert.deepEqual(await subscribe(4, ['a/3', 'a/4']), [1, quota]);
      c.drop();

      // the session comes back with its three subscriptions: they deliver, and a fourth is still refused
      const back = rawClient(broker, protocolVersion);
      back.send({ cmd: 'connect', protocolVersion, clientId: `limits-${protocolVersion}`, clean: false, keepalive: 0, ...opts } as Packet);
      assert.equal(((await back.next('connack')) as IConnackPacket).sessionPresent, true);
      const sub = async (messageId: number, topic: string) => {
        back.send({ cmd: 'subscribe', messageId, subscriptions: [{ topic, qos: 1 }] });
        return ((await back.next('suback')) as ISubackPacket).granted;
      };
      assert.deepEqual(await sub(5, 'a/5'), [quota]);
      const pub = rawClient(broker, protocolVersion);
      pub.send({ cmd: 'connect', protocolVersion, clientId: 'publisher', clean: true, keepalive: 0 } as Packet);
      await pub.next('connack');
      for (const topic of ['a/1', 'a/3', 'a/5']) pub.send({ cmd: 'publish', topic, payload: Buffer.from(topic), qos: 0, retain: false, dup: false } as Packet);
      const got: string[] = [];
      for (let i = 0; i < 3; i++) got.push(((await back.next('publish')) as mqttPacket.IPublishPacket).topic);
      assert.deepEqual(got.sort(), ['a/1', 'a/1', 'a/3'], 'a/1 twice: the plain and the shared subscription');
      await broker.close();
    });
  }
});

describe('MQTT will at CONNECT', () => {
  for (const protocolVersion of [4, 5] as const) {
    test(`MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}: a will the ACL would not let the client publish, or with a wildcard, is refused with CONNACK ${protocolVersion === 5 ? '0x87 / 0x90' : '5'}`, async () => {
      const broker = new Broker(openPolicy(parseAcl('deny publish private/#\nallow all #\n')), createLogger('silent'), {});
      const connack = async (willTopic: string) => {
        const c = rawClient(broker, protocolVersion);
        c.send({ cmd: 'connect', protocolVersion, clientId: `will-${willTopic}`, clean: true, keepalive: 0, will: { topic: willTopic, payload: Buffer.from('bye'), qos: 0, retain: false } } as Packet);
        const p = (await c.next('connack')) as IConnackPacket;
        return protocolVersion === 5 ? p.reasonCode : p.returnCode;
      };
      assert.equal(await connack('private/status'), protocolVersion === 5 ? 0x87 : 5);
      assert.equal(await connack('public/+'), protocolVersion === 5 ? 0x90 : 5);
      assert.equal(await connack('public/status'), 0);
      await broker.close();
    });
  }
});

describe('MQTT publisher faster than the platform takes its messages', () => {
  test('a connection whose PUBLISH waits stops reading its socket: TCP holds the flood, not our memory; nothing is lost', async () => {
    // the platform's side of a PUBLISH waits (as for room on a full bus) until `open` is called
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let published = 0;
    let read = 0;
    const policy = openPolicy(undefined);
    const slow: BrokerPolicy = {
      ...policy,
      async publish(client, message) {
        await gate;
        published++;
        return policy.publish(client, message);
      },
    };
    let taken = 0; // PUBLISHes the connection took off the bytes it read
    const metrics = { ...noMetrics, bytesIn: (n: number) => void (read += n), packetIn: (cmd: string) => void (cmd === 'publish' && taken++) };
    const broker = new Broker(slow, createLogger('silent'), { maxWaitingPackets: 16 }, metrics);
    const server = await listenTcp(broker, '127.0.0.1', 0);
    const port = (server.address() as AddressInfo).port;
    const socket = net.connect(port, '127.0.0.1');
    try {
      await new Promise((r) => socket.once('connect', r));
      socket.write(connectBytes(4, { clientId: 'flood' }));
      await new Promise((r) => socket.once('data', r)); // CONNACK
      const payload = Buffer.alloc(100, 1);
      const one = mqttPacket.generate({ cmd: 'publish', topic: 'flood/a', payload, qos: 0, retain: false, dup: false } as Packet);
      const sent = 100_000; // 12 MB: more than the kernel's socket buffers on both ends hold
      socket.write(Buffer.concat(Array.from({ length: sent }, () => one)));
      await new Promise((r) => setTimeout(r, 500));
      // read: the CONNECT, the packets up to the limit and what the parser had of the chunk in hand
      assert.ok(read < 300 * 1024, `the broker read ${read} bytes of ${sent * one.length} while its first PUBLISH waited`);
      assert.ok(socket.writableLength > 1024 * 1024, `the rest waits in the client's socket (${socket.writableLength} bytes buffered)`);
      // and of what it read, it took the packets up to the limit only: the rest of the read waits as bytes
      assert.equal(taken, 16, 'PUBLISHes taken while the first waits');
      open();
      const deadline = Date.now() + 10_000;
      while (published < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(published, sent, 'every PUBLISH is taken once the platform has room');
    } finally {
      socket.destroy();
      await broker.close();
      await new Promise((r) => server.close(r));
    }
  });
});
