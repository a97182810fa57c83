// Cutting a device off (disable, delete, disconnect from a channel, new secret, channel deleted)
// ends its live MQTT 3.1.1 and 5 connections, WebSocket sockets and CoAP observations at once: in
// one process on the in-process bus, and across two nodes over NATS (FLEETWIRE_TEST_NATS_URL,
// default nats://127.0.0.1:4222).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { IDisconnectPacket } from 'mqtt-packet';
import { generate, parse, type ParsedPacket } from 'coap-packet';
import WebSocket from 'ws';
import { connect as natsConnect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { loadConfig, type Config } from '../src/core/config.js';
import { ManualClock } from '../src/core/clock.js';
import { createLogger } from '../src/core/logger.js';
import { createPlatform, type Platform } from '../src/platform.js';
import { buildApp, type App } from '../src/http/app.js';
import { createMqtt, listenMqtt, type MqttServers } from '../src/mqtt/index.js';
import { listenCoap, type CoapListener } from '../src/coap/index.js';
import { NatsBus } from '../src/messaging/nats-bus.js';
import type { Database } from '../src/db/index.js';
import { option, uint } from '../src/coap/message.js';
import { anotherHandle, openTestDatabase } from './helpers/database.js';
import { mqttClient, refusal, type TestClient } from './helpers/mqtt.js';
import { eventually } from './helpers/eventually.js';
import { natsUrl, serviceAvailable } from './helpers/services.js';
import { testPassword } from './helpers/platform.js';

/** One Fleetwire node: HTTP (and WebSocket), MQTT and CoAP listening on ports the OS chose. */
interface Node {
  platform: Platform;
  app: App;
  mqtt: MqttServers;
  coap: CoapListener;
  mqttUrl: string;
  wsBase: string;
  close(): Promise<void>;
}

async function startNode(db: Database, key: Buffer, overrides: Partial<Config>, bus?: NatsBus): Promise<Node> {
  const dataDir = mkdtempSync(join(tmpdir(), 'fleetwire-cutoff-'));
  const config = loadConfig({}, { dataDir, logLevel: 'silent', mqttPort: 0, coapPort: 0, host: '127.0.0.1', ...overrides });
  const platform = await createPlatform(config, { db, clock: new ManualClock(Date.now()), log: createLogger('silent'), key, ...(bus ? { bus } : {}) });
  const brokers = createMqtt(platform);
  const app = await buildApp(platform, { mqttBroker: () => brokers.broker });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const mqtt = await listenMqtt(platform, brokers);
  const coap = await listenCoap(platform, { ackTimeoutMs: 100, maxRetransmit: 2 });
  return {
    platform,
    app,
    mqtt,
    coap,
    mqttUrl: `mqtt://127.0.0.1:${mqtt.addresses.mqtt}`,
    wsBase: `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
    async close() {
      await coap.close();
      await mqtt.close();
      await app.close();
      await platform.close();
      await bus?.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

interface Device {
  id: string;
  secret: string;
}

/** Calls the management API of a node as its organization owner. */
class Admin {
  org = '';
  private token = '';
  constructor(private readonly node: Node) {}

  async call(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown): Promise<{ status: number; json: () => Record<string, string> }> {
    const res = await this.node.app.inject({ method, url, headers: { authorization: `Bearer ${this.token}` }, ...(body !== undefined ? { payload: body as object } : {}) });
    return { status: res.statusCode, json: () => res.json() };
  }

  async open(email: string): Promise<this> {
    await this.node.platform.users.create({ email, password: testPassword, role: 'user' });
    const res = await this.node.app.inject({ method: 'POST', url: '/auth/token', payload: { email, password: testPassword } });
    this.token = res.json().access_token;
    this.org = (await this.call('POST', '/orgs', { name: 'cutoff' })).json().id!;
    return this;
  }

  async device(name: string): Promise<Device> {
    const d = (await this.call('POST', `/orgs/${this.org}/devices`, { name })).json();
    return { id: d.id!, secret: d.secret! };
  }

  async channel(name: string): Promise<string> {
    return (await this.call('POST', `/orgs/${this.org}/channels`, { name })).json().id!;
  }

  async connect(devices: Device[], channels: string[], types = ['publish', 'subscribe']): Promise<void> {
    const r = await this.call('POST', `/orgs/${this.org}/connections`, { device_ids: devices.map((d) => d.id), channel_ids: channels, types });
    assert.equal(r.status, 204);
  }

  async disconnect(devices: Device[], channels: string[], types = ['publish', 'subscribe']): Promise<void> {
    const r = await this.call('DELETE', `/orgs/${this.org}/connections`, { device_ids: devices.map((d) => d.id), channel_ids: channels, types });
    assert.equal(r.status, 204);
  }
}

/** A CoAP client on its own UDP socket that acknowledges confirmable messages and keeps all it receives. */
class CoapObserver {
  readonly socket = dgram.createSocket('udp4');
  readonly received: ParsedPacket[] = [];
  private mid = 1;
  token = randomBytes(4);

  constructor(private readonly port: number) {
    this.socket.on('message', (m) => {
      const p = parse(m);
      this.received.push(p);
      if (p.confirmable) this.socket.send(generate({ code: '0.00', messageId: p.messageId, ack: true }), this.port, '127.0.0.1');
    });
  }

  /** Observes a channel; resolves once the registration is answered 2.05. */
  async observe(channel: string, secret: string): Promise<this> {
    await new Promise<void>((r) => this.socket.bind(0, '127.0.0.1', r));
    const options = ['channels', channel, 'messages'].map((seg) => ({ name: String(option.uriPath), value: Buffer.from(seg) }));
    options.push({ name: String(option.uriQuery), value: Buffer.from(`auth=${secret}`) }, { name: String(option.observe), value: Buffer.from(uint(0)) });
    this.socket.send(generate({ code: 'GET', confirmable: true, messageId: this.mid++, token: this.token, options }), this.port, '127.0.0.1');
    const reply = await eventually(() => {
      const p = this.received.find((x) => x.token.equals(this.token) && !x.code.startsWith('0.'));
      assert.ok(p, 'no reply yet');
      return p;
    }, 3000, 5);
    assert.equal(reply.code, '2.05');
    return this;
  }

  /** Notifications with this payload. */
  got(payload: string): ParsedPacket[] {
    return this.received.filter((p) => p.code === '2.05' && p.token.equals(this.token) && p.payload.toString() === payload);
  }

  /** The 4.03 that ended the observation, if one came. */
  forbidden(): ParsedPacket | undefined {
    return this.received.find((p) => p.code === '4.03' && p.token.equals(this.token));
  }

  close(): void {
    this.socket.close();
  }
}

interface WsClient {
  ws: WebSocket;
  messages: string[];
  closed: Promise<{ code: number; reason: string }>;
}

function wsSubscribe(base: string, channel: string, secret: string, opened: WebSocket[]): Promise<WsClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base}/ws/channels/${channel}/messages`, { headers: { authorization: `Device ${secret}` } });
    opened.push(ws);
    const messages: string[] = [];
    ws.on('message', (data: Buffer) => messages.push(data.toString()));
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, why) => r({ code, reason: why.toString() })));
    ws.once('open', () => resolve({ ws, messages, closed }));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

/** Every live session one device holds on one channel, one per protocol. */
interface Sessions {
  v4: TestClient;
  v5: TestClient;
  v5Disconnect: Promise<IDisconnectPacket>;
  v4Closed: Promise<void>;
  ws: WsClient;
  coap: CoapObserver;
}

/** MQTT 5 publish options: the payloads here are plain text. */
const text = { qos: 1, properties: { contentType: 'text/plain' } } as const;

const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms).unref())]);

/** What every cut is tried on: one or two nodes, the API called on `api`, the device's clients on `edge`. */
function cutoffSuite(nodes: () => { api: Node; edge: Node }) {
  let admin: Admin;
  let serial = 0;
  const clients: TestClient[] = [];
  const sockets: WebSocket[] = [];
  const observers: CoapObserver[] = [];

  before(async () => {
    admin = await new Admin(nodes().api).open(`cutoff-${randomBytes(4).toString('hex')}@example.com`);
  });
  after(() => {
    for (const c of clients) c.end(true);
    for (const s of sockets) s.terminate();
    for (const o of observers) o.close();
  });

  /** A device connected for publish and subscribe on two channels, and a publisher on both. */
  async function fleet() {
    const n = ++serial;
    const device = await admin.device(`d${n}`);
    const publisher = await admin.device(`p${n}`);
    const channel = await admin.channel(`c${n}`);
    const other = await admin.channel(`o${n}`);
    await admin.connect([device, publisher], [channel, other]);
    return { device, publisher, channel, other };
  }

  async function open(device: Device, channel: string): Promise<Sessions> {
    const { edge } = nodes();
    const v4 = await mqttClient(edge.mqttUrl, { protocolVersion: 4, username: device.id, password: device.secret, clientId: `v4-${randomBytes(4).toString('hex')}` }, clients);
    const v5 = await mqttClient(edge.mqttUrl, { protocolVersion: 5, username: device.id, password: device.secret, clientId: `v5-${randomBytes(4).toString('hex')}` }, clients);
    const topic = `channels/${channel}/messages`;
    await v4.subscribeAsync(topic, { qos: 1 });
    await v5.subscribeAsync(topic, { qos: 1 });
    const v5Disconnect = new Promise<IDisconnectPacket>((r) => v5.once('disconnect', (p) => r(p)));
    const v4Closed = new Promise<void>((r) => v4.once('close', () => r()));
    const ws = await wsSubscribe(edge.wsBase, channel, device.secret, sockets);
    const coap = await new CoapObserver(edge.coap.address.port).observe(channel, device.secret);
    observers.push(coap);
    return { v4, v5, v5Disconnect, v4Closed, ws, coap };
  }

  /** Publishes over HTTP on the API node, as the publisher device. */
  async function publish(publisher: Device, channel: string, body: string): Promise<void> {
    const res = await nodes().api.app.inject({ method: 'POST', url: `/channels/${channel}/messages`, payload: body, headers: { 'content-type': 'text/plain', authorization: `Device ${publisher.secret}` } });
    assert.equal(res.statusCode, 202, res.body);
  }

  /** The sessions are all delivered a message published on their channel (they work before the cut). */
  async function receiving(s: Sessions, publisher: Device, channel: string, body: string): Promise<void> {
    await publish(publisher, channel, body);
    await eventually(() => {
      assert.ok(s.v4.received.some((m) => m.payload.toString() === body), 'MQTT 3.1.1');
      assert.ok(s.v5.received.some((m) => m.payload.toString() === body), 'MQTT 5');
      assert.ok(s.ws.messages.includes(body), 'WebSocket');
      assert.equal(s.coap.got(body).length, 1, 'CoAP');
    }, 3000);
  }

  /** Every session ends within one second of the cut, each the way its protocol says, and gets nothing published after. */
  async function ended(s: Sessions, publisher: Device, channel: string, cutAt: number): Promise<void> {
    const disconnect = await within(s.v5Disconnect, 1000, 'MQTT 5 DISCONNECT');
    assert.equal(disconnect.reasonCode, 0x98, 'Administrative action');
    await within(s.v4Closed, 1000, 'MQTT 3.1.1 close');
    const closed = await within(s.ws.closed, 1000, 'WebSocket close');
    assert.equal(closed.code, 4403);
    await eventually(() => assert.ok(s.coap.forbidden(), 'CoAP 4.03'), 1000, 5);
    assert.ok(Date.now() - cutAt < 1500);
    const late = `after-${randomBytes(3).toString('hex')}`;
    await publish(publisher, channel, late);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(s.v4.received.filter((m) => m.payload.toString() === late).length, 0);
    assert.equal(s.v5.received.filter((m) => m.payload.toString() === late).length, 0);
    assert.ok(!s.ws.messages.includes(late));
    assert.equal(s.coap.got(late).length, 0, 'no CoAP notification after the 4.03');
  }

  test('disabling a device ends its MQTT 3.1.1 and 5, WebSocket and CoAP sessions within a second; it cannot connect again', async () => {
    const { device, publisher, channel } = await fleet();
    const s = await open(device, channel);
    await receiving(s, publisher, channel, 'before-disable');
    const cutAt = Date.now();
    assert.equal((await admin.call('PATCH', `/orgs/${admin.org}/devices/${device.id}`, { status: 'disabled' })).status, 200);
    await ended(s, publisher, channel, cutAt);
    assert.equal(await refusal(nodes().edge.mqttUrl, { protocolVersion: 5, username: device.id, password: device.secret }), 0x87);
  });

  test('deleting a device ends its sessions on every protocol within a second', async () => {
    const { device, publisher, channel } = await fleet();
    const s = await open(device, channel);
    await receiving(s, publisher, channel, 'before-delete');
    const cutAt = Date.now();
    assert.equal((await admin.call('DELETE', `/orgs/${admin.org}/devices/${device.id}`)).status, 204);
    await ended(s, publisher, channel, cutAt);
  });

  test('a new secret ends the sessions opened with the old one: an MQTT client with the old secret can publish no more', async () => {
    const { device, publisher, channel } = await fleet();
    const s = await open(device, channel);
    await receiving(s, publisher, channel, 'before-rotate');
    const watcher = await mqttClient(nodes().edge.mqttUrl, { protocolVersion: 5, username: publisher.id, password: publisher.secret }, clients);
    await watcher.subscribeAsync(`channels/${channel}/messages`, { qos: 1 });
    const cutAt = Date.now();
    const rotated = await admin.call('POST', `/orgs/${admin.org}/devices/${device.id}/secret`);
    assert.equal(rotated.status, 200);
    await ended(s, publisher, channel, cutAt);
    // the old session is gone, so nothing it sends is taken; the old secret is refused, the new one works
    s.v5.publish(`channels/${channel}/messages`, 'from-the-old-session', text);
    assert.equal(await refusal(nodes().edge.mqttUrl, { protocolVersion: 5, username: device.id, password: device.secret }), 0x86);
    const fresh = await mqttClient(nodes().edge.mqttUrl, { protocolVersion: 5, username: device.id, password: rotated.json().secret! }, clients);
    await fresh.publishAsync(`channels/${channel}/messages`, 'from-the-new-secret', text);
    await eventually(() => assert.ok(watcher.received.some((m) => m.payload.toString() === 'from-the-new-secret')));
    assert.ok(!watcher.received.some((m) => m.payload.toString() === 'from-the-old-session'));
  });

  test('removing a device from one channel ends its sessions there; on its other channel it keeps working', async () => {
    const { device, publisher, channel, other } = await fleet();
    const s = await open(device, channel);
    const keeps = await open(device, other);
    await receiving(s, publisher, channel, 'before-disconnect');
    const cutAt = Date.now();
    await admin.disconnect([device], [channel]);
    await ended(s, publisher, channel, cutAt);
    // the sessions on the other channel were not touched
    await receiving(keeps, publisher, other, 'other-channel-after');
    assert.ok(keeps.v5.connected && keeps.v4.connected);
    assert.equal(keeps.ws.ws.readyState, WebSocket.OPEN);
    assert.equal(keeps.coap.forbidden(), undefined);
    await keeps.v5.publishAsync(`channels/${other}/messages`, 'still-publishes', text);
  });

  test('removing only the subscribe type on a channel ends the subscribing sessions there', async () => {
    const { device, publisher, channel } = await fleet();
    const s = await open(device, channel);
    await receiving(s, publisher, channel, 'before-unsubscribe');
    const cutAt = Date.now();
    await admin.disconnect([device], [channel], ['subscribe']);
    await ended(s, publisher, channel, cutAt);
    // it may still publish there
    const again = await mqttClient(nodes().edge.mqttUrl, { protocolVersion: 5, username: device.id, password: device.secret }, clients);
    const ack = await again.publishAsync(`channels/${channel}/messages`, 'publish-still-allowed', text);
    assert.ok(ack === undefined || ((ack as { reasonCode?: number }).reasonCode ?? 0) < 0x80);
  });

  test('disabling a device ends its offline persistent MQTT session: enabled again, it finds no session and nothing queued while it was cut off', async () => {
    const { device, publisher, channel } = await fleet();
    const clientId = `persistent-${randomBytes(4).toString('hex')}`;
    const login = { protocolVersion: 5 as const, username: device.id, password: device.secret, clientId, clean: false, properties: { sessionExpiryInterval: 3600 } };
    const first = await mqttClient(nodes().edge.mqttUrl, login, clients);
    await first.subscribeAsync(`channels/${channel}/messages`, { qos: 1 });
    await new Promise<void>((r) => first.end(false, {}, () => r()));
    await admin.call('PATCH', `/orgs/${admin.org}/devices/${device.id}`, { status: 'disabled' });
    await new Promise((r) => setTimeout(r, 300)); // the re-check runs on the edge node
    await publish(publisher, channel, 'while-disabled');
    await admin.call('PATCH', `/orgs/${admin.org}/devices/${device.id}`, { status: 'enabled' });
    // the edge node hears of the enabling over the bus, a moment after the API answered
    const back = await eventually(() => mqttClient(nodes().edge.mqttUrl, login, clients), 2000);
    assert.equal((back as unknown as { connackPacket: { sessionPresent: boolean } }).connackPacket.sessionPresent, false, 'the session was ended');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(back.received.length, 0);
  });

  test('deleting an organization ends the sessions of its devices', async () => {
    const owner = await new Admin(nodes().api).open(`org-gone-${randomBytes(4).toString('hex')}@example.com`);
    const device = await owner.device('d');
    const publisher = await owner.device('p');
    const channel = await owner.channel('c');
    await owner.connect([device, publisher], [channel]);
    const s = await open(device, channel);
    await receiving(s, publisher, channel, 'before-org-delete');
    const cutAt = Date.now();
    assert.equal((await owner.call('DELETE', `/orgs/${owner.org}`)).status, 204);
    assert.equal((await within(s.v5Disconnect, 1000, 'MQTT 5 DISCONNECT')).reasonCode, 0x98);
    await within(s.v4Closed, 1000, 'MQTT 3.1.1 close');
    assert.equal((await within(s.ws.closed, 1000, 'WebSocket close')).code, 4403);
    await eventually(() => assert.ok(s.coap.forbidden(), 'CoAP 4.03'), 1000, 5);
    assert.ok(Date.now() - cutAt < 1500);
  });

  test('deleting a channel ends the sessions subscribed to it', async () => {
    const { device, publisher, channel } = await fleet();
    const s = await open(device, channel);
    await receiving(s, publisher, channel, 'before-channel-delete');
    const cutAt = Date.now();
    assert.equal((await admin.call('DELETE', `/orgs/${admin.org}/channels/${channel}`)).status, 204);
    const disconnect = await within(s.v5Disconnect, 1000, 'MQTT 5 DISCONNECT');
    assert.equal(disconnect.reasonCode, 0x98);
    await within(s.v4Closed, 1000, 'MQTT 3.1.1 close');
    assert.equal((await within(s.ws.closed, 1000, 'WebSocket close')).code, 4403);
    await eventually(() => assert.ok(s.coap.forbidden(), 'CoAP 4.03'), 1000, 5);
    assert.ok(Date.now() - cutAt < 1500);
  });
}

describe('cutting a device off, one process', () => {
  let node: Node;
  let cleanup: () => Promise<void>;
  before(async () => {
    const t = await openTestDatabase();
    cleanup = t.cleanup;
    node = await startNode(t.db, randomBytes(32), {});
  });
  after(async () => {
    await node.close();
    await cleanup();
  });
  cutoffSuite(() => ({ api: node, edge: node }));
});

const nats = await serviceAvailable('NATS', natsUrl);

describe('cutting a device off, two nodes over NATS', { skip: nats === true ? false : nats }, () => {
  let a: Node;
  let b: Node;
  let second: Database;
  let cleanup: () => Promise<void>;
  const tag = randomBytes(4).toString('hex');
  const names = { stream: `FW_TEST_${tag}`, subjectPrefix: `fwtest${tag}.msg`, controlPrefix: `fwtest${tag}.ctl` };
  before(async () => {
    const t = await openTestDatabase();
    cleanup = t.cleanup;
    second = await anotherHandle(t.db, 4);
    const key = randomBytes(32);
    a = await startNode(t.db, key, { nodeId: `a-${tag}` }, await NatsBus.connect({ url: natsUrl, ...names }));
    b = await startNode(second, key, { nodeId: `b-${tag}` }, await NatsBus.connect({ url: natsUrl, ...names }));
  });
  after(async () => {
    await b?.close();
    await a?.close();
    await second?.close();
    await cleanup?.();
    const nc = await natsConnect({ servers: natsUrl });
    await (await jetstreamManager(nc)).streams.delete(names.stream).catch(() => {});
    await nc.close();
  });
  // the API is called on one node; the device's sessions are on the other
  cutoffSuite(() => ({ api: a, edge: b }));
});
