import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { startTestPlatform, type TestPlatform } from '../../../test/helpers/platform.js';
import { assertProblem } from '../../../test/helpers/problem.js';

type TestUser = Awaited<ReturnType<TestPlatform['user']>>;

const secretPattern = /^[A-Za-z0-9_-]{43}$/; // 32 random bytes, base64url without padding

/** The device names of a list answer, sorted (rows created in the same millisecond have no set order). */
function names(res: LightMyRequestResponse): string[] {
  assert.equal(res.statusCode, 200, res.body);
  return res.json().devices.map((d: { name: string }) => d.name).sort();
}

/** The device names of a list answer, in the order given. */
function order(res: LightMyRequestResponse): string[] {
  assert.equal(res.statusCode, 200, res.body);
  return res.json().devices.map((d: { name: string }) => d.name);
}

describe('devices over HTTP', () => {
  let t: TestPlatform;
  let alice: TestUser;

  async function newOrg(): Promise<string> {
    return (await t.request('POST', '/orgs', { token: alice.token, body: { name: 'devices' } })).json().id;
  }

  async function create(org: string, body: Record<string, unknown>) {
    const res = await t.request('POST', `/orgs/${org}/devices`, { token: alice.token, body });
    assert.equal(res.statusCode, 201, res.body);
    return res.json();
  }

  const get = (org: string, path = '') => t.request('GET', `/orgs/${org}/devices${path}`, { token: alice.token });

  before(async () => {
    t = await startTestPlatform();
    alice = await t.user('alice@example.com');
  });
  after(() => t.close());

  test('creating a device returns its secret once', async () => {
    const org = await newOrg();
    const res = await t.request('POST', `/orgs/${org}/devices`, { token: alice.token, body: { name: 'thermo-1' } });
    assert.equal(res.statusCode, 201);
    const device = res.json();
    assert.equal(res.headers.location, `/orgs/${org}/devices/${device.id}`);
    assert.match(device.secret, secretPattern);
    assert.equal(device.org_id, org);
    assert.equal(device.name, 'thermo-1');
    assert.deepEqual(device.tags, []);
    assert.deepEqual(device.metadata, {});
    assert.equal(device.status, 'enabled');

    const got = await t.request('GET', res.headers.location as string, { token: alice.token });
    assert.equal(got.statusCode, 200);
    const { secret, ...shown } = device;
    assert.deepEqual(got.json(), shown);
    assert.equal((await get(org)).json().devices[0].secret, undefined);
    assert.ok(!(await get(org)).body.includes(secret));

    const who = await t.platform.authorizer.identify({ kind: 'secret', secret });
    assert.ok(who.ok && who.device.id === device.id, 'the secret identifies the device');
  });

  test('a device is created with tags, metadata and status; a repeated tag is kept once', async () => {
    const org = await newOrg();
    const device = await create(org, { name: 'lamp', tags: ['hall', 'hall', 'light'], metadata: { floor: 2, nested: { ok: true } }, status: 'disabled' });
    assert.deepEqual(device.tags, ['hall', 'light']);
    assert.deepEqual(device.metadata, { floor: 2, nested: { ok: true } });
    assert.equal(device.status, 'disabled');
    for (const body of [{}, { name: '' }, { name: 'x'.repeat(257) }, { name: 'x', status: 'broken' }, { name: 'x', tags: [''] }, { name: 'x', metadata: [] }, { name: 'x', secret: 'mine' }]) {
      assertProblem(await t.request('POST', `/orgs/${org}/devices`, { token: alice.token, body }), 400, 'request.invalid');
    }
  });

  test('bulk creation makes up to 1000 devices at once, each with its own secret', async () => {
    const org = await newOrg();
    const devices = Array.from({ length: 1000 }, (_, i) => ({ name: `bulk-${i}` }));
    const res = await t.request('POST', `/orgs/${org}/devices/bulk`, { token: alice.token, body: { devices } });
    assert.equal(res.statusCode, 201);
    const created = res.json().devices;
    assert.equal(created.length, 1000);
    assert.ok(created.every((d: { secret: string }) => secretPattern.test(d.secret)));
    assert.equal(new Set(created.map((d: { secret: string }) => d.secret)).size, 1000);
    assert.equal((await get(org, '?limit=1')).json().total, 1000);

    const tooMany = await t.request('POST', `/orgs/${org}/devices/bulk`, { token: alice.token, body: { devices: [...devices, { name: 'one more' }] } });
    assertProblem(tooMany, 400, 'request.invalid');
    assertProblem(await t.request('POST', `/orgs/${org}/devices/bulk`, { token: alice.token, body: { devices: [] } }), 400, 'request.invalid');
    assert.equal((await get(org, '?limit=1')).json().total, 1000);
  });

  test('bulk creation is all or nothing', async () => {
    const org = await newOrg();
    const big = { blob: 'x'.repeat(65 * 1024) };
    for (const bad of [{ name: '' }, { name: 'huge', metadata: big }]) {
      const res = await t.request('POST', `/orgs/${org}/devices/bulk`, { token: alice.token, body: { devices: [{ name: 'fine' }, bad] } });
      assertProblem(res, 400, 'request.invalid');
    }
    assert.equal((await get(org)).json().total, 0);
  });

  test('unknown and malformed device ids are not found', async () => {
    const org = await newOrg();
    const other = await newOrg();
    const foreign = await create(other, { name: 'elsewhere' });
    for (const id of [randomUUID(), 'not-a-uuid', foreign.id]) {
      const path = `/orgs/${org}/devices/${id}`;
      assertProblem(await t.request('GET', path, { token: alice.token }), 404, 'device.not_found');
      assertProblem(await t.request('PATCH', path, { token: alice.token, body: { name: 'x' } }), 404, 'device.not_found');
      assertProblem(await t.request('POST', `${path}/disable`, { token: alice.token }), 404, 'device.not_found');
      assertProblem(await t.request('POST', `${path}/secret`, { token: alice.token }), 404, 'device.not_found');
      assertProblem(await t.request('DELETE', path, { token: alice.token }), 404, 'device.not_found');
    }
    assert.equal((await t.request('GET', `/orgs/${other}/devices/${foreign.id}`, { token: alice.token })).json().status, 'enabled');
  });

  test('devices are listed a page at a time with the total', async () => {
    const org = await newOrg();
    for (const name of ['d1', 'd2', 'd3', 'd4', 'd5']) {
      await create(org, { name });
      t.clock.advance(1000);
    }
    const first = await get(org, '?limit=2');
    assert.deepEqual({ total: first.json().total, offset: first.json().offset, limit: first.json().limit }, { total: 5, offset: 0, limit: 2 });
    assert.deepEqual(order(first), ['d1', 'd2']);
    assert.deepEqual(order(await get(org, '?offset=2&limit=2')), ['d3', 'd4']);
    assert.deepEqual(order(await get(org, '?offset=4&limit=2')), ['d5']);
    const past = await get(org, '?offset=10');
    assert.deepEqual({ total: past.json().total, devices: past.json().devices }, { total: 5, devices: [] });
    assert.equal((await get(org)).json().limit, 20, 'the default page size');
    for (const q of ['?limit=0', '?limit=1001', '?offset=-1', '?limit=two']) assertProblem(await get(org, q), 400, 'request.invalid');
  });

  test('devices sort by name or creation or update time, either way', async () => {
    const org = await newOrg();
    const made: Record<string, { id: string }> = {};
    for (const name of ['bravo', 'charlie', 'alpha']) {
      made[name] = await create(org, { name });
      t.clock.advance(1000);
    }
    assert.deepEqual(order(await get(org)), ['bravo', 'charlie', 'alpha'], 'creation order by default');
    assert.deepEqual(order(await get(org, '?sort=created_at&dir=desc')), ['alpha', 'charlie', 'bravo']);
    assert.deepEqual(order(await get(org, '?sort=name')), ['alpha', 'bravo', 'charlie']);
    assert.deepEqual(order(await get(org, '?sort=name&dir=desc')), ['charlie', 'bravo', 'alpha']);
    await t.request('PATCH', `/orgs/${org}/devices/${made.bravo!.id}`, { token: alice.token, body: { tags: ['touched'] } });
    assert.deepEqual(order(await get(org, '?sort=updated_at')), ['charlie', 'alpha', 'bravo']);
    assertProblem(await get(org, '?sort=secret'), 400, 'request.invalid');
    assertProblem(await get(org, '?dir=up'), 400, 'request.invalid');
  });

  test('the name filter is a case-insensitive substring with % and _ taken literally', async () => {
    const org = await newOrg();
    for (const name of ['50% off', '50 off', 'a_b', 'axb', 'AXB-2']) await create(org, { name });
    const byName = async (text: string) => names(await get(org, `?name=${encodeURIComponent(text)}`));
    assert.deepEqual(await byName('%'), ['50% off']);
    assert.deepEqual(await byName('0%'), ['50% off']);
    assert.deepEqual(await byName('_'), ['a_b']);
    assert.deepEqual(await byName('a_b'), ['a_b']);
    assert.deepEqual(await byName('ax'), ['AXB-2', 'axb']);
    assert.deepEqual(await byName('XB'), ['AXB-2', 'axb']);
    assert.deepEqual(await byName('\\'), []);
    assert.deepEqual(await byName('nothing'), []);
    assert.equal((await get(org, '?name=off')).json().total, 2);
  });

  test('tag, status and group filters', async () => {
    const org = await newOrg();
    const a = await create(org, { name: 'a', tags: ['x', 'y'] });
    await create(org, { name: 'b', tags: ['y'], status: 'disabled' });
    const c = await create(org, { name: 'c' });
    assert.deepEqual(names(await get(org, '?tag=y')), ['a', 'b']);
    assert.deepEqual(names(await get(org, '?tag=x')), ['a']);
    assert.deepEqual(names(await get(org, '?tag=X')), [], 'tags match exactly');
    assert.deepEqual(names(await get(org, '?status=disabled')), ['b']);
    assert.deepEqual(names(await get(org, '?status=enabled')), ['a', 'c']);
    assert.deepEqual(names(await get(org, '?status=enabled&tag=y')), ['a']);
    assertProblem(await get(org, '?status=broken'), 400, 'request.invalid');

    const group = (await t.request('POST', `/orgs/${org}/groups`, { token: alice.token, body: { name: 'g' } })).json();
    assert.equal((await t.request('POST', `/orgs/${org}/groups/${group.id}/devices`, { token: alice.token, body: { device_ids: [a.id, c.id] } })).statusCode, 204);
    assert.deepEqual(names(await get(org, `?group_id=${group.id}`)), ['a', 'c']);
    assert.equal((await get(org, `?group_id=${group.id}`)).json().total, 2);
    assert.deepEqual(names(await get(org, `?group_id=${randomUUID()}`)), []);
    assertProblem(await get(org, '?group_id=nope'), 400, 'request.invalid');
  });

  test('the metadata filter matches top-level JSON scalars', async () => {
    const org = await newOrg();
    await create(org, { name: 'm1', metadata: { floor: 2, wing: 'east', ok: true } });
    await create(org, { name: 'm2', metadata: { floor: '2', wing: 'west', ok: false } });
    await create(org, { name: 'm3', metadata: { floor: 3, note: null } });
    await create(org, { name: 'm4' });
    const byMetadata = async (filter: string) => names(await get(org, `?metadata=${encodeURIComponent(filter)}`));
    assert.deepEqual(await byMetadata('{"floor":2}'), ['m1']);
    assert.deepEqual(await byMetadata('{"floor":"2"}'), ['m2'], 'a string is not a number');
    assert.deepEqual(await byMetadata('{"floor":2,"wing":"east"}'), ['m1']);
    assert.deepEqual(await byMetadata('{"floor":2,"wing":"west"}'), []);
    assert.deepEqual(await byMetadata('{"ok":false}'), ['m2']);
    assert.deepEqual(await byMetadata('{"note":null}'), ['m3']);
    assert.deepEqual(await byMetadata('{"missing":1}'), []);
    assert.deepEqual(await byMetadata('{}'), ['m1', 'm2', 'm3', 'm4']);
    for (const bad of ['{floor:2}', 'not json', '[1]', '2', 'null', '{"a":{"b":1}}', '{"a":[1]}', '{"a\\"b":1}']) {
      assertProblem(await get(org, `?metadata=${encodeURIComponent(bad)}`), 400, 'request.invalid');
    }
  });

  test('an update changes the fields given and keeps the others', async () => {
    const org = await newOrg();
    const d = await create(org, { name: 'before', tags: ['t'], metadata: { floor: 1 } });
    t.clock.advance(1000);
    const renamed = await t.request('PATCH', `/orgs/${org}/devices/${d.id}`, { token: alice.token, body: { name: 'after' } });
    assert.equal(renamed.statusCode, 200);
    assert.equal(renamed.json().name, 'after');
    assert.deepEqual(renamed.json().tags, ['t']);
    assert.deepEqual(renamed.json().metadata, { floor: 1 });
    assert.equal(renamed.json().created_at, d.created_at);
    assert.notEqual(renamed.json().updated_at, d.updated_at);
    assert.equal(renamed.json().secret, undefined);

    const retagged = (await t.request('PATCH', `/orgs/${org}/devices/${d.id}`, { token: alice.token, body: { tags: ['u', 'u', 'v'], metadata: { room: 'b' } } })).json();
    assert.equal(retagged.name, 'after');
    assert.deepEqual(retagged.tags, ['u', 'v']);
    assert.deepEqual(retagged.metadata, { room: 'b' }, 'metadata is replaced, not merged');
    assert.deepEqual((await get(org, `/${d.id}`)).json(), retagged);

    assertProblem(await t.request('PATCH', `/orgs/${org}/devices/${d.id}`, { token: alice.token, body: { name: '' } }), 400, 'request.invalid');
    assertProblem(await t.request('PATCH', `/orgs/${org}/devices/${d.id}`, { token: alice.token, body: { org_id: randomUUID() } }), 400, 'request.invalid');
  });

  test('a disabled device is refused until enabled again', async () => {
    const org = await newOrg();
    const d = await create(org, { name: 'switch' });
    const disabled = await t.request('POST', `/orgs/${org}/devices/${d.id}/disable`, { token: alice.token });
    assert.equal(disabled.statusCode, 200);
    assert.equal(disabled.json().status, 'disabled');
    assert.deepEqual(await t.platform.authorizer.identify({ kind: 'secret', secret: d.secret }), { ok: false, reason: 'device_disabled' });
    assert.equal((await get(org, `/${d.id}`)).json().status, 'disabled');

    const enabled = await t.request('POST', `/orgs/${org}/devices/${d.id}/enable`, { token: alice.token });
    assert.equal(enabled.statusCode, 200);
    assert.equal(enabled.json().status, 'enabled');
    assert.equal((await t.platform.authorizer.identify({ kind: 'secret', secret: d.secret })).ok, true);
    // enabling twice is harmless
    assert.equal((await t.request('POST', `/orgs/${org}/devices/${d.id}/enable`, { token: alice.token })).json().status, 'enabled');
  });

  test('rotating the secret issues a new one and the old one stops working', async () => {
    const org = await newOrg();
    const d = await create(org, { name: 'rotor' });
    assert.equal((await t.platform.authorizer.identify({ kind: 'secret', secret: d.secret })).ok, true);
    const res = await t.request('POST', `/orgs/${org}/devices/${d.id}/secret`, { token: alice.token });
    assert.equal(res.statusCode, 200);
    const rotated = res.json();
    assert.equal(rotated.id, d.id);
    assert.match(rotated.secret, secretPattern);
    assert.notEqual(rotated.secret, d.secret);
    assert.deepEqual(await t.platform.authorizer.identify({ kind: 'secret', secret: d.secret }), { ok: false, reason: 'invalid_credentials' });
    assert.equal((await t.platform.authorizer.identify({ kind: 'secret', secret: rotated.secret })).ok, true);
    assert.equal((await get(org, `/${d.id}`)).json().secret, undefined);
  });

  test('a deleted device is gone', async () => {
    const org = await newOrg();
    const d = await create(org, { name: 'short-lived' });
    const res = await t.request('DELETE', `/orgs/${org}/devices/${d.id}`, { token: alice.token });
    assert.equal(res.statusCode, 204);
    assert.equal(res.body, '');
    assertProblem(await get(org, `/${d.id}`), 404, 'device.not_found');
    assertProblem(await t.request('DELETE', `/orgs/${org}/devices/${d.id}`, { token: alice.token }), 404, 'device.not_found');
    assert.equal((await get(org)).json().total, 0);
    assert.equal((await t.platform.authorizer.identify({ kind: 'secret', secret: d.secret })).ok, false);
  });

  test('metadata is at most 64 KiB', async () => {
    const org = await newOrg();
    const fits = { blob: 'x'.repeat(64 * 1024 - 20) };
    const tooBig = { blob: 'x'.repeat(64 * 1024) };
    const d = await create(org, { name: 'fits', metadata: fits });
    assert.equal((await get(org, `/${d.id}`)).json().metadata.blob.length, fits.blob.length);
    assertProblem(await t.request('POST', `/orgs/${org}/devices`, { token: alice.token, body: { name: 'big', metadata: tooBig } }), 400, 'request.invalid');
    assertProblem(await t.request('PATCH', `/orgs/${org}/devices/${d.id}`, { token: alice.token, body: { metadata: tooBig } }), 400, 'request.invalid');
    assert.equal((await get(org)).json().total, 1);
  });

  test('a body that is not JSON is 415, broken JSON 400', async () => {
    const org = await newOrg();
    const asText = await t.request('POST', `/orgs/${org}/devices`, { token: alice.token, body: 'name=x', headers: { 'content-type': 'text/plain' } });
    assertProblem(asText, 415, 'request.unsupported_media_type');
    const asForm = await t.request('POST', `/orgs/${org}/devices`, { token: alice.token, body: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assertProblem(asForm, 415, 'request.unsupported_media_type');
    const broken = await t.request('POST', `/orgs/${org}/devices`, { token: alice.token, body: '{"name":', headers: { 'content-type': 'application/json' } });
    assertProblem(broken, 400, 'request.invalid');
    assert.equal((await get(org)).json().total, 0);
  });
});

describe('device requests over the body limit', () => {
  let t: TestPlatform;
  before(async () => {
    t = await startTestPlatform({ httpBodyLimit: 2048 });
  });
  after(() => t.close());

  test('are refused with 413 request.too_large', async () => {
    const owner = await t.user('owner@example.com');
    const org = (await t.request('POST', '/orgs', { token: owner.token, body: { name: 'small bodies' } })).json();
    const small = await t.request('POST', `/orgs/${org.id}/devices`, { token: owner.token, body: { name: 'fits', metadata: { blob: 'x'.repeat(1500) } } });
    assert.equal(small.statusCode, 201);
    const big = await t.request('POST', `/orgs/${org.id}/devices`, { token: owner.token, body: { name: 'too big', metadata: { blob: 'x'.repeat(3000) } } });
    assertProblem(big, 413, 'request.too_large');
    const bulk = await t.request('POST', `/orgs/${org.id}/devices/bulk`, { token: owner.token, body: { devices: Array.from({ length: 200 }, (_, i) => ({ name: `d${i}` })) } });
    assertProblem(bulk, 413, 'request.too_large');
    assert.equal((await t.request('GET', `/orgs/${org.id}/devices`, { token: owner.token })).json().total, 1);
  });
});
