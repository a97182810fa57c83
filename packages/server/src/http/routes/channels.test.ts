import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { startTestPlatform, type TestPlatform } from '../../../test/helpers/platform.js';
import { assertProblem } from '../../../test/helpers/problem.js';

type TestUser = Awaited<ReturnType<TestPlatform['user']>>;

/** The channel names of a list answer, in the order given. */
function order(res: LightMyRequestResponse): string[] {
  assert.equal(res.statusCode, 200, res.body);
  return res.json().channels.map((c: { name: string }) => c.name);
}

describe('channels over HTTP', () => {
  let t: TestPlatform;
  let alice: TestUser;

  async function newOrg(): Promise<string> {
    return (await t.request('POST', '/orgs', { token: alice.token, body: { name: 'channels' } })).json().id;
  }

  async function create(org: string, body: Record<string, unknown>) {
    const res = await t.request('POST', `/orgs/${org}/channels`, { token: alice.token, body });
    assert.equal(res.statusCode, 201, res.body);
    return res.json();
  }

  const get = (org: string, path = '') => t.request('GET', `/orgs/${org}/channels${path}`, { token: alice.token });

  before(async () => {
    t = await startTestPlatform();
    alice = await t.user('alice@example.com');
  });
  after(() => t.close());

  test('creating a channel', async () => {
    const org = await newOrg();
    const res = await t.request('POST', `/orgs/${org}/channels`, { token: alice.token, body: { name: 'telemetry', tags: ['a', 'a', 'b'], metadata: { unit: 'C' } } });
    assert.equal(res.statusCode, 201);
    const channel = res.json();
    assert.equal(res.headers.location, `/orgs/${org}/channels/${channel.id}`);
    assert.equal(channel.org_id, org);
    assert.equal(channel.name, 'telemetry');
    assert.deepEqual(channel.tags, ['a', 'b']);
    assert.deepEqual(channel.metadata, { unit: 'C' });
    const got = await t.request('GET', res.headers.location as string, { token: alice.token });
    assert.equal(got.statusCode, 200);
    assert.deepEqual(got.json(), channel);

    const plain = await create(org, { name: 'plain' });
    assert.deepEqual([plain.tags, plain.metadata], [[], {}]);
    for (const body of [{}, { name: '' }, { name: 'x', tags: [{}] }, { name: 'x', status: 'enabled' }]) {
      assertProblem(await t.request('POST', `/orgs/${org}/channels`, { token: alice.token, body }), 400, 'request.invalid');
    }
  });

  test('a channel has a content type: SenML JSON unless given on create, changed on update, one of three', async () => {
    const org = await newOrg();
    const senml = await create(org, { name: 'senml' });
    assert.equal(senml.content_type, 'application/senml+json');
    const opaque = await create(org, { name: 'opaque', content_type: 'application/octet-stream' });
    assert.equal(opaque.content_type, 'application/octet-stream');
    assert.equal((await get(org, `/${opaque.id}`)).json().content_type, 'application/octet-stream');
    const bulk = await t.request('POST', `/orgs/${org}/channels/bulk`, { token: alice.token, body: { channels: [{ name: 'j', content_type: 'application/json' }, { name: 'd' }] } });
    assert.deepEqual(bulk.json().channels.map((c: { content_type: string }) => c.content_type), ['application/json', 'application/senml+json']);

    const patched = await t.request('PATCH', `/orgs/${org}/channels/${senml.id}`, { token: alice.token, body: { content_type: 'application/json' } });
    assert.equal(patched.statusCode, 200, patched.body);
    assert.equal(patched.json().content_type, 'application/json');
    assert.equal(patched.json().name, 'senml');
    const renamed = await t.request('PATCH', `/orgs/${org}/channels/${senml.id}`, { token: alice.token, body: { name: 'renamed' } });
    assert.equal(renamed.json().content_type, 'application/json', 'a patch without it keeps it');
    assert.ok(order(await get(org)).includes('renamed'));

    for (const content_type of ['text/plain', 'application/senml+cbor', 'APPLICATION/JSON', '', 42]) {
      assertProblem(await t.request('POST', `/orgs/${org}/channels`, { token: alice.token, body: { name: 'x', content_type } }), 400, 'request.invalid');
      assertProblem(await t.request('PATCH', `/orgs/${org}/channels/${senml.id}`, { token: alice.token, body: { content_type } }), 400, 'request.invalid');
    }
    assert.equal((await get(org, `/${senml.id}`)).json().content_type, 'application/json');
  });

  test('bulk creation makes up to 1000 channels at once, all or nothing', async () => {
    const org = await newOrg();
    const channels = Array.from({ length: 1000 }, (_, i) => ({ name: `ch-${i}` }));
    const res = await t.request('POST', `/orgs/${org}/channels/bulk`, { token: alice.token, body: { channels } });
    assert.equal(res.statusCode, 201);
    assert.equal(res.json().channels.length, 1000);
    assert.equal(new Set(res.json().channels.map((c: { id: string }) => c.id)).size, 1000);
    assert.equal((await get(org, '?limit=1')).json().total, 1000);

    assertProblem(await t.request('POST', `/orgs/${org}/channels/bulk`, { token: alice.token, body: { channels: [...channels, { name: 'one more' }] } }), 400, 'request.invalid');
    assertProblem(await t.request('POST', `/orgs/${org}/channels/bulk`, { token: alice.token, body: { channels: [] } }), 400, 'request.invalid');
    const tooBig = { blob: 'x'.repeat(65 * 1024) };
    assertProblem(await t.request('POST', `/orgs/${org}/channels/bulk`, { token: alice.token, body: { channels: [{ name: 'ok' }, { name: 'huge', metadata: tooBig }] } }), 400, 'request.invalid');
    assert.equal((await get(org, '?limit=1')).json().total, 1000);
  });

  test('unknown, malformed and foreign channel ids are not found', async () => {
    const org = await newOrg();
    const foreign = await create(await newOrg(), { name: 'elsewhere' });
    for (const id of [randomUUID(), 'not-a-uuid', foreign.id]) {
      const path = `/orgs/${org}/channels/${id}`;
      assertProblem(await t.request('GET', path, { token: alice.token }), 404, 'channel.not_found');
      assertProblem(await t.request('PATCH', path, { token: alice.token, body: { name: 'x' } }), 404, 'channel.not_found');
      assertProblem(await t.request('DELETE', path, { token: alice.token }), 404, 'channel.not_found');
    }
  });

  test('channels are listed a page at a time, sorted', async () => {
    const org = await newOrg();
    for (const name of ['bravo', 'charlie', 'alpha']) {
      await create(org, { name });
      t.clock.advance(1000);
    }
    const page = await get(org, '?limit=2&offset=1');
    assert.deepEqual({ total: page.json().total, offset: page.json().offset, limit: page.json().limit }, { total: 3, offset: 1, limit: 2 });
    assert.deepEqual(order(page), ['charlie', 'alpha']);
    assert.deepEqual(order(await get(org, '?sort=name')), ['alpha', 'bravo', 'charlie']);
    assert.deepEqual(order(await get(org, '?sort=name&dir=desc')), ['charlie', 'bravo', 'alpha']);
    assert.deepEqual(order(await get(org, '?sort=created_at&dir=desc')), ['alpha', 'charlie', 'bravo']);
    assertProblem(await get(org, '?limit=1001'), 400, 'request.invalid');
  });

  test('channels are filtered by name, tag and metadata', async () => {
    const org = await newOrg();
    await create(org, { name: 'Temp_Hall', tags: ['sensor'], metadata: { floor: 1 } });
    await create(org, { name: 'tempXhall', tags: ['sensor', 'legacy'], metadata: { floor: '1' } });
    await create(org, { name: 'commands', metadata: { floor: 1, kind: 'cmd' } });
    const sorted = async (q: string) => order(await get(org, `?${q}`)).sort();
    assert.deepEqual(await sorted('name=temp'), ['Temp_Hall', 'tempXhall']);
    assert.deepEqual(await sorted(`name=${encodeURIComponent('p_h')}`), ['Temp_Hall']);
    assert.deepEqual(await sorted('tag=sensor'), ['Temp_Hall', 'tempXhall']);
    assert.deepEqual(await sorted('tag=legacy'), ['tempXhall']);
    assert.deepEqual(await sorted(`metadata=${encodeURIComponent('{"floor":1}')}`), ['Temp_Hall', 'commands']);
    assert.deepEqual(await sorted(`metadata=${encodeURIComponent('{"floor":1,"kind":"cmd"}')}`), ['commands']);
    assert.deepEqual(await sorted(`tag=sensor&metadata=${encodeURIComponent('{"floor":"1"}')}`), ['tempXhall']);
    assertProblem(await get(org, `?metadata=${encodeURIComponent('{"floor":')}`), 400, 'request.invalid');
  });

  test('an update changes the fields given and keeps the others', async () => {
    const org = await newOrg();
    const c = await create(org, { name: 'before', tags: ['t'], metadata: { unit: 'C' } });
    t.clock.advance(1000);
    const res = await t.request('PATCH', `/orgs/${org}/channels/${c.id}`, { token: alice.token, body: { name: 'after' } });
    assert.equal(res.statusCode, 200);
    assert.deepEqual({ ...res.json<Record<string, unknown>>(), updated_at: c.updated_at }, { ...c, name: 'after' });
    assert.notEqual(res.json().updated_at, c.updated_at);
    const retagged = (await t.request('PATCH', `/orgs/${org}/channels/${c.id}`, { token: alice.token, body: { tags: [], metadata: { unit: 'F' } } })).json();
    assert.deepEqual([retagged.name, retagged.tags, retagged.metadata], ['after', [], { unit: 'F' }]);
    assert.deepEqual((await get(org, `/${c.id}`)).json(), retagged);
    assertProblem(await t.request('PATCH', `/orgs/${org}/channels/${c.id}`, { token: alice.token, body: { metadata: { blob: 'x'.repeat(65 * 1024) } } }), 400, 'request.invalid');
  });

  test('a deleted channel is gone', async () => {
    const org = await newOrg();
    const c = await create(org, { name: 'short-lived' });
    assert.equal((await t.request('DELETE', `/orgs/${org}/channels/${c.id}`, { token: alice.token })).statusCode, 204);
    assertProblem(await get(org, `/${c.id}`), 404, 'channel.not_found');
    assertProblem(await t.request('DELETE', `/orgs/${org}/channels/${c.id}`, { token: alice.token }), 404, 'channel.not_found');
    assert.equal((await get(org)).json().total, 0);
  });
});
