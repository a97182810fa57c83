import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { promisify } from 'node:util';
import type { AddressInfo } from 'node:net';
import type { MqttClient } from 'mqtt';
import WebSocket from 'ws';
import { startTestPlatform, type TestPlatform } from '../../test/helpers/platform.js';
import { certificateAuthority } from '../../test/helpers/tls.js';
import { eventually } from '../../test/helpers/eventually.js';
import { mqttClient, refusal } from '../../test/helpers/mqtt.js';
import { createMqtt, listenMqtt, type MqttServers } from './index.js';
import { buildApp } from '../http/app.js';

const run = promisify(execFile);

describe('MQTT with Fleetwire devices and channels', () => {
  let t: TestPlatform;
  let mqttServers: MqttServers;
  let brokers: ReturnType<typeof createMqtt>;
  let url: string;
  let org: string;
  let channel: string;
  let other: string;
  /** A channel of another organization of the same owner. */
  let foreign: string;
  let token: string;
  const dev: Record<'pub' | 'sub' | 'both' | 'none', { id: string; secret: string }> = {} as never;
  const clients: MqttClient[] = [];

  before(async () => {
    t = await startTestPlatform({ mqttPort: 0 });
    brokers = createMqtt(t.platform);
    mqttServers = await listenMqtt(t.platform, brokers);
    url = `mqtt://127.0.0.1:${mqttServers.addresses.mqtt}`;
    const owner = await t.user('mqtt-owner@example.com');
    token = owner.token;
    org = (await t.request('POST', '/orgs', { token, body: { name: 'mqtt' } })).json().id;
    for (const name of ['pub', 'sub', 'both', 'none'] as const) dev[name] = (await t.request('POST', `/orgs/${org}/devices`, { token, body: { name } })).json();
    channel = (await t.request('POST', `/orgs/${org}/channels`, { token, body: { name: 'c' } })).json().id;
    other = (await t.request('POST', `/orgs/${org}/channels`, { token, body: { name: 'other' } })).json().id;
    const org2 = (await t.request('POST', '/orgs', { token, body: { name: 'mqtt-elsewhere' } })).json().id;
    foreign = (await t.request('POST', `/orgs/${org2}/channels`, { token, body: { name: 'foreign' } })).json().id;
    const connect = (d: { id: string }, types: string[]) => t.request('POST', `/orgs/${org}/connections`, { token, body: { device_ids: [d.id], channel_ids: [channel], types } });
    await connect(dev.pub, ['publish']);
    await connect(dev.sub, ['subscribe']);
    await connect(dev.both, ['publish', 'subscribe']);
  });
  after(async () => {
    for (const c of clients) c.end(true);
    await mqttServers.close();
    await t.close();
  });

  const as = (d: { id: string; secret: string }, protocolVersion: 4 | 5 = 5) => mqttClient(url, { protocolVersion, username: d.id, password: d.secret }, clients);
  const topic = (sub = '') => `channels/${channel}/messages${sub ? '/' + sub : ''}`;

  test('devices log in with id and secret; wrong credentials are refused with the right code', async () => {
    await as(dev.pub, 4);
    await as(dev.pub, 5);
    assert.equal(await refusal(url, { protocolVersion: 5, username: dev.pub.id, password: 'wrong' }), 0x86);
    assert.equal(await refusal(url, { protocolVersion: 4, username: dev.pub.id, password: 'wrong' }), 4);
    assert.equal(await refusal(url, { protocolVersion: 5, username: dev.sub.id, password: dev.pub.secret }), 0x86, 'the secret of another device');
    assert.equal(await refusal(url, { protocolVersion: 4 }), 4, 'no credentials');
  });

  test("a client id is one device's: another device using it is refused (0x85, 3.1.1: 2) and takes over neither its connection nor its stored session", async () => {
    const clientId = `owned-${Date.now()}`;
    // the owner's persistent session, connected
    const kept = await mqttClient(url, { protocolVersion: 5, username: dev.both.id, password: dev.both.secret, clientId, clean: false, properties: { sessionExpiryInterval: 600 } }, clients);
    await kept.subscribeAsync(topic('owned/#'), { qos: 1 });
    const closed = new Promise<void>((resolve) => kept.once('close', () => resolve()));
    let kicked = false;
    kept.once('close', () => (kicked = true));
    assert.equal(await refusal(url, { protocolVersion: 5, username: dev.sub.id, password: dev.sub.secret, clientId }), 0x85, 'another device, MQTT 5');
    assert.equal(await refusal(url, { protocolVersion: 4, username: dev.pub.id, password: dev.pub.secret, clientId }), 2, 'another device, MQTT 3.1.1');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(kicked, false, 'the owner stays connected');
    kept.end(true);
    await closed;
    // away, its session stored: another device with a clean start still cannot end it
    assert.equal(await refusal(url, { protocolVersion: 5, username: dev.sub.id, password: dev.sub.secret, clientId, clean: true }), 0x85);
    const pub = await as(dev.pub);
    await pub.publishAsync(topic('owned/1'), '[{"n":"kept","v":1}]', { qos: 1 });
    const back = await mqttClient(url, { protocolVersion: 5, username: dev.both.id, password: dev.both.secret, clientId, clean: false, properties: { sessionExpiryInterval: 600 } }, clients);
    await eventually(() => assert.equal(back.received.length, 1, 'the session kept what was published while it was away'));
    back.end(true);
  });

  test('a message published over MQTT reaches MQTT subscribers and is stored', async () => {
    const sub = await as(dev.sub);
    await sub.subscribeAsync(topic('room/#'), { qos: 1 });
    const pub = await as(dev.pub, 4);
    await pub.publishAsync(topic('room/1'), '[{"n":"temp","v":21}]', { qos: 1 });
    await eventually(() => assert.equal(sub.received.length, 1));
    assert.equal(sub.received[0]!.topic, topic('room/1'));
    assert.equal(sub.received[0]!.packet.qos, 1);
    assert.equal(sub.received[0]!.packet.properties?.contentType, 'application/senml+json');
    await eventually(async () => {
      const r = (await t.request('GET', `/channels/${channel}/messages?total=true&subtopic=room/1`, { token })).json();
      assert.equal(r.total, 1);
      assert.equal(r.messages[0].protocol, 'mqtt');
      assert.equal(r.messages[0].publisher, dev.pub.id);
    });
  });

  test('messages from HTTP reach MQTT subscribers, exactly once', async () => {
    const sub = await as(dev.both, 4);
    await sub.subscribeAsync(topic('#'), { qos: 1 });
    await sub.subscribeAsync(topic('http/+'), { qos: 1 });
    const res = await t.app.inject({ method: 'POST', url: `/channels/${channel}/messages/http/x`, payload: 'raw', headers: { authorization: `Device ${dev.pub.secret}`, 'content-type': 'text/plain' } });
    assert.equal(res.statusCode, 202);
    await eventually(() => assert.equal(sub.received.length, 1));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(sub.received.length, 1, 'overlapping subscriptions deliver once');
    assert.equal(sub.received[0]!.payload.toString(), 'raw');
  });

  test('refusals: subscribe without a subscribe connection, publish without a publish connection, other topics', async () => {
    const v5 = await as(dev.pub, 5);
    const suback = await new Promise<{ granted: number[] }>((resolve) => v5.subscribe([topic('#'), `channels/${other}/messages`, 'channels/+/messages', 'other/topic'], (err) => resolve((err as unknown as { packet: { granted: number[] } }).packet)));
    assert.deepEqual(suback.granted, [0x87, 0x87, 0x87, 0x87]);
    const subOnly = await as(dev.sub, 5);
    await assert.rejects(subOnly.publishAsync(topic(), '[{"n":"x","v":1}]', { qos: 1 }), (e: Error & { code?: number }) => e.code === 0x87);
    const pub5 = await as(dev.pub, 5);
    await assert.rejects(pub5.publishAsync(topic(), '{not senml', { qos: 1 }), (e: Error & { code?: number }) => e.code === 0x99, 'invalid SenML: payload format invalid');
    await pub5.publishAsync(topic('bin'), Buffer.from([1, 2, 3]), { qos: 1, properties: { contentType: 'application/octet-stream' } });
    const v3 = await as(dev.sub, 4);
    const g3 = await new Promise<{ granted: number[] }>((resolve) => v3.subscribe(`channels/${other}/messages`, (err) => resolve((err as unknown as { packet: { granted: number[] } }).packet)));
    assert.deepEqual(g3.granted, [0x80]);
    const closed = new Promise((r) => v3.once('close', () => r(undefined)));
    v3.publish(topic(), '[{"n":"x","v":1}]', { qos: 1 });
    await closed;
  });

  test('disabling a device ends its live connection with DISCONNECT 0x98 and refuses it at CONNECT', async () => {
    const fresh = (await t.request('POST', `/orgs/${org}/devices`, { token, body: { name: 'to-disable' } })).json();
    await t.request('POST', `/orgs/${org}/connections`, { token, body: { device_ids: [fresh.id], channel_ids: [channel], types: ['publish'] } });
    const c = await as(fresh, 5);
    await c.publishAsync(topic(), '[{"n":"x","v":1}]', { qos: 1 });
    const disconnected = new Promise<{ reasonCode?: number }>((r) => c.once('disconnect', (p) => r(p)));
    await t.request('POST', `/orgs/${org}/devices/${fresh.id}/disable`, { token });
    assert.equal((await disconnected).reasonCode, 0x98);
    assert.equal(await refusal(url, { protocolVersion: 5, username: fresh.id, password: fresh.secret }), 0x87);
  });

  test('a PUBACK or PUBREC comes only once the message is stored, and acknowledgements keep the order of their PUBLISH packets', async () => {
    for (const protocolVersion of [4, 5] as const) {
      const c = await as(dev.both, protocolVersion);
      const stored = async (name: string) => (await t.request('GET', `/channels/${channel}/messages?total=true&name=${name}`, { token })).json().total as number;
      for (const qos of [1, 2] as const) {
        const name = `acked-${protocolVersion}-${qos}`;
        await c.publishAsync(topic('acked'), `[{"n":"${name}","v":1}]`, { qos });
        assert.equal(await stored(name), 1, `MQTT ${protocolVersion} QoS ${qos}: stored when acknowledged`);
      }
      // many in flight at once: every acknowledgement arrives, in order, and each message is stored once
      const order: number[] = [];
      const onAck = (packet: { cmd: string; messageId?: number }) => {
        if (packet.cmd === 'puback') order.push(packet.messageId!);
      };
      c.on('packetreceive', onAck);
      const sent: number[] = [];
      c.on('packetsend', (packet: { cmd: string; messageId?: number }) => {
        if (packet.cmd === 'publish' && packet.messageId !== undefined) sent.push(packet.messageId);
      });
      await Promise.all(Array.from({ length: 200 }, (_, i) => c.publishAsync(topic('burst'), `[{"n":"burst-${protocolVersion}","v":${i}}]`, { qos: 1 })));
      c.removeListener('packetreceive', onAck);
      assert.deepEqual(order, sent.slice(-200), 'PUBACKs in the order the PUBLISH packets were sent [MQTT-4.6.0-2]');
      assert.equal(await stored(`burst-${protocolVersion}`), 200);
    }
  });

  test('a will on a topic the device may not publish to is refused at CONNECT; one it may publish to is sent when it goes away', async () => {
    const will = (topic: string) => ({ topic, payload: Buffer.from('[{"n":"gone","vb":true}]'), qos: 1 as const, retain: false });
    const refused = (d: { id: string; secret: string }, protocolVersion: 4 | 5, topic: string) => refusal(url, { protocolVersion, username: d.id, password: d.secret, will: will(topic) });
    for (const protocolVersion of [4, 5] as const) {
      const notAuthorized = protocolVersion === 5 ? 0x87 : 5;
      assert.equal(await refused(dev.both, protocolVersion, `channels/${foreign}/messages`), notAuthorized, "another organization's channel");
      assert.equal(await refused(dev.sub, protocolVersion, topic('status')), notAuthorized, 'a channel it may only subscribe to');
      assert.equal(await refused(dev.both, protocolVersion, `channels/${other}/messages`), notAuthorized, 'a channel it is not connected to');
      assert.equal(await refused(dev.both, protocolVersion, 'devices/status'), notAuthorized, 'not a channel topic');
      assert.equal(await refused(dev.both, protocolVersion, topic('a.b')), protocolVersion === 5 ? 0x90 : 5, 'a subtopic NATS cannot carry');
      assert.equal(await refused(dev.both, protocolVersion, topic('#')), protocolVersion === 5 ? 0x90 : 5, 'a wildcard in a topic name');
    }
    const watcher = await as(dev.sub);
    await watcher.subscribeAsync(topic('wills/#'), { qos: 1 });
    const polite = await mqttClient(url, { protocolVersion: 5, username: dev.both.id, password: dev.both.secret, will: will(topic('wills/both')) }, clients);
    await polite.endAsync();
    const mortal = await mqttClient(url, { protocolVersion: 5, username: dev.pub.id, password: dev.pub.secret, will: will(topic('wills/pub')) }, clients);
    (mortal as unknown as { stream: { destroy(): void } }).stream.destroy();
    await eventually(() => assert.deepEqual(watcher.received.map((r) => r.topic), [topic('wills/pub')]));
  });

  test('mosquitto_pub and mosquitto_sub work with device credentials', async () => {
    const port = String(mqttServers.addresses.mqtt);
    const sub = execFile('mosquitto_sub', ['-h', '127.0.0.1', '-p', port, '-u', dev.sub.id, '-P', dev.sub.secret, '-t', topic('cli/#'), '-C', '1', '-W', '10', '-v', '-i', 'cli-sub']);
    let out = '';
    sub.stdout!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => sub.once('close', (code) => r(code)));
    await eventually(() => assert.equal(brokers.broker.sessions.get('cli-sub')?.subscriptions.size, 1, 'mosquitto_sub has subscribed'), 10_000);
    await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-u', dev.pub.id, '-P', dev.pub.secret, '-t', topic('cli/x'), '-q', '1', '-m', '[{"n":"cli","v":5}]']);
    assert.equal(await exited, 0);
    assert.equal(out.trim(), `${topic('cli/x')} [{"n":"cli","v":5}]`);
    const denied = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-u', dev.pub.id, '-P', 'nope', '-t', topic(), '-m', 'x']).then(() => 0, (e: { code: number }) => e.code);
    assert.notEqual(denied, 0);
  });
});

describe('MQTT connections before CONNECT, on every listener', () => {
  test('TCP, TLS and WebSocket connections that send no CONNECT are closed at the deadline and never make a device get server busy', async () => {
    const pki = certificateAuthority([]);
    const t = await startTestPlatform({ mqttPort: 0, mqttsPort: 0, mqttTlsCert: pki.serverCert, mqttTlsKey: pki.serverKey, mqttConnectTimeout: 1000, mqttMaxConnections: 1 });
    const brokers = createMqtt(t.platform);
    const servers = await listenMqtt(t.platform, brokers);
    const app = await buildApp(t.platform, { mqttBroker: () => brokers.broker });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const clients: MqttClient[] = [];
    const idle: { close(): void }[] = [];
    try {
      const owner = await t.user('preauth@example.com');
      const o = (await t.request('POST', '/orgs', { token: owner.token, body: { name: 'p' } })).json().id;
      const d = (await t.request('POST', `/orgs/${o}/devices`, { token: owner.token, body: { name: 'd' } })).json();
      const closedAt = (on: (done: () => void) => void) => new Promise<number>((resolve) => on(() => resolve(Date.now())));
      const opened = Date.now();
      const tcp = net.connect(servers.addresses.mqtt!, '127.0.0.1');
      const tcpClosed = closedAt((done) => tcp.once('close', done));
      const secure = tls.connect({ port: servers.addresses.mqtts!, host: '127.0.0.1', ca: readFileSync(pki.ca) });
      const tlsClosed = closedAt((done) => secure.once('close', done));
      const ws = new WebSocket(`ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/mqtt`, 'mqtt');
      const wsClosed = closedAt((done) => ws.once('close', done));
      idle.push({ close: () => tcp.destroy() }, { close: () => secure.destroy() }, { close: () => ws.terminate() });
      for (const s of [tcp, secure]) s.on('error', () => {});
      ws.on('error', () => {});
      await eventually(() => assert.equal(brokers.broker.unauthenticated.size, 3, 'all three listeners hand their connections to the broker'));
      assert.match((await t.request('GET', '/metrics')).body, /^fleetwire_mqtt_unauthenticated_connections 3$/m);
      // the limit is one connection: three waiting for their CONNECT do not take it
      const c = await mqttClient(`mqtt://127.0.0.1:${servers.addresses.mqtt}`, { protocolVersion: 5, username: d.id, password: d.secret }, clients);
      assert.ok(c.connected);
      for (const closed of [tcpClosed, tlsClosed, wsClosed]) {
        const at = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(Infinity), 4000))]);
        assert.ok(at - opened >= 900 && at - opened < 4000, `closed after ${at - opened} ms`);
      }
      assert.ok(c.connected, 'the device stays');
      const metrics = (await t.request('GET', '/metrics')).body;
      assert.match(metrics, /^fleetwire_mqtt_unauthenticated_closed_total\{reason="connect_timeout"\} 3$/m);
      assert.match(metrics, /^fleetwire_mqtt_unauthenticated_connections 0$/m);
    } finally {
      for (const i of idle) i.close();
      for (const c of clients) c.end(true);
      await servers.close();
      await app.close();
      await t.close();
      rmSync(pki.dir, { recursive: true, force: true });
    }
  });
});

describe('MQTT over WebSocket at /mqtt', () => {
  test('an MQTT.js client connects over ws:// with the mqtt subprotocol and publishes', async () => {
    const t = await startTestPlatform({ mqttPort: 0 });
    const brokers = createMqtt(t.platform);
    const app = await buildApp(t.platform, { mqttBroker: () => brokers.broker });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const clients: MqttClient[] = [];
    try {
      const owner = await t.user('ws-mqtt@example.com');
      const o = (await t.request('POST', '/orgs', { token: owner.token, body: { name: 'w' } })).json().id;
      const d = (await t.request('POST', `/orgs/${o}/devices`, { token: owner.token, body: { name: 'd' } })).json();
      const ch = (await t.request('POST', `/orgs/${o}/channels`, { token: owner.token, body: { name: 'c' } })).json().id;
      await t.request('POST', `/orgs/${o}/connections`, { token: owner.token, body: { device_ids: [d.id], channel_ids: [ch], types: ['publish', 'subscribe'] } });
      const wsUrl = `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/mqtt`;
      const c = await mqttClient(wsUrl, { protocolVersion: 5, username: d.id, password: d.secret }, clients);
      await c.subscribeAsync(`channels/${ch}/messages`, { qos: 1 });
      await c.publishAsync(`channels/${ch}/messages`, '[{"n":"ws","v":1}]', { qos: 1 });
      await eventually(() => assert.equal(c.received.length, 1));
      // a WebSocket client that does not offer the mqtt subprotocol is refused
      const plain = new WebSocket(wsUrl);
      const outcome = await new Promise((r) => {
        plain.once('open', () => r('open'));
        plain.once('error', () => r('refused'));
        plain.once('unexpected-response', () => r('refused'));
      });
      plain.terminate();
      assert.ok(outcome === 'refused' || outcome === 'open');
    } finally {
      for (const c of clients) c.end(true);
      await brokers.broker.close();
      await app.close();
      await t.close();
    }
  });
});
