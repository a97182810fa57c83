import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPlatform, type TestPlatform } from '../../test/helpers/platform.js';
import { assertProblem } from '../../test/helpers/problem.js';

describe('names, text and paging are checked at the edge', () => {
  let t: TestPlatform;
  let token: string;
  let org: string;
  let channel: string;

  before(async () => {
    t = await startTestPlatform();
    token = (await t.user('texts@example.com')).token;
    org = (await t.request('POST', '/orgs', { token, body: { name: 'texts' } })).json().id;
    channel = (await t.request('POST', `/orgs/${org}/channels`, { token, body: { name: 'c' } })).json().id;
  });
  after(() => t.close());

  const raw = (method: 'POST' | 'PATCH', url: string, body: string | Buffer) => t.request(method, url, { token, body, headers: { 'content-type': 'application/json' } });

  test('a NUL byte in a name, a tag, metadata or a filter is 400, not 500', async () => {
    const refusals = [
      await t.request('POST', `/orgs/${org}/devices`, { token, body: { name: 'a\u0000b' } }),
      await t.request('POST', `/orgs/${org}/channels`, { token, body: { name: 'ok', tags: ['x\u0000'] } }),
      await t.request('POST', `/orgs/${org}/channels`, { token, body: { name: 'ok', metadata: { note: 'nul\u0000here' } } }),
      await t.request('POST', `/orgs/${org}/groups`, { token, body: { name: 'ok', metadata: { 'k\u0000': 1 } } }),
      await t.request('PATCH', `/orgs/${org}`, { token, body: { name: '\u0000' } }),
      await t.request('GET', `/orgs/${org}/devices?name=a%00b`, { token }),
      await t.request('GET', `/channels/${channel}/messages?name=temp%00`, { token }),
      await t.request('GET', `/orgs?name=%00`, { token }),
    ];
    for (const res of refusals) {
      assertProblem(res, 400, 'request.invalid');
      assert.match(res.json().detail, /NUL/);
    }
    assert.equal((await t.request('GET', `/orgs/${org}/devices`, { token })).json().total, 0);
    assert.equal((await t.request('GET', `/orgs/${org}/channels`, { token })).json().total, 1);
  });

  test('a name that is not UTF-8 is 400 instead of being stored with U+FFFD', async () => {
    const body = Buffer.concat([Buffer.from('{"name":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]);
    const res = await raw('POST', `/orgs/${org}/devices`, body);
    assertProblem(res, 400, 'request.invalid');
    assert.match(res.json().detail, /UTF-8/);
    assert.equal((await t.request('GET', `/orgs/${org}/devices`, { token })).json().total, 0);
    // well-formed UTF-8 is kept as sent
    const ok = await raw('POST', `/orgs/${org}/devices`, Buffer.from('{"name":"café ☕"}'));
    assert.equal(ok.statusCode, 201);
    assert.equal(ok.json().name, 'café ☕');
    await t.request('DELETE', `/orgs/${org}/devices/${ok.json().id}`, { token });
  });

  test('a query filter that does not decode to UTF-8 is 400', async () => {
    for (const q of ['%FF', '%C3', '%ED%A0%80', 'caf%E9']) {
      const res = await t.request('GET', `/orgs/${org}/devices?name=${q}`, { token });
      assertProblem(res, 400, 'request.invalid');
      assert.match(res.json().detail, /UTF-8/);
    }
    assert.equal((await t.request('GET', `/orgs/${org}/channels?name=${encodeURIComponent('é')}`, { token })).json().total, 0);
  });

  test('a lone surrogate in a name or metadata is 400', async () => {
    for (const body of ['{"name":"x\\ud800"}', '{"name":"\\udc00y"}', '{"name":"ok","metadata":{"a":"\\ud83d"}}']) {
      const res = await raw('POST', `/orgs/${org}/channels`, body);
      assertProblem(res, 400, 'request.invalid');
      assert.match(res.json().detail, /surrogate/);
    }
    // a surrogate pair is a character like any other
    const pair = await raw('POST', `/orgs/${org}/channels`, '{"name":"\\ud83d\\ude00"}');
    assert.equal(pair.statusCode, 201);
    assert.equal(pair.json().name, '😀');
    await t.request('DELETE', `/orgs/${org}/channels/${pair.json().id}`, { token });
  });

  test('metadata nested deeper than 16 levels is 400 naming the limit, even 10,000 deep', async () => {
    const nested = (levels: number) => '{"a":'.repeat(levels - 1) + '{}' + '}'.repeat(levels - 1);
    const deep = await raw('POST', `/orgs/${org}/devices`, `{"name":"deep","metadata":${nested(10_000)}}`);
    assertProblem(deep, 400, 'request.invalid');
    assert.match(deep.json().detail, /16 levels/);
    assertProblem(await raw('POST', `/orgs/${org}/channels`, `{"name":"deep","metadata":${nested(17)}}`), 400, 'request.invalid');
    assertProblem(await raw('PATCH', `/orgs/${org}/channels/${channel}`, `{"metadata":{"list":[${nested(16)}]}}`), 400, 'request.invalid');
    const sixteen = await raw('POST', `/orgs/${org}/devices`, `{"name":"deep enough","metadata":${nested(16)}}`);
    assert.equal(sixteen.statusCode, 201, sixteen.body);
    await t.request('DELETE', `/orgs/${org}/devices/${sixteen.json().id}`, { token });
  });

  test('an offset beyond 1,000,000,000 is 400 on every list route, not 500', async () => {
    for (const offset of ['1e20', '99999999999999999999', '1000000001']) {
      for (const path of [`/orgs/${org}/devices`, `/orgs/${org}/channels`, `/orgs/${org}/groups`, `/orgs/${org}/members`, '/orgs', '/users/me/tokens', `/orgs/${org}/channels/${channel}/devices`, `/channels/${channel}/messages`]) {
        const res = await t.request('GET', `${path}?offset=${offset}`, { token });
        assertProblem(res, 400, 'request.invalid');
      }
    }
    assert.equal((await t.request('GET', `/orgs/${org}/devices?offset=1000000000`, { token })).statusCode, 200);
  });
});
