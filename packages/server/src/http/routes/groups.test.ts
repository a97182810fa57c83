import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { startTestPlatform, type TestPlatform } from '../../../test/helpers/platform.js';
import { assertProblem } from '../../../test/helpers/problem.js';

type TestUser = Awaited<ReturnType<TestPlatform['user']>>;

/** The names of a list answer's `key` items, in the order given. */
function order(res: LightMyRequestResponse, key: 'groups' | 'devices'): string[] {
  assert.equal(res.statusCode, 200, res.body);
  return res.json()[key].map((x: { name: string }) => x.name);
}

describe('groups over HTTP', () => {
  let t: TestPlatform;
  let alice: TestUser;

  async function newOrg(): Promise<string> {
    return (await t.request('POST', '/orgs', { token: alice.token, body: { name: 'groups' } })).json().id;
  }

  async function create(org: string, body: Record<string, unknown>) {
    const res = await t.request('POST', `/orgs/${org}/groups`, { token: alice.token, body });
    assert.equal(res.statusCode, 201, res.body);
    return res.json();
  }

  async function devices(org: string, ...names: string[]): Promise<string[]> {
    const res = await t.request('POST', `/orgs/${org}/devices/bulk`, { token: alice.token, body: { devices: names.map((name) => ({ name })) } });
    assert.equal(res.statusCode, 201, res.body);
    return res.json().devices.map((d: { id: string }) => d.id);
  }

  const get = (org: string, path = '') => t.request('GET', `/orgs/${org}/groups${path}`, { token: alice.token });
  const members = (org: string, group: string, method: 'POST' | 'DELETE', ids: string[]) =>
    t.request(method, `/orgs/${org}/groups/${group}/devices`, { token: alice.token, body: { device_ids: ids } });

  before(async () => {
    t = await startTestPlatform();
    alice = await t.user('alice@example.com');
  });
  after(() => t.close());

  test('creating a group', async () => {
    const org = await newOrg();
    const res = await t.request('POST', `/orgs/${org}/groups`, { token: alice.token, body: { name: 'floor 2', description: 'everything on floor 2', tags: ['f2', 'f2'], metadata: { floor: 2 } } });
    assert.equal(res.statusCode, 201);
    const group = res.json();
    assert.equal(res.headers.location, `/orgs/${org}/groups/${group.id}`);
    assert.deepEqual([group.org_id, group.name, group.description, group.tags, group.metadata], [org, 'floor 2', 'everything on floor 2', ['f2'], { floor: 2 }]);
    const got = await t.request('GET', res.headers.location as string, { token: alice.token });
    assert.equal(got.statusCode, 200);
    assert.deepEqual(got.json(), group);

    const plain = await create(org, { name: 'plain' });
    assert.deepEqual([plain.description, plain.tags, plain.metadata], ['', [], {}]);
    for (const body of [{}, { name: '' }, { name: 'x', description: 'x'.repeat(4097) }, { name: 'x', device_ids: [] }, { name: 'x', metadata: { blob: 'x'.repeat(65 * 1024) } }]) {
      assertProblem(await t.request('POST', `/orgs/${org}/groups`, { token: alice.token, body }), 400, 'request.invalid');
    }
  });

  test('unknown, malformed and foreign group ids are not found', async () => {
    const org = await newOrg();
    const [device] = await devices(org, 'd');
    const foreign = await create(await newOrg(), { name: 'elsewhere' });
    for (const id of [randomUUID(), 'not-a-uuid', foreign.id]) {
      const path = `/orgs/${org}/groups/${id}`;
      assertProblem(await t.request('GET', path, { token: alice.token }), 404, 'group.not_found');
      assertProblem(await t.request('PATCH', path, { token: alice.token, body: { name: 'x' } }), 404, 'group.not_found');
      assertProblem(await t.request('DELETE', path, { token: alice.token }), 404, 'group.not_found');
      assertProblem(await t.request('GET', `${path}/devices`, { token: alice.token }), 404, 'group.not_found');
      assertProblem(await members(org, id, 'POST', [device!]), 404, 'group.not_found');
      assertProblem(await members(org, id, 'DELETE', [device!]), 404, 'group.not_found');
    }
  });

  test('groups are listed a page at a time, sorted and filtered', async () => {
    const org = await newOrg();
    await create(org, { name: 'bravo', tags: ['x'], metadata: { site: 'north' } });
    t.clock.advance(1000);
    await create(org, { name: 'charlie_1', metadata: { site: 'south' } });
    t.clock.advance(1000);
    await create(org, { name: 'alpha', tags: ['x'], metadata: { site: 'north' } });
    const page = await get(org, '?limit=1&offset=1');
    assert.deepEqual({ total: page.json().total, offset: page.json().offset, limit: page.json().limit }, { total: 3, offset: 1, limit: 1 });
    assert.deepEqual(order(page, 'groups'), ['charlie_1']);
    assert.deepEqual(order(await get(org, '?sort=name'), 'groups'), ['alpha', 'bravo', 'charlie_1']);
    assert.deepEqual(order(await get(org, '?sort=name&dir=desc'), 'groups'), ['charlie_1', 'bravo', 'alpha']);
    assert.deepEqual(order(await get(org, '?name=LIE'), 'groups'), ['charlie_1']);
    assert.deepEqual(order(await get(org, '?name=_'), 'groups'), ['charlie_1']);
    assert.deepEqual(order(await get(org, '?sort=name&tag=x'), 'groups'), ['alpha', 'bravo']);
    assert.deepEqual(order(await get(org, `?sort=name&metadata=${encodeURIComponent('{"site":"north"}')}`), 'groups'), ['alpha', 'bravo']);
    assertProblem(await get(org, '?metadata=north'), 400, 'request.invalid');
  });

  test('an update changes the fields given and keeps the others', async () => {
    const org = await newOrg();
    const g = await create(org, { name: 'before', description: 'kept', tags: ['t'], metadata: { a: 1 } });
    t.clock.advance(1000);
    const res = await t.request('PATCH', `/orgs/${org}/groups/${g.id}`, { token: alice.token, body: { name: 'after' } });
    assert.equal(res.statusCode, 200);
    assert.deepEqual({ ...res.json<Record<string, unknown>>(), updated_at: g.updated_at }, { ...g, name: 'after' });
    const described = (await t.request('PATCH', `/orgs/${org}/groups/${g.id}`, { token: alice.token, body: { description: '', metadata: {} } })).json();
    assert.deepEqual([described.name, described.description, described.tags, described.metadata], ['after', '', ['t'], {}]);
    assert.deepEqual((await get(org, `/${g.id}`)).json(), described);
    assertProblem(await t.request('PATCH', `/orgs/${org}/groups/${g.id}`, { token: alice.token, body: { name: '' } }), 400, 'request.invalid');
  });

  test("devices are added to a group, listed and removed", async () => {
    const org = await newOrg();
    const [d1, d2, d3] = await devices(org, 'dev-1', 'dev-2', 'dev-3');
    const g = await create(org, { name: 'g' });
    const inGroup = (q = '') => t.request('GET', `/orgs/${org}/groups/${g.id}/devices${q}`, { token: alice.token });
    assert.deepEqual((await inGroup()).json().devices, []);

    assert.equal((await members(org, g.id, 'POST', [d1!, d2!])).statusCode, 204);
    // adding again, or twice in one request, is harmless
    assert.equal((await members(org, g.id, 'POST', [d2!, d3!, d3!])).statusCode, 204);
    const all = await inGroup('?sort=name');
    assert.equal(all.json().total, 3);
    assert.deepEqual(order(all, 'devices'), ['dev-1', 'dev-2', 'dev-3']);
    assert.equal(all.json().devices[0].secret, undefined);
    const page = await inGroup('?sort=name&dir=desc&limit=2');
    assert.deepEqual({ total: page.json().total, limit: page.json().limit }, { total: 3, limit: 2 });
    assert.deepEqual(order(page, 'devices'), ['dev-3', 'dev-2']);
    assert.deepEqual(order(await inGroup('?name=2'), 'devices'), ['dev-2']);

    assert.equal((await members(org, g.id, 'DELETE', [d2!, randomUUID()])).statusCode, 204);
    assert.deepEqual(order(await inGroup('?sort=name'), 'devices'), ['dev-1', 'dev-3']);
    // a device belongs to any number of groups; deleting the device takes it out of them
    const other = await create(org, { name: 'other' });
    assert.equal((await members(org, other.id, 'POST', [d1!])).statusCode, 204);
    assert.equal((await t.request('DELETE', `/orgs/${org}/devices/${d1}`, { token: alice.token })).statusCode, 204);
    assert.deepEqual(order(await inGroup(), 'devices'), ['dev-3']);
    assert.equal((await t.request('GET', `/orgs/${org}/groups/${other.id}/devices`, { token: alice.token })).json().total, 0);
  });

  test('adding unknown devices is 404 naming them, and adds none', async () => {
    const org = await newOrg();
    const [mine] = await devices(org, 'mine');
    const [theirs] = await devices(await newOrg(), 'theirs');
    const g = await create(org, { name: 'g' });
    const unknown = randomUUID();
    const res = await members(org, g.id, 'POST', [mine!, unknown, theirs!, 'garbage']);
    assertProblem(res, 404, 'device.not_found');
    assert.deepEqual(res.json().missing_ids, [unknown, theirs, 'garbage']);
    for (const id of [unknown, theirs!, 'garbage']) assert.ok(res.json().detail.includes(id), res.json().detail);
    assert.equal((await t.request('GET', `/orgs/${org}/groups/${g.id}/devices`, { token: alice.token })).json().total, 0);

    assertProblem(await members(org, g.id, 'POST', []), 400, 'request.invalid');
    assertProblem(await members(org, g.id, 'POST', Array.from({ length: 1001 }, () => randomUUID())), 400, 'request.invalid');
  });

  test('a deleted group is gone and its devices stay', async () => {
    const org = await newOrg();
    const [d] = await devices(org, 'stays');
    const g = await create(org, { name: 'short-lived' });
    await members(org, g.id, 'POST', [d!]);
    assert.equal((await t.request('DELETE', `/orgs/${org}/groups/${g.id}`, { token: alice.token })).statusCode, 204);
    assertProblem(await get(org, `/${g.id}`), 404, 'group.not_found');
    assertProblem(await t.request('DELETE', `/orgs/${org}/groups/${g.id}`, { token: alice.token }), 404, 'group.not_found');
    assert.equal((await t.request('GET', `/orgs/${org}/devices/${d}`, { token: alice.token })).statusCode, 200);
    assert.equal((await t.request('GET', `/orgs/${org}/devices?group_id=${g.id}`, { token: alice.token })).json().total, 0);
  });
});
