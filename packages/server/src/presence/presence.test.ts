import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { rmSync } from 'node:fs';
import coap from 'coap';
import WebSocket from 'ws';
import mqttPacket from 'mqtt-packet';
import type { MqttClient } from 'mqtt';
import { startTestPlatform, type TestPlatform } from '../../test/helpers/platform.js';
import { eventually } from '../../test/helpers/eventually.js';
import { mqttClient } from '../../test/helpers/mqtt.js';
import { deviceRequest } from '../../test/helpers/tls.js';
import { createMqtt, listenMqtt, type MqttServers } from '../mqtt/index.js';
import { listenCoap, type CoapListener } from '../coap/index.js';
import { createLogger } from '../core/logger.js';
import { PresenceRepository, PresenceService, type PresenceChange } from './index.js';

type Dev = { id: string; secret: string };

describe('device presence', () => {
  let t: TestPlatform;
  let mqtt: MqttServers;
  let coapServer: CoapListener;
  let url: string;
  let org: string;
  let otherOrg: string;
  let token: string;
  let channel: string;
  const clients: MqttClient[] = [];
  const changes: PresenceChange[] = [];

  before(async () => {
    t = await startTestPlatform({ mqttPort: 0, coapPort: 0, presenceFlushInterval: 20, presenceNodeTimeout: 3000 });
    mqtt = await listenMqtt(t.platform, createMqtt(t.platform));
    coapServer = await listenCoap(t.platform);
    url = `mqtt://127.0.0.1:${mqtt.addresses.mqtt}`;
    token = (await t.user('presence@example.com')).token;
    org = (await t.request('POST', '/orgs', { token, body: { name: 'presence' } })).json().id;
    otherOrg = (await t.request('POST', '/orgs', { token, body: { name: 'presence-other' } })).json().id;
    channel = (await t.request('POST', `/orgs/${org}/channels`, { token, body: { name: 'c' } })).json().id;
    t.platform.presence.onChange((c) => changes.push(c));
  });
  after(async () => {
    for (const c of clients) c.end(true);
    await coapServer.close();
    await mqtt.close();
    await t.close();
  });

  const device = async (name: string, inOrg = org): Promise<Dev> => (await t.request('POST', `/orgs/${inOrg}/devices`, { token, body: { name } })).json();
  const presenceOf = async (d: Dev, inOrg = org) => {
    await t.platform.presence.flush();
    const res = await t.request('GET', `/orgs/${inOrg}/devices/${d.id}/presence`, { token });
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };
  const history = async (d: Dev, query = '') => {
    await t.platform.presence.flush();
    const res = await t.request('GET', `/orgs/${org}/devices/${d.id}/presence/history${query}`, { token });
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };
  const as = (d: Dev, protocolVersion: 4 | 5, extra: Record<string, unknown> = {}) => mqttClient(url, { protocolVersion, username: d.id, password: d.secret, ...extra }, clients);
  const becomes = (d: Dev, state: string, reason?: string) =>
    eventually(async () => {
      const p = await presenceOf(d);
      assert.equal(p.state, state);
      if (reason !== undefined) assert.equal(p.reason, reason);
      return p;
    });
  const heartbeat = (d: Dev | { id: string }, body?: unknown, authorization?: string) =>
    t.request('POST', `/devices/${d.id}/presence`, { headers: authorization === undefined && 'secret' in d ? { authorization: `Device ${d.secret}` } : authorization ? { authorization } : {}, ...(body !== undefined ? { body } : {}) });

  for (const v of [4, 5] as const) {
    test(`MQTT ${v === 5 ? '5' : '3.1.1'}: online on connect, offline with client_disconnect after DISCONNECT`, async () => {
      const d = await device(`mqtt-${v}`);
      assert.equal((await presenceOf(d)).state, 'offline', 'never heard from');
      assert.equal((await presenceOf(d)).since, null);
      const c = await as(d, v, { clientId: `p-${v}-${d.id}` });
      const online = await becomes(d, 'online');
      assert.equal(online.protocol, 'mqtt');
      assert.equal(online.node, t.platform.presence.nodeId);
      assert.deepEqual(online.connections.map((x: { client_id: string }) => x.client_id), [`p-${v}-${d.id}`]);
      assert.ok(online.since && online.last_seen);
      await c.endAsync();
      const off = await becomes(d, 'offline', 'client_disconnect');
      assert.deepEqual(off.connections, []);
      const seen = changes.filter((x) => x.deviceId === d.id);
      assert.deepEqual(seen.map((x) => [x.previous, x.state, x.reason]), [['offline', 'online', undefined], ['online', 'offline', 'client_disconnect']], 'onChange once per change');
      assert.equal(seen[0]!.orgId, org);
      assert.equal(seen[0]!.protocol, 'mqtt');
    });
  }

  test('coming and going are fleet events: device.connected, then device.disconnected with the reason', async () => {
    const d = await device('evented');
    const c = await as(d, 5);
    await becomes(d, 'online');
    c.stream.destroy();
    await becomes(d, 'offline', 'connection_lost');
    await t.platform.events.flush();
    const res = await t.request('GET', `/orgs/${org}/events?device=${d.id}&type=${encodeURIComponent('device.*')}&order=asc`, { token });
    assert.equal(res.statusCode, 200, res.body);
    const seen = res.json().events.map((e: { type: string; data: { reason?: string; protocol?: string } }) => [e.type, e.data.reason, e.data.protocol]);
    assert.deepEqual(seen.filter((x: string[]) => x[0] !== 'device.created'), [['device.connected', undefined, 'mqtt'], ['device.disconnected', 'connection_lost', undefined]]);
  });

  test('a lost socket is connection_lost', async () => {
    const d = await device('lost');
    const c = await as(d, 5);
    await becomes(d, 'online');
    c.stream.destroy();
    await becomes(d, 'offline', 'connection_lost');
  });

  test('a silent client is offline with keepalive_timeout after 1.5 × its keep-alive', async () => {
    const d = await device('silent');
    const sock = net.connect(mqtt.addresses.mqtt!, '127.0.0.1');
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    const connack = new Promise<void>((resolve) => parser.on('packet', (p) => p.cmd === 'connack' && resolve()));
    sock.on('data', (b) => parser.parse(b));
    sock.write(mqttPacket.generate({ cmd: 'connect', clientId: `silent-${d.id}`, keepalive: 1, protocolVersion: 4, clean: true, username: d.id, password: Buffer.from(d.secret) }));
    await connack;
    await becomes(d, 'online');
    t.clock.advance(2000); // the broker keeps time by the platform's clock
    try {
      await becomes(d, 'offline', 'keepalive_timeout');
    } finally {
      sock.destroy();
    }
  });

  test('a takeover, by the same client id, shows no offline; the device stays online until its last connection ends', async () => {
    const d = await device('taken');
    const clientId = `taken-${d.id}`;
    const first = await as(d, 5, { clientId });
    await becomes(d, 'online');
    const firstClosed = new Promise<void>((r) => first.once('close', () => r()));
    const second = await as(d, 5, { clientId });
    await firstClosed;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await presenceOf(d)).state, 'online');
    // another client id of the same device: online while any is
    const third = await as(d, 4, { clientId: `other-${d.id}` });
    await second.endAsync();
    await new Promise((r) => setTimeout(r, 100));
    const p = await presenceOf(d);
    assert.equal(p.state, 'online');
    assert.deepEqual(p.connections.map((x: { client_id: string }) => x.client_id), [`other-${d.id}`]);
    await third.endAsync();
    await becomes(d, 'offline', 'client_disconnect');
    const h = await history(d);
    assert.deepEqual(h.changes.map((c: { state: string; reason: string | null }) => [c.state, c.reason]), [['online', null], ['offline', 'client_disconnect']], 'no offline in between');
  });

  test('disabling a connected device kicks it: offline with reason kicked', async () => {
    const d = await device('kicked');
    await as(d, 5);
    await becomes(d, 'online');
    assert.equal((await t.request('POST', `/orgs/${org}/devices/${d.id}/disable`, { token })).statusCode, 200);
    await becomes(d, 'offline', 'kicked');
  });

  test('an HTTP device with a heartbeat interval is idle until 1.5 × the interval passes, then offline (keepalive_timeout)', async () => {
    const d = await device('heartbeat');
    const start = t.clock.now();
    const res = await heartbeat(d, { interval: 10 });
    assert.equal(res.statusCode, 204, res.body);
    const idle = await presenceOf(d);
    assert.equal(idle.state, 'idle');
    assert.equal(idle.protocol, 'http');
    assert.equal(idle.interval, 10);
    assert.equal(Date.parse(idle.expires_at), start + 15_000);
    t.clock.advance(14_000);
    await t.platform.presence.sweep();
    assert.equal((await presenceOf(d)).state, 'idle', 'not yet');
    // a heartbeat without an interval keeps the declared one
    const bare = await heartbeat(d);
    assert.equal(bare.statusCode, 204, bare.body);
    assert.equal(Date.parse((await presenceOf(d)).expires_at), start + 14_000 + 15_000);
    t.clock.advance(15_001);
    await t.platform.presence.sweep();
    const off = await presenceOf(d);
    assert.equal(off.state, 'offline');
    assert.equal(off.reason, 'keepalive_timeout');
    // history and uptime: present from the first heartbeat to the timeout
    const h = await history(d, `?from=${(start - 10_000) / 1000}&to=${(t.clock.now() + 1) / 1000}`);
    assert.equal(h.initial, 'offline');
    assert.deepEqual(h.changes.map((c: { state: string }) => c.state), ['idle', 'offline']);
    assert.equal(h.uptime_seconds, 29, 'offline from the deadline on, not from when the sweep found it');
    assert.ok(Math.abs(h.uptime_fraction - 29 / 39.001) < 0.001, String(h.uptime_fraction));
    assert.equal(Date.parse(off.since), start + 29_000);
    // a range in the middle of the idle time: present all of it
    const mid = await history(d, `?from=${new Date(start + 1000).toISOString()}&to=${new Date(start + 5000).toISOString()}`);
    assert.equal(mid.initial, 'idle');
    assert.deepEqual(mid.changes, []);
    assert.equal(mid.uptime_seconds, 4);
    assert.equal(mid.uptime_fraction, 1);
  });

  test('an operator gives a device its interval (PUT …/presence); null goes back to the default', async () => {
    const d = await device('given-interval');
    const given = await t.request('PUT', `/orgs/${org}/devices/${d.id}/presence`, { token, body: { interval: 30 } });
    assert.equal(given.statusCode, 200, given.body);
    assert.equal(given.json().interval, 30);
    assert.equal(given.json().state, 'offline');
    assert.equal((await heartbeat(d)).statusCode, 204);
    const idle = await presenceOf(d);
    assert.equal(idle.state, 'idle');
    assert.equal(Date.parse(idle.expires_at) - Date.parse(idle.last_seen), 45_000);
    const back = (await t.request('PUT', `/orgs/${org}/devices/${d.id}/presence`, { token, body: { interval: null } })).json();
    assert.equal(back.interval, null);
    assert.equal(Date.parse(back.expires_at) - Date.parse(back.last_seen), t.platform.config.presenceDefaultInterval * 1.5);
    for (const body of [{ interval: 0 }, { interval: 7 * 86_400 + 1 }, { interval: 'soon' }, { interval: 30, other: 1 }]) assert.equal((await t.request('PUT', `/orgs/${org}/devices/${d.id}/presence`, { token, body })).statusCode, 400, JSON.stringify(body));
    const foreign = await device('given-foreign', otherOrg);
    assert.equal((await t.request('PUT', `/orgs/${org}/devices/${foreign.id}/presence`, { token, body: { interval: 30 } })).statusCode, 404);
  });

  test('a message published over HTTP counts as seen: idle with the default interval', async () => {
    const d = await device('http-publisher');
    await t.request('POST', `/orgs/${org}/connections`, { token, body: { device_ids: [d.id], channel_ids: [channel], types: ['publish'] } });
    const res = await t.request('POST', `/channels/${channel}/messages`, { headers: { authorization: `Device ${d.secret}`, 'content-type': 'application/senml+json' }, body: '[{"n":"t","v":1}]' });
    assert.equal(res.statusCode, 202, res.body);
    const p = await becomes(d, 'idle');
    assert.equal(p.protocol, 'http');
    assert.equal(Date.parse(p.expires_at) - Date.parse(p.last_seen), t.platform.config.presenceDefaultInterval * 1.5);
  });

  test('a frame published over WebSocket counts as seen too', async () => {
    const d = await device('ws-publisher');
    await t.request('POST', `/orgs/${org}/connections`, { token, body: { device_ids: [d.id], channel_ids: [channel], types: ['publish'] } });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = t.app.server.address() as net.AddressInfo;
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/channels/${channel}/messages`, { headers: { authorization: `Device ${d.secret}` } });
    try {
      await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
      ws.send('[{"n":"t","v":2}]');
      const p = await becomes(d, 'idle');
      assert.equal(p.protocol, 'ws');
    } finally {
      ws.close();
    }
  });

  test('a CoAP heartbeat (POST devices/<id>/presence) makes the device idle; bad input is 4.00, another device 4.04', async () => {
    const d = await device('coap');
    const other = await device('coap-other');
    const post = (path: string, query: string, payload?: string) =>
      new Promise<string>((resolve, reject) => {
        const req = coap.request({ hostname: '127.0.0.1', port: coapServer.address.port, method: 'POST', pathname: path, query, agent: new coap.Agent({ type: 'udp4' }) });
        req.on('response', (r: { code: string }) => resolve(r.code));
        req.on('error', reject);
        req.end(payload);
      });
    assert.equal(await post(`/devices/${d.id}/presence`, `auth=${d.secret}`, '{"interval":60}'), '2.04');
    const p = await presenceOf(d);
    assert.equal(p.state, 'idle');
    assert.equal(p.protocol, 'coap');
    assert.equal(p.interval, 60);
    assert.equal(await post(`/devices/${d.id}/presence`, `auth=${d.secret}&interval=120`), '2.04');
    assert.equal((await presenceOf(d)).interval, 120);
    assert.equal(await post(`/devices/${d.id}/presence`, `auth=${d.secret}`, '{"interval":0}'), '4.00');
    assert.equal(await post(`/devices/${d.id}/presence`, `auth=${d.secret}`, 'not json'), '4.00');
    assert.equal(await post(`/devices/${d.id}/presence`, `auth=${d.secret}&interval=soon`), '4.00');
    assert.equal(await post(`/devices/${other.id}/presence`, `auth=${d.secret}`), '4.04');
    assert.equal(await post(`/devices/${d.id}/presence`, 'auth=wrong'), '4.01');
    assert.equal((await presenceOf(other)).state, 'offline');
  });

  test('bad heartbeats: an interval out of range is 400, another device or a user token 404, no credentials 401; nothing changes', async () => {
    const d = await device('bad-heartbeats');
    const other = await device('bad-heartbeats-other');
    for (const interval of [0, 7 * 86_400 + 1, 1.5, 'soon']) {
      const res = await heartbeat(d, { interval });
      assert.equal(res.statusCode, 400, `${interval}: ${res.body}`);
      assert.match(res.headers['content-type'] as string, /problem\+json/);
    }
    assert.equal((await heartbeat(d, { interval: 60, extra: 1 })).statusCode, 400);
    assert.equal((await heartbeat({ id: other.id }, {}, `Device ${d.secret}`)).statusCode, 404);
    assert.equal((await heartbeat({ id: d.id }, {}, `Bearer ${token}`)).statusCode, 404);
    assert.equal((await heartbeat({ id: d.id }, {}, '')).statusCode, 401);
    assert.equal((await heartbeat({ id: d.id }, {}, 'Device wrong')).statusCode, 401);
    assert.equal((await presenceOf(d)).state, 'offline');
    assert.equal((await presenceOf(other)).state, 'offline');
  });

  test("another organization's device, or none: 404 on every presence route; a bad range is 400", async () => {
    const foreign = await device('foreign', otherOrg);
    for (const path of [`/orgs/${org}/devices/${foreign.id}/presence`, `/orgs/${org}/devices/${foreign.id}/presence/history`, `/orgs/${org}/devices/not-a-uuid/presence`]) {
      const res = await t.request('GET', path, { token });
      assert.equal(res.statusCode, 404, path);
      assert.equal(res.json().code, 'device.not_found');
    }
    const d = await device('range');
    for (const q of ['?from=10&to=5', '?from=yesterday', '?from=5&to=5']) {
      const res = await t.request('GET', `/orgs/${org}/devices/${d.id}/presence/history${q}`, { token });
      assert.equal(res.statusCode, 400, q);
      assert.equal(res.json().code, 'presence.invalid_range');
    }
  });

  test('the device list filters by presence and carries it; the fleet summary counts devices by presence, enrolment and group', async () => {
    const o = (await t.request('POST', '/orgs', { token, body: { name: 'fleet' } })).json().id;
    const [a, b, c] = [await device('a', o), await device('b', o), await device('c', o)];
    const group = (await t.request('POST', `/orgs/${o}/groups`, { token, body: { name: 'g' } })).json().id;
    assert.equal((await t.request('POST', `/orgs/${o}/groups/${group}/devices`, { token, body: { device_ids: [a.id, c.id] } })).statusCode < 300, true);
    await as(a, 5);
    await heartbeat(b, { interval: 60 });
    await eventually(async () => assert.equal((await presenceOf(a, o)).state, 'online'));
    const list = async (q: string) => (await t.request('GET', `/orgs/${o}/devices${q}`, { token })).json();
    assert.deepEqual((await list('?presence=online')).devices.map((x: { id: string }) => x.id), [a.id]);
    assert.deepEqual((await list('?presence=idle')).devices.map((x: { id: string }) => x.id), [b.id]);
    const offline = await list('?presence=offline');
    assert.deepEqual(offline.devices.map((x: { id: string }) => x.id), [c.id]);
    assert.equal(offline.total, 1);
    assert.deepEqual(offline.presence, { [c.id]: { state: 'offline', since: null, last_seen: null, reason: null } }, 'beside the devices');
    const all = await list('');
    assert.equal(all.presence[a.id].state, 'online');
    assert.equal(all.presence[b.id].state, 'idle');
    assert.equal((await t.request('GET', `/orgs/${o}/devices?presence=away`, { token })).statusCode, 400);
    const summary = (await t.request('GET', `/orgs/${o}/fleet/summary`, { token })).json();
    assert.deepEqual(summary, {
      total: 3,
      presence: { online: 1, idle: 1, offline: 1 },
      enrolment: { none: 3, pending: 0, enrolled: 0, suspended: 0, revoked: 0 },
      groups: [{ id: group, name: 'g', devices: 2, online: 1, idle: 0, offline: 1 }],
    });
    const others = (await t.request('GET', `/orgs/${otherOrg}/devices`, { token })).json().total;
    assert.equal((await t.request('GET', `/orgs/${otherOrg}/fleet/summary`, { token })).json().total, others, "each organization's own devices");
  });

  test('the fleet summary counts devices by the state of their registration, and registrations still waiting', async () => {
    const o = (await t.request('POST', '/orgs', { token, body: { name: 'enrolling' } })).json().id;
    await device('plain', o);
    const enrolling = deviceRequest('/serialNumber=PRESENCE-SUMMARY-1');
    const waiting = deviceRequest('/serialNumber=PRESENCE-SUMMARY-2');
    try {
      for (const [serial, d] of [['PRESENCE-SUMMARY-1', enrolling], ['PRESENCE-SUMMARY-2', waiting]] as const) {
        const res = await t.request('POST', `/orgs/${o}/registrations`, { token, body: { serial, public_key: d.publicKey } });
        assert.equal(res.statusCode, 201, res.body);
      }
      const enrolled = await t.request('POST', '/enrol', { body: { csr: enrolling.csr } });
      assert.equal(enrolled.statusCode, 201, enrolled.body);
      const summary = (await t.request('GET', `/orgs/${o}/fleet/summary`, { token })).json();
      assert.equal(summary.total, 2);
      assert.deepEqual(summary.enrolment, { none: 1, pending: 1, enrolled: 1, suspended: 0, revoked: 0 });
    } finally {
      rmSync(enrolling.dir, { recursive: true, force: true });
      rmSync(waiting.dir, { recursive: true, force: true });
    }
  });

  test('a node that stops heartbeating leaves its devices offline (connection_lost), as the others see it', async () => {
    const d = await device('on-a-dead-node');
    const log = createLogger('silent');
    const opts = { ...t.platform.presence.options, nodeId: 'node-that-dies' };
    const dying = new PresenceService(new PresenceRepository(t.platform.db), t.clock, log, opts);
    await dying.start();
    dying.connected({ deviceId: d.id, orgId: org, clientId: 'x', protocol: 'mqtt' });
    await dying.flush();
    assert.equal((await presenceOf(d)).state, 'online');
    assert.equal((await presenceOf(d)).node, 'node-that-dies');
    // it dies: its timers stop with it, nothing is closed
    (dying as unknown as { flushTimer: NodeJS.Timeout; sweepTimer: NodeJS.Timeout }).flushTimer.close();
    (dying as unknown as { sweepTimer: NodeJS.Timeout }).sweepTimer.close();
    await t.platform.presence.sweep();
    assert.equal((await presenceOf(d)).state, 'online', 'within the window');
    t.clock.advance(3001);
    await t.platform.presence.sweep();
    const off = await presenceOf(d);
    assert.equal(off.state, 'offline');
    assert.equal(off.reason, 'connection_lost');
  });

  test('a node that restarts under the same id takes what it left offline (connection_lost)', async () => {
    const d = await device('left-behind');
    const log = createLogger('silent');
    const opts = { ...t.platform.presence.options, nodeId: 'node-that-restarts' };
    const before = new PresenceService(new PresenceRepository(t.platform.db), t.clock, log, opts);
    await before.start();
    before.connected({ deviceId: d.id, orgId: org, clientId: 'y', protocol: 'mqtt' });
    await before.flush();
    (before as unknown as { flushTimer: NodeJS.Timeout }).flushTimer.close();
    (before as unknown as { sweepTimer: NodeJS.Timeout }).sweepTimer.close();
    assert.equal((await presenceOf(d)).state, 'online');
    const again = new PresenceService(new PresenceRepository(t.platform.db), t.clock, log, opts);
    await again.start();
    const off = await presenceOf(d);
    assert.equal(off.state, 'offline');
    assert.equal(off.reason, 'connection_lost');
    await again.close();
  });

  test('a connection taken over for one that never comes: offline (connection_lost) once the grace passes, from the takeover on', async () => {
    const d = await device('taken-for-nothing');
    const elsewhere = new PresenceService(new PresenceRepository(t.platform.db), t.clock, createLogger('silent'), { ...t.platform.presence.options, nodeId: 'node-of-the-old-connection' });
    const key = elsewhere.connected({ deviceId: d.id, orgId: org, clientId: 'z', protocol: 'mqtt' });
    await elsewhere.flush();
    const takenAt = t.clock.now();
    elsewhere.disconnected(key, 'taken_over');
    await elsewhere.flush();
    await t.platform.presence.sweep();
    assert.equal((await presenceOf(d)).state, 'online', 'the new connection is on its way');
    t.clock.advance(t.platform.presence.options.nodeTimeoutMs + 1);
    await t.platform.presence.sweep();
    const off = await presenceOf(d);
    assert.equal(off.state, 'offline');
    assert.equal(off.reason, 'connection_lost');
    assert.equal(Date.parse(off.since), takenAt + t.platform.presence.options.nodeTimeoutMs);
    await elsewhere.close();
  });

  test('changes older than the retention are pruned', async () => {
    const d = await device('pruned');
    const repo = new PresenceRepository(t.platform.db);
    const old = t.clock.now() - 40 * 86_400_000;
    await t.platform.db.kysely.insertInto('presence_changes').values([{ device_id: d.id, org_id: org, state: 'online', reason: null, protocol: 'mqtt', node: 'n', at: old }, { device_id: d.id, org_id: org, state: 'offline', reason: 'client_disconnect', protocol: null, node: 'n', at: t.clock.now() - 1000 }]).execute();
    assert.equal(await repo.prune(t.clock.now() - t.platform.config.presenceRetention), 1);
    const h = await history(d, `?from=${(old - 1000) / 1000}`);
    assert.deepEqual(h.changes.map((c: { state: string }) => c.state), ['offline']);
  });

  test('MQTT publishes refresh last_seen of a connected device', async () => {
    const d = await device('mqtt-publisher');
    await t.request('POST', `/orgs/${org}/connections`, { token, body: { device_ids: [d.id], channel_ids: [channel], types: ['publish'] } });
    const c = await as(d, 5);
    const first = await becomes(d, 'online');
    t.clock.advance(5000);
    await c.publishAsync(`channels/${channel}/messages`, '[{"n":"x","v":1}]', { qos: 1 });
    await eventually(async () => assert.ok(Date.parse((await presenceOf(d)).last_seen) > Date.parse(first.last_seen)));
    assert.equal((await presenceOf(d)).state, 'online');
  });
});

describe('device presence at shutdown', () => {
  test('a graceful stop takes the devices connected here offline with server_shutdown', async () => {
    const t = await startTestPlatform({ mqttPort: 0, presenceFlushInterval: 20 });
    const mqtt = await listenMqtt(t.platform, createMqtt(t.platform));
    const clients: MqttClient[] = [];
    try {
      const token = (await t.user('shutdown@example.com')).token;
      const org = (await t.request('POST', '/orgs', { token, body: { name: 'shutdown' } })).json().id;
      const d: Dev = (await t.request('POST', `/orgs/${org}/devices`, { token, body: { name: 'd' } })).json();
      await mqttClient(`mqtt://127.0.0.1:${mqtt.addresses.mqtt}`, { protocolVersion: 5, username: d.id, password: d.secret }, clients);
      await eventually(async () => {
        await t.platform.presence.flush();
        assert.equal((await t.platform.presence.get(org, d.id)).state, 'online');
      });
      await mqtt.close();
      await t.platform.presence.close();
      const p = await t.platform.presence.get(org, d.id);
      assert.equal(p.state, 'offline');
      assert.equal(p.reason, 'server_shutdown');
    } finally {
      for (const c of clients) c.end(true);
      await mqtt.close();
      await t.close();
    }
  });
});
