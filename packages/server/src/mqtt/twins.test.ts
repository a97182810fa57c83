import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import type { MqttClient } from 'mqtt';
import { startTestPlatform, type TestPlatform } from '../../test/helpers/platform.js';
import { eventually } from '../../test/helpers/eventually.js';
import { mqttClient, type TestClient } from '../../test/helpers/mqtt.js';
import { createMqtt, listenMqtt, type MqttServers } from './index.js';
import { parseTwinTopic } from './twins.js';

const run = promisify(execFile);

describe('twins over MQTT', () => {
  let t: TestPlatform;
  let servers: MqttServers;
  let url: string;
  let port: number;
  let org: string;
  let token: string;
  const clients: MqttClient[] = [];

  before(async () => {
    t = await startTestPlatform({ mqttPort: 0, twinDeviceRate: 1000 });
    servers = await listenMqtt(t.platform, createMqtt(t.platform));
    port = servers.addresses.mqtt!;
    url = `mqtt://127.0.0.1:${port}`;
    token = (await t.user('twin-owner@example.com')).token;
    org = (await t.request('POST', '/orgs', { token, body: { name: 'twins-mqtt' } })).json().id;
  });
  after(async () => {
    for (const c of clients) c.end(true);
    await servers.close();
    await t.close();
  });

  const device = async (): Promise<{ id: string; secret: string }> => (await t.request('POST', `/orgs/${org}/devices`, { token, body: { name: 'd' } })).json();
  const desire = async (id: string, desired: Record<string, unknown>, name?: string) => {
    const res = await t.request('PATCH', `/orgs/${org}/devices/${id}/${name ? `twins/${name}` : 'twin'}`, { token, body: { desired } });
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };
  const as = (d: { id: string; secret: string }, protocolVersion: 4 | 5 = 5, extra: Record<string, unknown> = {}) => mqttClient(url, { protocolVersion, username: d.id, password: d.secret, ...extra }, clients);
  const on = (c: TestClient, topic: string) => c.received.filter((m) => m.topic === topic).map((m) => JSON.parse(m.payload.toString()));
  const base = (id: string, name?: string) => `devices/${id}/twin${name ? `/${name}` : ''}`;

  test('topics parse to twin, operation and reply', () => {
    assert.deepEqual(parseTwinTopic('devices/d1/twin/get'), { device: 'd1', name: 'default', operation: 'get' });
    assert.deepEqual(parseTwinTopic('devices/d1/twin/config/update/delta'), { device: 'd1', name: 'config', operation: 'update', reply: 'delta' });
    for (const bad of ['devices/d1/twin', 'devices/d1/twin/get/delta', 'devices/d1/twin/default/get', 'devices/d1/twin/a/b/get', 'devices/d1/twin/update/accepted/x']) assert.ok('error' in parseTwinTopic(bad), bad);
  });

  for (const version of [4, 5] as const) {
    test(`get and update with accepted and rejected replies (MQTT ${version === 4 ? '3.1.1' : '5'})`, async () => {
      const d = await device();
      await desire(d.id, { mode: 'eco' });
      const c = await as(d, version);
      await c.subscribeAsync(`${base(d.id)}/+/+`, { qos: 1 });
      await c.publishAsync(`${base(d.id)}/get`, JSON.stringify({ client_token: 'g1' }), { qos: 1 });
      await eventually(() => assert.equal(on(c, `${base(d.id)}/get/accepted`).length, 1));
      const doc = on(c, `${base(d.id)}/get/accepted`)[0];
      assert.equal(doc.client_token, 'g1');
      assert.deepEqual(doc.desired, { mode: 'eco' });
      assert.equal(doc.tags, undefined);

      await c.publishAsync(`${base(d.id)}/update`, JSON.stringify({ reported: { mode: 'eco', temp: 21.5 }, client_token: 'u1' }), { qos: 1 });
      // PUBACK waited for the update to be stored
      const stored = (await t.request('GET', `/orgs/${org}/devices/${d.id}/twin`, { token })).json();
      assert.equal(stored.version, 2);
      assert.deepEqual(stored.reported, { mode: 'eco', temp: 21.5 });
      await eventually(() => assert.equal(on(c, `${base(d.id)}/update/accepted`).length, 1));
      const accepted = on(c, `${base(d.id)}/update/accepted`)[0];
      assert.deepEqual({ ...accepted, timestamp: 0 }, { version: 2, state: { reported: { mode: 'eco', temp: 21.5 } }, delta: {}, timestamp: 0, client_token: 'u1' });

      // refusals: stale version, desired from a device, not JSON
      await c.publishAsync(`${base(d.id)}/update`, JSON.stringify({ reported: { temp: 1 }, version: 1, client_token: 'stale' }), { qos: 1 });
      await c.publishAsync(`${base(d.id)}/update`, JSON.stringify({ desired: { mode: 'fast' }, client_token: 'desired' }), { qos: 1 });
      await c.publishAsync(`${base(d.id)}/update`, 'not json', { qos: 1 });
      await eventually(() => assert.equal(on(c, `${base(d.id)}/update/rejected`).length, 3));
      const [stale, desired, garbage] = on(c, `${base(d.id)}/update/rejected`);
      assert.deepEqual([stale.code, stale.version, stale.client_token], ['twin.version_conflict', 2, 'stale']);
      assert.equal(desired.code, 'twin.forbidden_section');
      assert.equal(garbage.code, 'twin.invalid_update');
      assert.equal((await t.request('GET', `/orgs/${org}/devices/${d.id}/twin`, { token })).json().version, 2, 'nothing applied');
    });
  }

  test('a device reaches only its own twin topics', async () => {
    const d = await device();
    const other = await device();
    const c = await as(d);
    const granted = await c.subscribeAsync([`${base(other.id)}/update/delta`, `devices/+/twin/update/delta`, `${base(d.id)}/#`], { qos: 1 }).then(
      (g) => g.map((x) => x.qos),
      (e: { packet: { granted: number[] } }) => e.packet.granted,
    );
    assert.deepEqual(granted, [0x87, 0x87, 1]);
    const refused = await c.publishAsync(`${base(other.id)}/update`, JSON.stringify({ reported: { a: 1 } }), { qos: 1 }).then(() => 'acked', (e: { code?: number }) => e.code);
    assert.notEqual(refused, 'acked');
    assert.equal((await t.request('GET', `/orgs/${org}/devices/${other.id}/twin`, { token })).json().version, 0);
  });

  test('desired changes reach the connected device as deltas, with documents', async () => {
    const d = await device();
    const c = await as(d);
    await c.subscribeAsync([`${base(d.id)}/update/delta`, `${base(d.id)}/update/documents`], { qos: 1 });
    await desire(d.id, { fan: 3 });
    await eventually(() => assert.equal(on(c, `${base(d.id)}/update/delta`).length, 1));
    assert.deepEqual(on(c, `${base(d.id)}/update/delta`)[0].state, { fan: 3 });
    assert.equal(on(c, `${base(d.id)}/update/delta`)[0].version, 1);
    await eventually(() => assert.equal(on(c, `${base(d.id)}/update/documents`).length, 1));
    const docs = on(c, `${base(d.id)}/update/documents`)[0];
    assert.deepEqual([docs.previous.desired, docs.current.desired], [{}, { fan: 3 }]);
    // the device's own report makes a document but no delta
    await c.publishAsync(`${base(d.id)}/update`, JSON.stringify({ reported: { fan: 3 } }), { qos: 1 });
    await eventually(() => assert.equal(on(c, `${base(d.id)}/update/documents`).length, 2));
    assert.equal(on(c, `${base(d.id)}/update/delta`).length, 1);
  });

  test('a device that was away gets the delta of the five changes it missed when it comes back, newest only', async () => {
    const d = await device();
    for (let i = 1; i <= 5; i++) await desire(d.id, { [`k${i}`]: i, step: i });
    // a persistent session reconnecting, and a clean one subscribing anew: each gets the current delta unasked
    const c = await as(d, 5, { clientId: `twin-${d.id}`, clean: false, properties: { sessionExpiryInterval: 300 } });
    await c.subscribeAsync(`${base(d.id)}/update/delta`, { qos: 1 });
    await eventually(() => assert.equal(on(c, `${base(d.id)}/update/delta`).length, 1));
    const caught = on(c, `${base(d.id)}/update/delta`)[0];
    assert.equal(caught.version, 5);
    assert.deepEqual(caught.state, { k1: 1, k2: 2, k3: 3, k4: 4, k5: 5, step: 5 });
    await c.endAsync();

    await desire(d.id, { step: 6 });
    const back = await as(d, 5, { clientId: `twin-${d.id}`, clean: false, properties: { sessionExpiryInterval: 300 } });
    await eventually(() => assert.ok(on(back, `${base(d.id)}/update/delta`).some((m) => m.version === 6)));
    const versions = on(back, `${base(d.id)}/update/delta`).map((m) => m.version);
    assert.deepEqual([...versions].sort((a, b) => a - b), versions, 'never an older version after a newer one');
    assert.equal(versions.at(-1), 6);
  });

  test('a wildcard subscription catches up named twins too', async () => {
    const d = await device();
    await desire(d.id, { v: '2.0' }, 'firmware');
    await desire(d.id, { a: 1 });
    const c = await as(d, 4);
    await c.subscribeAsync(`${base(d.id)}/#`, { qos: 1 });
    await eventually(() => assert.equal(on(c, `${base(d.id, 'firmware')}/update/delta`).length + on(c, `${base(d.id)}/update/delta`).length, 2));
    assert.deepEqual(on(c, `${base(d.id, 'firmware')}/update/delta`)[0].state, { v: '2.0' });
  });

  test('a device refuses a desired value over MQTT and it leaves the delta', async () => {
    const d = await device();
    await desire(d.id, { mode: 'turbo', fan: 2 });
    const c = await as(d);
    await c.subscribeAsync(`${base(d.id)}/update/+`, { qos: 1 });
    await c.publishAsync(`${base(d.id)}/update`, JSON.stringify({ rejected: { '/mode': 'unsupported' }, reported: { fan: 2 } }), { qos: 1 });
    await eventually(() => assert.equal(on(c, `${base(d.id)}/update/accepted`).length, 1));
    assert.deepEqual(on(c, `${base(d.id)}/update/accepted`)[0].delta, {});
    const doc = (await t.request('GET', `/orgs/${org}/devices/${d.id}/twin`, { token })).json();
    assert.equal(doc.rejected['/mode'].reason, 'unsupported');
  });

  test('mosquitto clients get and update a twin', async () => {
    const d = await device();
    await desire(d.id, { led: 'on' });
    const sub = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '-u', d.id, '-P', d.secret, '-t', `${base(d.id)}/get/accepted`, '-C', '1', '-W', '10', '-q', '1']);
    let out = '';
    sub.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => sub.on('exit', resolve));
    await eventually(async () => {
      await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-u', d.id, '-P', d.secret, '-t', `${base(d.id)}/get`, '-m', '', '-q', '1']);
      assert.ok(out.length > 0);
    }, 8000);
    assert.equal(await exited, 0);
    assert.deepEqual(JSON.parse(out).desired, { led: 'on' });
    await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-u', d.id, '-P', d.secret, '-t', `${base(d.id)}/update`, '-m', '{"reported":{"led":"on"}}', '-q', '1']);
    const doc = (await t.request('GET', `/orgs/${org}/devices/${d.id}/twin`, { token })).json();
    assert.deepEqual([doc.reported, doc.delta], [{ led: 'on' }, {}]);
  });
});
