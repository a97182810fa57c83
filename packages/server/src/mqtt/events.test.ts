// Fleet events over MQTT (mqtt/events.ts): a user token as the password of the user name `token`,
// subscribe only, `events:read` in the organization; each event on
// orgs/<org>/events/<kind>/<verb>/<subject id>.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { startTestPlatform, type TestPlatform } from '../../test/helpers/platform.js';
import { eventually } from '../../test/helpers/eventually.js';
import { addMember } from '../../test/helpers/members.js';
import { mqttClient, refusal } from '../../test/helpers/mqtt.js';
import { createMqtt, listenMqtt, type MqttServers } from './index.js';
import type { FleetEvent } from '../events/index.js';

describe('fleet events over MQTT', () => {
  let t: TestPlatform;
  let servers: MqttServers;
  let url: string;
  let org: string;
  let owner: Awaited<ReturnType<TestPlatform['user']>>;
  let viewer: Awaited<ReturnType<TestPlatform['user']>>;
  let outsider: Awaited<ReturnType<TestPlatform['user']>>;
  const clients: MqttClient[] = [];

  const post = async (path: string, body: unknown = {}) => {
    const res = await t.request('POST', path, { token: owner.token, body });
    assert.ok(res.statusCode < 300, res.body);
    return res.json();
  };
  /** The SUBACK reason code of one subscription. */
  const subscribe = async (c: MqttClient, filter: string): Promise<number> => {
    try {
      const granted = await c.subscribeAsync(filter, { qos: 1 });
      return granted[0]!.qos;
    } catch (e) {
      // MQTT.js rejects an MQTT 5 SUBACK that refuses: the code is in the packet
      const granted = (e as { packet?: { granted?: number[] } }).packet?.granted;
      if (!granted) throw e;
      return granted[0]!;
    }
  };

  before(async () => {
    t = await startTestPlatform({ mqttPort: 0 });
    servers = await listenMqtt(t.platform, createMqtt(t.platform));
    url = `mqtt://127.0.0.1:${servers.addresses.mqtt}`;
    owner = await t.user('mqtt-events-owner@example.com');
    viewer = await t.user('mqtt-events-viewer@example.com');
    outsider = await t.user('mqtt-events-outsider@example.com');
    org = (await t.request('POST', '/orgs', { token: owner.token, body: { name: 'mqtt events' } })).json().id;
    await addMember(t, org, owner.token, viewer, 'viewer');
  });
  after(async () => {
    for (const c of clients) c.end(true);
    await servers.close();
    await t.close();
  });

  test('a viewer with a token follows the organization\'s events, filtered by topic', async () => {
    const all = await mqttClient(url, { protocolVersion: 5, username: 'token', password: viewer.token }, clients);
    assert.equal(await subscribe(all, `orgs/${org}/events/#`), 1);
    const devicesOnly = await mqttClient(url, { protocolVersion: 4, username: 'token', password: viewer.token }, clients);
    assert.equal(await subscribe(devicesOnly, `orgs/${org}/events/device/#`), 1);
    const device = await post(`/orgs/${org}/devices`, { name: 'followed' });
    const oneDevice = await mqttClient(url, { protocolVersion: 5, username: 'token', password: viewer.token }, clients);
    assert.equal(await subscribe(oneDevice, `orgs/${org}/events/+/+/${device.id}`), 1);

    await post(`/orgs/${org}/channels`, { name: 'c' });
    await post(`/orgs/${org}/devices/${device.id}/disable`);
    await eventually(() => assert.equal(all.received.length, 3));
    const events = all.received.map((m) => JSON.parse(m.payload.toString()) as FleetEvent);
    assert.deepEqual(events.map((e) => e.type), ['device.created', 'channel.created', 'device.disabled']);
    assert.equal(all.received[2]!.topic, `orgs/${org}/events/device/disabled/${device.id}`);
    assert.equal(all.received[2]!.packet.properties?.contentType, 'application/json');
    assert.deepEqual(events[2]!.actor, { kind: 'user', id: owner.id });
    await eventually(() => assert.deepEqual(devicesOnly.received.map((m) => JSON.parse(m.payload.toString()).type), ['device.created', 'device.disabled']));
    await eventually(() => assert.deepEqual(oneDevice.received.map((m) => JSON.parse(m.payload.toString()).type), ['device.disabled']));
  });

  test('a personal access token with events:read works as the password too', async () => {
    const pat = (await t.request('POST', '/users/me/tokens', { token: owner.token, body: { name: 'events', org_id: org, actions: ['events:read'], expires_in: 3600 } })).json().token as string;
    const c = await mqttClient(url, { protocolVersion: 5, username: 'token', password: pat }, clients);
    assert.equal(await subscribe(c, `orgs/${org}/events/#`), 1);
    await post(`/orgs/${org}/groups`, { name: 'g' });
    await eventually(() => assert.equal(c.received.length, 1));
    assert.match(c.received[0]!.topic, new RegExp(`^orgs/${org}/events/group/created/`));
  });

  test('refusals: bad tokens, other organizations, tokens without events:read, publishing, other topics, devices', async () => {
    assert.equal(await refusal(url, { protocolVersion: 5, username: 'token', password: 'not-a-token' }), 0x86);
    assert.equal(await refusal(url, { protocolVersion: 5, username: 'token' }), 0x86);
    assert.equal(await refusal(url, { protocolVersion: 5, username: 'token', password: owner.token, clientId: 'kept-session', clean: false, properties: { sessionExpiryInterval: 60 } }), 0x87);

    const out = await mqttClient(url, { protocolVersion: 5, username: 'token', password: outsider.token }, clients);
    assert.equal(await subscribe(out, `orgs/${org}/events/#`), 0x87);
    const pat = (await t.request('POST', '/users/me/tokens', { token: owner.token, body: { name: 'devices', org_id: org, actions: ['devices:read'], expires_in: 3600 } })).json().token as string;
    const scoped = await mqttClient(url, { protocolVersion: 5, username: 'token', password: pat }, clients);
    assert.equal(await subscribe(scoped, `orgs/${org}/events/#`), 0x87);

    const c = await mqttClient(url, { protocolVersion: 5, username: 'token', password: owner.token }, clients);
    assert.equal(await subscribe(c, `orgs/${org}/events`), 0x8f);
    assert.equal(await subscribe(c, `orgs/${org}/events/a/b/c/d`), 0x8f);
    assert.equal(await subscribe(c, 'orgs/+/events/#'), 0x87);
    assert.equal(await subscribe(c, 'channels/x/messages'), 0x87);
    await assert.rejects(c.publishAsync(`orgs/${org}/events/device/created/x`, '{}', { qos: 1 }));

    // a device may not follow events (no device has an organization role)
    const device = await post(`/orgs/${org}/devices`, { name: 'curious' });
    const d = await mqttClient(url, { protocolVersion: 5, username: device.id, password: device.secret }, clients);
    assert.equal(await subscribe(d, `orgs/${org}/events/#`), 0x87);
  });

  test('a token connection is cut off when its user is removed from the organization', async () => {
    const user = await t.user('mqtt-events-removed@example.com');
    await addMember(t, org, owner.token, user, 'viewer');
    const c = await mqttClient(url, { protocolVersion: 5, username: 'token', password: user.token }, clients);
    assert.equal(await subscribe(c, `orgs/${org}/events/#`), 1);
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    assert.equal((await t.request('DELETE', `/orgs/${org}/members/${user.id}`, { token: owner.token })).statusCode, 204);
    await closed;
  });

  test("a token connection is cut off when its access token's session ends", async () => {
    const user = await t.user('mqtt-events-leaving@example.com');
    await addMember(t, org, owner.token, user, 'viewer');
    const c = await mqttClient(url, { protocolVersion: 5, username: 'token', password: user.token }, clients);
    assert.equal(await subscribe(c, `orgs/${org}/events/#`), 1);
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    assert.equal((await t.request('DELETE', '/users/me/sessions', { token: user.token })).statusCode, 204);
    await closed;
  });
});
