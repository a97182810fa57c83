import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPlatform, type TestPlatform } from '../../../test/helpers/platform.js';
import { assertProblem } from '../../../test/helpers/problem.js';

type TestUser = Awaited<ReturnType<TestPlatform['user']>>;

describe('twins over HTTP', () => {
  let t: TestPlatform;
  let alice: TestUser;
  let org: string;

  async function device(name = 'pump'): Promise<{ id: string; secret: string }> {
    const res = await t.request('POST', `/orgs/${org}/devices`, { token: alice.token, body: { name } });
    assert.equal(res.statusCode, 201, res.body);
    return res.json();
  }
  const asUser = (method: 'GET' | 'PATCH' | 'PUT', path: string, body?: unknown, headers?: Record<string, string>) => t.request(method, `/orgs/${org}${path}`, { token: alice.token, body, ...(headers ? { headers } : {}) });
  const asDevice = (d: { id: string; secret: string }, method: 'GET' | 'PATCH', path = '', body?: unknown, headers: Record<string, string> = {}) =>
    t.request(method, `/devices/${d.id}/twin${path}`, { body, headers: { authorization: `Device ${d.secret}`, ...headers } });

  before(async () => {
    t = await startTestPlatform({ twinDeviceRate: 20 });
    alice = await t.user('alice@example.com');
    org = (await t.request('POST', '/orgs', { token: alice.token, body: { name: 'twins' } })).json().id;
  });
  after(() => t.close());

  test('every device has an empty default twin at version 0', async () => {
    const d = await device();
    const res = await asUser('GET', `/devices/${d.id}/twin`);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers.etag, '"0"');
    assert.deepEqual(res.json(), { device_id: d.id, name: 'default', version: 0, desired: {}, reported: {}, delta: {}, tags: {}, metadata: { desired: {}, reported: {}, tags: {} }, rejected: {} });
    assertProblem(await asUser('GET', `/devices/${d.id}/twins/config`), 404, 'twin.not_found');
    assertProblem(await asUser('GET', '/devices/0190f1d2-0000-7000-8000-000000000000/twin'), 404, 'device.not_found');
  });

  test('desired from the operator, reported from the device, the delta between them', async () => {
    const d = await device();
    const set = await asUser('PATCH', `/devices/${d.id}/twin`, { desired: { mode: 'eco', net: { ssid: 'plant', channel: 6 } }, tags: { site: 'berlin' } });
    assert.equal(set.statusCode, 200, set.body);
    assert.equal(set.json().version, 1);
    assert.equal(set.headers.etag, '"1"');
    assert.deepEqual(set.json().delta, { mode: 'eco', net: { ssid: 'plant', channel: 6 } });
    assert.equal(typeof set.json().metadata.desired.net.channel, 'number');

    const reported = await asDevice(d, 'PATCH', '', { reported: { mode: 'eco', net: { ssid: 'plant' }, firmware: '1.4.2' } });
    assert.equal(reported.statusCode, 200, reported.body);
    const doc = reported.json();
    assert.equal(doc.version, 2);
    assert.deepEqual(doc.delta, { net: { channel: 6 } });
    assert.equal(doc.tags, undefined, 'tags are the service side only');

    const seen = await asDevice(d, 'GET');
    assert.equal(seen.statusCode, 200);
    assert.equal(seen.json().tags, undefined);
    assert.deepEqual(seen.json().reported, { mode: 'eco', net: { ssid: 'plant' }, firmware: '1.4.2' });

    // null removes (RFC 7386)
    const removed = await asUser('PATCH', `/devices/${d.id}/twin`, { desired: { net: { channel: null } } });
    assert.deepEqual(removed.json().desired, { mode: 'eco', net: { ssid: 'plant' } });
    assert.deepEqual(removed.json().delta, {});
  });

  test('a stale version is refused, never merged', async () => {
    const d = await device();
    await asUser('PATCH', `/devices/${d.id}/twin`, { desired: { a: 1 } });
    const stale = await asUser('PATCH', `/devices/${d.id}/twin`, { desired: { a: 2 } }, { 'if-match': '"0"' });
    assertProblem(stale, 412, 'twin.version_conflict');
    assert.equal(stale.json().version, 1);
    const ok = await asUser('PATCH', `/devices/${d.id}/twin`, { desired: { a: 2 } }, { 'if-match': '"1"' });
    assert.equal(ok.statusCode, 200, ok.body);
    assertProblem(await asDevice(d, 'PATCH', '', { reported: { a: 2 }, version: 1 }), 412, 'twin.version_conflict');
    assert.equal((await asDevice(d, 'PATCH', '', { reported: { a: 2 }, version: 2 })).statusCode, 200);
    assert.deepEqual((await asUser('GET', `/devices/${d.id}/twin`)).json().desired, { a: 2 });
  });

  test('each writer may change only its own part', async () => {
    const d = await device();
    assertProblem(await asUser('PATCH', `/devices/${d.id}/twin`, { reported: { a: 1 } }), 400, 'request.invalid');
    assertProblem(await asDevice(d, 'PATCH', '', { desired: { a: 1 } }), 403, 'twin.forbidden_section');
    assertProblem(await asDevice(d, 'PATCH', '', { tags: { a: 1 } }), 400, 'request.invalid');
    const other = await device('other');
    assertProblem(await t.request('GET', `/devices/${other.id}/twin`, { headers: { authorization: `Device ${d.secret}` } }), 404, 'device.not_found');
    // a member's token reads the device's own path (tags included) but does not write there
    const byUser = await t.request('GET', `/devices/${d.id}/twin`, { token: alice.token });
    assert.equal(byUser.statusCode, 200, byUser.body);
    assert.deepEqual(byUser.json().tags, {});
    assertProblem(await t.request('PATCH', `/devices/${d.id}/twin`, { token: alice.token, body: { reported: { a: 1 } } }), 403, 'auth.forbidden');
    const outsider = await t.user(`outsider-${d.id}@example.com`);
    assertProblem(await t.request('GET', `/devices/${d.id}/twin`, { token: outsider.token }), 404, 'device.not_found');
    assertProblem(await t.request('GET', `/devices/${d.id}/twin`, { headers: { authorization: 'Device wrong' } }), 401, 'auth.invalid_credentials');
    assert.equal((await asUser('GET', `/devices/${d.id}/twin`)).json().version, 0, 'nothing was applied');
  });

  test('a device refuses a desired value it cannot apply, and clears one it is done with', async () => {
    const d = await device();
    await asUser('PATCH', `/devices/${d.id}/twin`, { desired: { mode: 'turbo', ota: { url: 'https://x/fw.bin' } } });
    const refused = await asDevice(d, 'PATCH', '', { rejected: { '/mode': 'this model has no turbo mode' } });
    assert.equal(refused.statusCode, 200, refused.body);
    assert.deepEqual(refused.json().delta, { ota: { url: 'https://x/fw.bin' } });
    assert.equal(refused.json().rejected['/mode'].reason, 'this model has no turbo mode');
    assert.equal(refused.json().rejected['/mode'].value, 'turbo');
    assertProblem(await asDevice(d, 'PATCH', '', { rejected: { '/nothing': 'x' } }), 400, 'twin.invalid_update');
    assertProblem(await asDevice(d, 'PATCH', '', { rejected: { mode: 'x' } }), 400, 'twin.invalid_update');

    const cleared = await asDevice(d, 'PATCH', '', { desired: { ota: null }, reported: { ota: { done: true } } });
    assert.deepEqual(cleared.json().desired, { mode: 'turbo' });
    assert.deepEqual(cleared.json().delta, {});

    // a new desired value there asks again
    const again = await asUser('PATCH', `/devices/${d.id}/twin`, { desired: { mode: 'eco' } });
    assert.deepEqual(again.json().delta, { mode: 'eco' });
    assert.deepEqual(again.json().rejected, {});
  });

  test('history keeps every change with who made it, paged by version', async () => {
    const d = await device();
    for (let i = 1; i <= 3; i++) await asUser('PATCH', `/devices/${d.id}/twin`, { desired: { step: i } });
    await asDevice(d, 'PATCH', '', { reported: { step: 3 } });
    const first = await asUser('GET', `/devices/${d.id}/twin/history?limit=2`);
    assert.equal(first.statusCode, 200, first.body);
    const page = first.json();
    assert.deepEqual(page.changes.map((c: { version: number }) => c.version), [1, 2]);
    assert.deepEqual(page.changes[0].actor, { kind: 'user', id: alice.id });
    assert.deepEqual(page.changes[0].patch, { desired: { step: 1 } });
    assert.equal(page.next_version, 3);
    const rest = (await asUser('GET', `/devices/${d.id}/twin/history?from_version=3`)).json();
    assert.deepEqual(rest.changes.map((c: { version: number; actor: { kind: string } }) => [c.version, c.actor.kind]), [[3, 'user'], [4, 'device']]);
    assert.equal(rest.next_version, undefined);
    // an update that changes nothing makes no version
    await asDevice(d, 'PATCH', '', { reported: { step: 3 } });
    assert.equal((await asUser('GET', `/devices/${d.id}/twin`)).json().version, 4);
  });

  test('named twins beside the default one', async () => {
    const d = await device();
    const made = await asUser('PATCH', `/devices/${d.id}/twins/firmware`, { desired: { version: '2.0.0' } });
    assert.equal(made.statusCode, 200, made.body);
    assert.equal(made.json().name, 'firmware');
    assert.equal((await asDevice(d, 'GET', '/firmware')).json().desired.version, '2.0.0');
    assert.deepEqual((await asUser('GET', `/devices/${d.id}/twin`)).json().desired, {}, 'the default twin is apart');
    const list = (await asUser('GET', `/devices/${d.id}/twins`)).json();
    assert.deepEqual(list.twins.map((x: { name: string; version: number }) => [x.name, x.version]), [['default', 0], ['firmware', 1]]);
    assertProblem(await asUser('PATCH', `/devices/${d.id}/twins/Bad.Name`, { desired: { a: 1 } }), 404, 'twin.not_found');
    assertProblem(await asUser('PATCH', `/devices/${d.id}/twins/update`, { desired: { a: 1 } }), 404, 'twin.not_found');
  });

  test('limits: size, depth and content, per organization, nothing partly applied', async () => {
    const d = await device();
    const big = { blob: 'x'.repeat(33 * 1024) };
    assertProblem(await asUser('PATCH', `/devices/${d.id}/twin`, { desired: big }), 413, 'twin.too_large');
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 10; i++) deep = { n: deep };
    assertProblem(await asUser('PATCH', `/devices/${d.id}/twin`, { desired: { ok: 1 }, tags: deep }), 400, 'twin.invalid_update');
    assertProblem(await asUser('PATCH', `/devices/${d.id}/twin`, { desired: { s: 'a\u0000b' } }), 400, 'request.invalid');
    assertProblem(await asUser('PATCH', `/devices/${d.id}/twin`, { desired: [1, 2] }), 400, 'request.invalid');
    assertProblem(await t.request('PATCH', `/orgs/${org}/devices/${d.id}/twin`, { token: alice.token, body: 'not json', headers: { 'content-type': 'application/json' } }), 400, 'request.invalid');
    assertProblem(await asUser('PATCH', `/devices/${d.id}/twin`, {}), 400, 'twin.invalid_update');
    assert.equal((await asUser('GET', `/devices/${d.id}/twin`)).json().version, 0);

    assertProblem(await asUser('PUT', '/twin-settings', { max_section_bytes: 10, max_depth: 3 }), 400, 'request.invalid');
    const set = await asUser('PUT', '/twin-settings', { max_section_bytes: 64 * 1024, max_depth: 12 });
    assert.equal(set.statusCode, 200, set.body);
    assert.deepEqual((await asUser('GET', '/twin-settings')).json(), { max_section_bytes: 65536, max_depth: 12 });
    assert.equal((await asUser('PATCH', `/devices/${d.id}/twin`, { desired: big })).statusCode, 200);
    assert.equal((await asUser('PATCH', `/devices/${d.id}/twin`, { tags: deep })).statusCode, 200);
    await asUser('PUT', '/twin-settings', { max_section_bytes: 32 * 1024, max_depth: 10 });
  });

  test('a device flooding updates is told to slow down', async () => {
    const d = await device();
    const answers: number[] = [];
    for (let i = 0; i < 25; i++) answers.push((await asDevice(d, 'PATCH', '', { reported: { n: i } })).statusCode);
    assert.deepEqual(answers.slice(0, 20), new Array(20).fill(200));
    const limited = await asDevice(d, 'PATCH', '', { reported: { n: 99 } });
    assertProblem(limited, 429, 'twin.rate_limited');
    assert.ok(Number(limited.headers['retry-after']) > 0);
    t.clock.advance(10_001);
    assert.equal((await asDevice(d, 'PATCH', '', { reported: { n: 100 } })).statusCode, 200);
  });

  test('twin changes are fleet events: updated, delta and rejected, with who made them', async () => {
    const d = await device();
    await asUser('PATCH', `/devices/${d.id}/twin`, { desired: { mode: 'turbo' } });
    await asDevice(d, 'PATCH', '', { rejected: { '/mode': 'no turbo here' }, reported: { up: true } });
    await t.platform.events.flush();
    const res = await asUser('GET', `/events?device=${d.id}&type=${encodeURIComponent('twin.*')}&order=asc&limit=10`);
    assert.equal(res.statusCode, 200, res.body);
    const seen = res.json().events.map((e: { type: string; actor: { kind: string }; data: { version: number } }) => [e.type, e.actor.kind, e.data.version]);
    assert.deepEqual(seen, [['twin.updated', 'user', 1], ['twin.delta', 'user', 1], ['twin.updated', 'device', 2], ['twin.rejected', 'device', 2]]);
    // the operator's PATCH is one twin.updated, no generic api.change beside it
    const all = await asUser('GET', `/events?device=${d.id}&limit=50`);
    assert.equal(all.json().events.filter((e: { type: string }) => e.type === 'api.change').length, 0);
  });

  test('fleet queries by twin fields', async () => {
    const q = await (async () => {
      const r = await t.request('POST', '/orgs', { token: alice.token, body: { name: 'fleet' } });
      return r.json().id as string;
    })();
    const made: { id: string; secret: string }[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await t.request('POST', `/orgs/${q}/devices`, { token: alice.token, body: { name: `d${i}` } });
      made.push(r.json());
    }
    for (const [i, d] of made.entries()) {
      await t.request('PATCH', `/orgs/${q}/devices/${d.id}/twin`, { token: alice.token, body: { desired: { mode: i % 2 ? 'eco' : 'fast' }, tags: { site: i < 3 ? 'berlin' : 'lyon' } } });
      await t.request('PATCH', `/devices/${d.id}/twin`, { headers: { authorization: `Device ${d.secret}` }, body: { reported: { mode: 'eco', firmware: { version: i < 4 ? '1.4.2' : '1.5.0' }, battery: i * 10 } } });
    }
    const query = async (...where: string[]) => {
      const res = await t.request('GET', `/orgs/${q}/twins?${where.map((w) => `where=${encodeURIComponent(w)}`).join('&')}&limit=100`, { token: alice.token });
      assert.equal(res.statusCode, 200, res.body);
      return (res.json().twins as { device_id: string }[]).map((x) => made.findIndex((d) => d.id === x.device_id)).sort();
    };
    assert.deepEqual(await query('reported.firmware.version = 1.4.2'), [0, 1, 2, 3]);
    assert.deepEqual(await query('desired.mode != reported.mode'), [0, 2, 4]);
    assert.deepEqual(await query('tags.site = lyon', 'reported.battery >= 40'), [4, 5]);
    assert.deepEqual(await query('reported.battery < 15'), [0, 1]);
    assert.deepEqual(await query('reported.gps exists'), []);
    assert.deepEqual(await query('reported.gps missing'), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(await query('reported.battery = "10"'), [], 'a string is not the number');
    assert.deepEqual(await query('reported.battery = 10'), [1]);
    const paged = (await t.request('GET', `/orgs/${q}/twins?limit=2&offset=2`, { token: alice.token })).json();
    assert.equal(paged.total, 6);
    assert.equal(paged.twins.length, 2);
    assertProblem(await t.request('GET', `/orgs/${q}/twins?where=${encodeURIComponent('reported.a ~ 1')}`, { token: alice.token }), 400, 'twin.invalid_query');
    // the other organization's twins are not found from here
    assert.equal((await t.request('GET', `/orgs/${org}/twins?where=${encodeURIComponent('reported.firmware.version = 1.5.0')}`, { token: alice.token })).json().total, 0);
  });
});
