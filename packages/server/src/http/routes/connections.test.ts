import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startTestPlatform, type TestPlatform } from '../../../test/helpers/platform.js';
import { assertProblem } from '../../../test/helpers/problem.js';

type TestUser = Awaited<ReturnType<TestPlatform['user']>>;
type Type = 'publish' | 'subscribe';

describe('connections over HTTP', () => {
  let t: TestPlatform;
  let alice: TestUser;

  /** A fresh organization with devices d1…dN and channels c1…cM, by name. */
  async function fleet(deviceCount: number, channelCount: number) {
    const org = (await t.request('POST', '/orgs', { token: alice.token, body: { name: 'fleet' } })).json().id as string;
    const d = (await t.request('POST', `/orgs/${org}/devices/bulk`, { token: alice.token, body: { devices: Array.from({ length: deviceCount }, (_, i) => ({ name: `d${i + 1}` })) } })).json().devices;
    const c = (await t.request('POST', `/orgs/${org}/channels/bulk`, { token: alice.token, body: { channels: Array.from({ length: channelCount }, (_, i) => ({ name: `c${i + 1}` })) } })).json().channels;
    return { org, devices: d as { id: string; name: string; secret: string }[], channels: c as { id: string; name: string }[] };
  }

  function connections(org: string, method: 'POST' | 'DELETE', device_ids: string[], channel_ids: string[], types: Type[]) {
    return t.request(method, `/orgs/${org}/connections`, { token: alice.token, body: { device_ids, channel_ids, types } });
  }

  async function channelDevices(org: string, channel: string, q = '') {
    const res = await t.request('GET', `/orgs/${org}/channels/${channel}/devices${q}`, { token: alice.token });
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  }

  async function deviceChannels(org: string, device: string, q = '') {
    const res = await t.request('GET', `/orgs/${org}/devices/${device}/channels${q}`, { token: alice.token });
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  }

  /** What the device authorization decision says for this device secret on this channel. */
  async function may(secret: string, channel: string, action: Type): Promise<boolean | string> {
    const d = await t.platform.authorizer.authorize({ kind: 'secret', secret }, channel, action);
    return d.allow || d.reason;
  }

  before(async () => {
    t = await startTestPlatform();
    alice = await t.user('alice@example.com');
  });
  after(() => t.close());

  test('connecting every device to every channel with every type', async () => {
    const { org, devices: [d1, d2, d3], channels: [c1, c2] } = await fleet(3, 2);
    const res = await connections(org, 'POST', [d1!.id, d2!.id], [c1!.id, c2!.id], ['publish', 'subscribe']);
    assert.equal(res.statusCode, 204);
    assert.equal(res.body, '');

    const onC1 = await channelDevices(org, c1!.id);
    assert.equal(onC1.total, 2);
    const expected = [d1!, d2!].sort((a, b) => (a.id < b.id ? -1 : 1)).map((d) => ({ device_id: d.id, name: d.name, status: 'enabled', types: ['publish', 'subscribe'] }));
    assert.deepEqual(onC1.devices, expected);

    const ofD1 = await deviceChannels(org, d1!.id);
    assert.equal(ofD1.total, 2);
    assert.deepEqual(ofD1.channels.map((c: { name: string }) => c.name).sort(), ['c1', 'c2']);
    assert.ok(ofD1.channels.every((c: { types: Type[] }) => c.types.join() === 'publish,subscribe'));
    assert.deepEqual(await deviceChannels(org, d3!.id), { total: 0, offset: 0, limit: 20, channels: [] });

    assert.equal(await may(d1!.secret, c2!.id, 'publish'), true);
    assert.equal(await may(d3!.secret, c2!.id, 'publish'), 'not_connected');
  });

  test("a channel's devices and a device's channels come a page at a time", async () => {
    const { org, devices, channels } = await fleet(5, 3);
    assert.equal((await connections(org, 'POST', devices.map((d) => d.id), channels.map((c) => c.id), ['subscribe'])).statusCode, 204);
    const ids = devices.map((d) => d.id).sort();
    const page = await channelDevices(org, channels[0]!.id, '?offset=1&limit=2');
    assert.deepEqual({ total: page.total, offset: page.offset, limit: page.limit }, { total: 5, offset: 1, limit: 2 });
    assert.deepEqual(page.devices.map((d: { device_id: string }) => d.device_id), ids.slice(1, 3));
    assert.ok(page.devices.every((d: { types: Type[] }) => d.types.join() === 'subscribe'));

    const chPage = await deviceChannels(org, devices[0]!.id, '?offset=2&limit=2');
    assert.deepEqual({ total: chPage.total, offset: chPage.offset, limit: chPage.limit }, { total: 3, offset: 2, limit: 2 });
    assert.deepEqual(chPage.channels.map((c: { channel_id: string }) => c.channel_id), [channels.map((c) => c.id).sort()[2]]);
    assertProblem(await t.request('GET', `/orgs/${org}/channels/${channels[0]!.id}/devices?limit=0`, { token: alice.token }), 400, 'request.invalid');
  });

  test('the listed device status follows the device', async () => {
    const { org, devices: [d1], channels: [c1] } = await fleet(1, 1);
    await connections(org, 'POST', [d1!.id], [c1!.id], ['publish']);
    await t.request('POST', `/orgs/${org}/devices/${d1!.id}/disable`, { token: alice.token });
    assert.equal((await channelDevices(org, c1!.id)).devices[0].status, 'disabled');
  });

  test('disconnecting one type keeps the other', async () => {
    const { org, devices: [d1, d2], channels: [c1] } = await fleet(2, 1);
    await connections(org, 'POST', [d1!.id, d2!.id], [c1!.id], ['publish', 'subscribe']);
    assert.equal(await may(d1!.secret, c1!.id, 'publish'), true);

    assert.equal((await connections(org, 'DELETE', [d1!.id], [c1!.id], ['publish'])).statusCode, 204);
    const byDevice = Object.fromEntries((await channelDevices(org, c1!.id)).devices.map((d: { device_id: string; types: Type[] }) => [d.device_id, d.types]));
    assert.deepEqual(byDevice, { [d1!.id]: ['subscribe'], [d2!.id]: ['publish', 'subscribe'] });
    assert.equal(await may(d1!.secret, c1!.id, 'publish'), 'not_connected');
    assert.equal(await may(d1!.secret, c1!.id, 'subscribe'), true);

    // without any type left the device is no longer connected
    assert.equal((await connections(org, 'DELETE', [d1!.id], [c1!.id], ['subscribe'])).statusCode, 204);
    const left = await channelDevices(org, c1!.id);
    assert.equal(left.total, 1);
    assert.deepEqual(left.devices.map((d: { device_id: string }) => d.device_id), [d2!.id]);
    assert.equal((await deviceChannels(org, d1!.id)).total, 0);
    // disconnecting what is not connected is harmless
    assert.equal((await connections(org, 'DELETE', [d1!.id], [c1!.id], ['publish', 'subscribe'])).statusCode, 204);
  });

  test('repeated ids and repeated connects are harmless', async () => {
    const { org, devices: [d1], channels: [c1] } = await fleet(1, 1);
    assert.equal((await connections(org, 'POST', [d1!.id, d1!.id], [c1!.id, c1!.id], ['publish', 'publish'])).statusCode, 204);
    assert.equal((await connections(org, 'POST', [d1!.id], [c1!.id], ['publish', 'subscribe'])).statusCode, 204);
    assert.equal((await connections(org, 'POST', [d1!.id], [c1!.id], ['publish'])).statusCode, 204);
    const onC1 = await channelDevices(org, c1!.id);
    assert.equal(onC1.total, 1);
    assert.deepEqual(onC1.devices[0].types, ['publish', 'subscribe']);
  });

  test('ids of another organization are not found, and nothing is connected', async () => {
    const mine = await fleet(1, 1);
    const theirs = await fleet(1, 1);
    const [d] = mine.devices;
    const [c] = mine.channels;
    const [td] = theirs.devices;
    const [tc] = theirs.channels;

    const foreignDevice = await connections(mine.org, 'POST', [d!.id, td!.id], [c!.id], ['publish']);
    assertProblem(foreignDevice, 404, 'device.not_found');
    assert.deepEqual(foreignDevice.json().missing_ids, [td!.id]);
    const foreignChannel = await connections(mine.org, 'POST', [d!.id], [c!.id, tc!.id], ['publish']);
    assertProblem(foreignChannel, 404, 'channel.not_found');
    assert.deepEqual(foreignChannel.json().missing_ids, [tc!.id]);
    const unknown = randomUUID();
    const missing = await connections(mine.org, 'POST', [d!.id, unknown, 'garbage'], [c!.id], ['publish']);
    assertProblem(missing, 404, 'device.not_found');
    assert.deepEqual(missing.json().missing_ids, [unknown, 'garbage']);
    assertProblem(await connections(mine.org, 'DELETE', [td!.id], [c!.id], ['publish']), 404, 'device.not_found');

    assert.equal((await deviceChannels(mine.org, d!.id)).total, 0);
    assert.equal((await deviceChannels(theirs.org, td!.id)).total, 0);
    assertProblem(await t.request('GET', `/orgs/${mine.org}/channels/${tc!.id}/devices`, { token: alice.token }), 404, 'channel.not_found');
    assertProblem(await t.request('GET', `/orgs/${mine.org}/devices/${td!.id}/channels`, { token: alice.token }), 404, 'device.not_found');
    for (const id of [randomUUID(), 'not-a-uuid']) {
      assertProblem(await t.request('GET', `/orgs/${mine.org}/channels/${id}/devices`, { token: alice.token }), 404, 'channel.not_found');
      assertProblem(await t.request('GET', `/orgs/${mine.org}/devices/${id}/channels`, { token: alice.token }), 404, 'device.not_found');
    }
  });

  test('a connection request needs devices, channels and known types', async () => {
    const { org, devices: [d1], channels: [c1] } = await fleet(1, 1);
    for (const body of [
      { device_ids: [], channel_ids: [c1!.id], types: ['publish'] },
      { device_ids: [d1!.id], channel_ids: [], types: ['publish'] },
      { device_ids: [d1!.id], channel_ids: [c1!.id], types: [] },
      { device_ids: [d1!.id], channel_ids: [c1!.id], types: ['admin'] },
      { device_ids: [d1!.id], channel_ids: [c1!.id] },
    ]) {
      assertProblem(await t.request('POST', `/orgs/${org}/connections`, { token: alice.token, body }), 400, 'request.invalid');
    }
  });

  test('deleting a channel or a device removes its connections', async () => {
    const { org, devices: [d1, d2], channels: [c1, c2] } = await fleet(2, 2);
    await connections(org, 'POST', [d1!.id, d2!.id], [c1!.id, c2!.id], ['publish']);
    assert.equal(await may(d1!.secret, c1!.id, 'publish'), true);

    assert.equal((await t.request('DELETE', `/orgs/${org}/channels/${c1!.id}`, { token: alice.token })).statusCode, 204);
    for (const d of [d1!, d2!]) {
      const left = await deviceChannels(org, d.id);
      assert.equal(left.total, 1);
      assert.deepEqual(left.channels.map((c: { channel_id: string }) => c.channel_id), [c2!.id]);
    }
    assert.equal(await may(d1!.secret, c1!.id, 'publish'), 'channel_not_found');
    // a new channel never inherits old connections
    const again = (await t.request('POST', `/orgs/${org}/channels`, { token: alice.token, body: { name: 'c1' } })).json();
    assert.equal((await channelDevices(org, again.id)).total, 0);

    assert.equal((await t.request('DELETE', `/orgs/${org}/devices/${d1!.id}`, { token: alice.token })).statusCode, 204);
    const onC2 = await channelDevices(org, c2!.id);
    assert.equal(onC2.total, 1);
    assert.deepEqual(onC2.devices.map((d: { device_id: string }) => d.device_id), [d2!.id]);
  });
});
