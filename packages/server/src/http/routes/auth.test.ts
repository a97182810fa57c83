import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPlatform, testPassword, type TestPlatform } from '../../../test/helpers/platform.js';
import { addMember } from '../../../test/helpers/members.js';
import { assertProblem } from '../../../test/helpers/problem.js';

describe('auth over HTTP', () => {
  let t: TestPlatform;
  let admin: Awaited<ReturnType<TestPlatform['user']>>;

  before(async () => {
    t = await startTestPlatform({ loginMaxPerAccount: 3, loginMaxPerAddress: 1000 });
    admin = await t.user('admin@example.com', 'admin');
  });
  after(() => t.close());

  test('login returns an access token that identifies the user', async () => {
    const res = await t.request('POST', '/auth/token', { body: { email: 'ADMIN@example.com', password: testPassword } });
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.expires_in, 15 * 60);
    assert.match(body.refresh_token, /^fwr_/);
    const me = await t.request('GET', '/users/me', { token: body.access_token });
    assert.equal(me.statusCode, 200);
    assert.equal(me.json().email, 'admin@example.com');
    assert.equal(me.json().role, 'admin');
    assert.equal(me.json().password_hash, undefined);
  });

  test('wrong password and unknown email get the same 401 problem', async () => {
    await t.platform.users.create({ email: 'wrongpw@example.com', password: testPassword });
    const a = await t.request('POST', '/auth/token', { body: { email: 'wrongpw@example.com', password: 'nope-nope-nope' } });
    const b = await t.request('POST', '/auth/token', { body: { email: 'nobody@example.com', password: 'nope-nope-nope' } });
    for (const r of [a, b]) {
      assert.equal(r.statusCode, 401);
      assert.equal(r.headers['content-type'], 'application/problem+json; charset=utf-8');
      assert.equal(r.json().code, 'auth.invalid_credentials');
      assert.equal(r.json().detail, 'Wrong email or password');
    }
  });

  test('routes without a token get 401 auth.required', async () => {
    const res = await t.request('GET', '/users/me');
    assert.equal(res.statusCode, 401);
    assert.equal(res.json().code, 'auth.required');
    assert.match(String(res.headers['www-authenticate']), /Bearer/);
  });

  test('a garbage or tampered token is rejected', async () => {
    for (const token of ['garbage', admin.token.slice(0, -2) + 'xx']) {
      const res = await t.request('GET', '/users/me', { token });
      assert.equal(res.statusCode, 401);
      assert.equal(res.json().code, 'auth.token_invalid');
    }
  });

  test('access tokens expire', async () => {
    const u = await t.user('expiring@example.com');
    assert.equal((await t.request('GET', '/users/me', { token: u.token })).statusCode, 200);
    t.clock.advance(15 * 60_000 + 1000);
    const res = await t.request('GET', '/users/me', { token: u.token });
    assert.equal(res.statusCode, 401);
    assert.equal(res.json().detail, 'The access token has expired');
  });

  test('refresh rotates the refresh token; reusing the old one revokes the session', async () => {
    await t.platform.users.create({ email: 'refresher@example.com', password: testPassword });
    const login = (await t.request('POST', '/auth/token', { body: { email: 'refresher@example.com', password: testPassword } })).json();
    const r1 = await t.request('POST', '/auth/refresh', { body: { refresh_token: login.refresh_token } });
    assert.equal(r1.statusCode, 200);
    const pair1 = r1.json();
    assert.notEqual(pair1.refresh_token, login.refresh_token);
    assert.equal((await t.request('GET', '/users/me', { token: pair1.access_token })).statusCode, 200);
    // the replaced token is refused, and its reuse kills the newer one too
    const reuse = await t.request('POST', '/auth/refresh', { body: { refresh_token: login.refresh_token } });
    assert.equal(reuse.statusCode, 401);
    assert.equal(reuse.json().code, 'auth.refresh_token_invalid');
    const r2 = await t.request('POST', '/auth/refresh', { body: { refresh_token: pair1.refresh_token } });
    assert.equal(r2.statusCode, 401);
  });

  test('refresh tokens expire', async () => {
    await t.platform.users.create({ email: 'old@example.com', password: testPassword });
    const login = (await t.request('POST', '/auth/token', { body: { email: 'old@example.com', password: testPassword } })).json();
    t.clock.advance(31 * 86_400_000);
    const res = await t.request('POST', '/auth/refresh', { body: { refresh_token: login.refresh_token } });
    assert.equal(res.statusCode, 401);
  });

  test('logout revokes the refresh token', async () => {
    await t.platform.users.create({ email: 'leaver@example.com', password: testPassword });
    const login = (await t.request('POST', '/auth/token', { body: { email: 'leaver@example.com', password: testPassword } })).json();
    assert.equal((await t.request('POST', '/auth/logout', { body: { refresh_token: login.refresh_token } })).statusCode, 204);
    assert.equal((await t.request('POST', '/auth/refresh', { body: { refresh_token: login.refresh_token } })).statusCode, 401);
    // logging out twice is harmless
    assert.equal((await t.request('POST', '/auth/logout', { body: { refresh_token: login.refresh_token } })).statusCode, 204);
  });

  test('failed logins are rate limited per account with Retry-After', async () => {
    await t.platform.users.create({ email: 'target@example.com', password: testPassword });
    for (let i = 0; i < 3; i++) {
      const r = await t.request('POST', '/auth/token', { body: { email: 'target@example.com', password: 'wrong-password' } });
      assert.equal(r.statusCode, 401);
    }
    const blocked = await t.request('POST', '/auth/token', { body: { email: 'target@example.com', password: testPassword } });
    assert.equal(blocked.statusCode, 429);
    assert.equal(blocked.json().code, 'auth.rate_limited');
    assert.ok(Number(blocked.headers['retry-after']) > 0);
    // other accounts are unaffected
    assert.equal((await t.request('POST', '/auth/token', { body: { email: 'admin@example.com', password: testPassword } })).statusCode, 200);
    t.clock.advance(15 * 60_000);
    assert.equal((await t.request('POST', '/auth/token', { body: { email: 'target@example.com', password: testPassword } })).statusCode, 200);
  });

  test('login attempts are rate limited per source address', async () => {
    const strict = await startTestPlatform({ loginMaxPerAddress: 2 });
    try {
      const codes = [];
      for (let i = 0; i < 3; i++) codes.push((await strict.request('POST', '/auth/token', { body: { email: `u${i}@example.com`, password: 'whatever-it-is' } })).statusCode);
      assert.deepEqual(codes, [401, 401, 429]);
    } finally {
      await strict.close();
    }
  });

  test('login limits hold across platforms that share the database: failures on either count for both', async () => {
    const a = await startTestPlatform({ loginMaxPerAccount: 3, loginMaxPerAddress: 1000 });
    const b = await startTestPlatform({ loginMaxPerAccount: 3, loginMaxPerAddress: 1000 }, {}, { sharing: a });
    try {
      await a.platform.users.create({ email: 'shared@example.com', password: testPassword });
      const attempt = (p: TestPlatform, password: string) => p.request('POST', '/auth/token', { body: { email: 'shared@example.com', password } });
      const codes = [];
      for (const p of [a, b, a]) codes.push((await attempt(p, 'wrong-password')).statusCode);
      assert.deepEqual(codes, [401, 401, 401]);
      const blocked = await attempt(b, testPassword);
      assert.equal(blocked.statusCode, 429, 'the failures made on the other platform count');
      assert.ok(Number(blocked.headers['retry-after']) > 0);
      assert.equal((await attempt(a, testPassword)).statusCode, 429);
      // the window is in the database: when it has passed (on either clock), a login succeeds and clears it
      b.clock.advance(15 * 60_000);
      assert.equal((await attempt(b, testPassword)).statusCode, 200);
      assert.equal((await attempt(a, 'wrong-password')).statusCode, 401, 'a new window after the success');
    } finally {
      await b.close();
      await a.close();
    }
  });

  test('concurrent wrong passwords on two platforms get exactly the allowed number of tries', async () => {
    const a = await startTestPlatform({ loginMaxPerAccount: 3, loginMaxPerAddress: 1000 });
    const b = await startTestPlatform({ loginMaxPerAccount: 3, loginMaxPerAddress: 1000 }, {}, { sharing: a });
    try {
      await a.platform.users.create({ email: 'raced@example.com', password: testPassword });
      const tries = [a, b, a, b, a, b, a, b].map((p) => p.request('POST', '/auth/token', { body: { email: 'raced@example.com', password: 'wrong-password' } }));
      const codes = (await Promise.all(tries)).map((r) => r.statusCode).sort();
      assert.deepEqual(codes, [401, 401, 401, 429, 429, 429, 429, 429], 'each attempt is counted before its password is checked');
    } finally {
      await b.close();
      await a.close();
    }
  });

  test('the address limit holds across platforms that share the database', async () => {
    const a = await startTestPlatform({ loginMaxPerAddress: 2 });
    const b = await startTestPlatform({ loginMaxPerAddress: 2 }, {}, { sharing: a });
    try {
      const codes = [];
      for (const [k, p] of [a, b, a].entries()) codes.push((await p.request('POST', '/auth/token', { body: { email: `far${k}@example.com`, password: 'whatever-it-is' } })).statusCode);
      assert.deepEqual(codes, [401, 401, 429]);
    } finally {
      await b.close();
      await a.close();
    }
  });

  test('password change needs the current password and ends sessions', async () => {
    await t.platform.users.create({ email: 'changer@example.com', password: testPassword });
    const login = (await t.request('POST', '/auth/token', { body: { email: 'changer@example.com', password: testPassword } })).json();
    const wrong = await t.request('POST', '/users/me/password', { token: login.access_token, body: { current_password: 'not-it-at-all', new_password: 'a-brand-new-password' } });
    assert.equal(wrong.statusCode, 403);
    assert.equal(wrong.json().code, 'user.wrong_password');
    const weak = await t.request('POST', '/users/me/password', { token: login.access_token, body: { current_password: testPassword, new_password: 'short' } });
    assert.equal(weak.statusCode, 400);
    assert.equal(weak.json().code, 'user.weak_password');
    const ok = await t.request('POST', '/users/me/password', { token: login.access_token, body: { current_password: testPassword, new_password: 'a-brand-new-password' } });
    assert.equal(ok.statusCode, 204);
    assert.equal((await t.request('POST', '/auth/refresh', { body: { refresh_token: login.refresh_token } })).statusCode, 401);
    assert.equal((await t.request('POST', '/auth/token', { body: { email: 'changer@example.com', password: testPassword } })).statusCode, 401);
    assert.equal((await t.request('POST', '/auth/token', { body: { email: 'changer@example.com', password: 'a-brand-new-password' } })).statusCode, 200);
  });
});

describe('personal access tokens', () => {
  let t: TestPlatform;
  before(async () => {
    t = await startTestPlatform();
  });
  after(() => t.close());

  test('a token is limited to its organization and actions, expires and can be revoked', async () => {
    const owner = await t.user('pat-owner@example.com');
    const orgA = (await t.request('POST', '/orgs', { token: owner.token, body: { name: 'A' } })).json();
    const orgB = (await t.request('POST', '/orgs', { token: owner.token, body: { name: 'B' } })).json();
    const created = await t.request('POST', '/users/me/tokens', { token: owner.token, body: { name: 'ci', org_id: orgA.id, actions: ['devices:read'], expires_in: 3600 } });
    assert.equal(created.statusCode, 201);
    const pat = created.json();
    assert.match(pat.token, /^fwp_/);
    assert.equal(created.headers.location, `/users/me/tokens/${pat.id}`);

    assert.equal((await t.request('GET', `/orgs/${orgA.id}/devices`, { token: pat.token })).statusCode, 200);
    const write = await t.request('POST', `/orgs/${orgA.id}/devices`, { token: pat.token, body: { name: 'd' } });
    assert.equal(write.statusCode, 403);
    assert.equal(write.json().code, 'auth.token_scope');
    assert.equal((await t.request('GET', `/orgs/${orgB.id}/devices`, { token: pat.token })).statusCode, 404);
    assert.equal((await t.request('POST', '/orgs', { token: pat.token, body: { name: 'C' } })).statusCode, 403);

    const list = (await t.request('GET', '/users/me/tokens', { token: owner.token })).json();
    assert.equal(list.total, 1);
    assert.equal(list.tokens[0].token, undefined, 'the token text is never listed');
    assert.ok(list.tokens[0].last_used_at);

    assert.equal((await t.request('DELETE', `/users/me/tokens/${pat.id}`, { token: owner.token })).statusCode, 204);
    assert.equal((await t.request('GET', `/orgs/${orgA.id}/devices`, { token: pat.token })).statusCode, 401);

    const short = (await t.request('POST', '/users/me/tokens', { token: owner.token, body: { name: 'short', org_id: orgA.id, actions: ['org:read'], expires_in: 60 } })).json();
    assert.equal((await t.request('GET', `/orgs/${orgA.id}`, { token: short.token })).statusCode, 200);
    t.clock.advance(61_000);
    assert.equal((await t.request('GET', `/orgs/${orgA.id}`, { token: short.token })).statusCode, 401);
  });

  test('no one creates a token whose actions exceed their role, and the refusal names them', async () => {
    const owner = await t.user('role-owner@example.com');
    const viewer = await t.user('role-viewer@example.com');
    const org = (await t.request('POST', '/orgs', { token: owner.token, body: { name: 'R' } })).json();
    await addMember(t, org.id, owner.token, viewer, 'viewer');
    const res = await t.request('POST', '/users/me/tokens', { token: viewer.token, body: { name: 'x', org_id: org.id, actions: ['devices:read', 'devices:write', 'members:write'], expires_in: 600 } });
    assertProblem(res, 403, 'auth.forbidden');
    assert.match(res.json().detail, /devices:write, members:write/);
    assert.deepEqual(res.json().actions, ['devices:write', 'members:write']);
    assert.equal((await t.request('GET', '/users/me/tokens', { token: viewer.token })).json().total, 0);
    const read = await t.request('POST', '/users/me/tokens', { token: viewer.token, body: { name: 'x', org_id: org.id, actions: ['devices:read'], expires_in: 600 } });
    assert.equal(read.statusCode, 201);
  });

  test('a token reaches only the routes of its actions: not its user, tokens, password or sessions', async () => {
    const u = await t.user('pat-self@example.com');
    const org = (await t.request('POST', '/orgs', { token: u.token, body: { name: 'self' } })).json();
    const pat = (await t.request('POST', '/users/me/tokens', { token: u.token, body: { name: 'ro', org_id: org.id, actions: ['devices:read'], expires_in: 600 } })).json();
    const refused: [string, string, unknown?][] = [
      ['PATCH', '/users/me', { name: 'renamed' }],
      ['GET', '/users/me/tokens'],
      ['POST', '/users/me/tokens', { name: 'more', org_id: org.id, actions: ['devices:read'], expires_in: 600 }],
      ['DELETE', `/users/me/tokens/${pat.id}`],
      ['POST', '/users/me/password', { current_password: testPassword, new_password: 'another-long-password' }],
      ['DELETE', '/users/me/sessions'],
      ['GET', `/users/${u.id}`],
      ['GET', '/users/me/invitations'],
    ];
    for (const [method, url, body] of refused) {
      const res = await t.request(method as 'GET', url, { token: pat.token, ...(body !== undefined ? { body } : {}) });
      assertProblem(res, 403, 'auth.token_scope');
    }
    assert.equal((await t.request('GET', '/users/me', { token: u.token })).json().name, '');
    assert.equal((await t.request('GET', '/users/me/tokens', { token: u.token })).json().tokens[0].revoked_at, null);
    // what its action covers, and who it is, still work
    assert.equal((await t.request('GET', `/orgs/${org.id}/devices`, { token: pat.token })).statusCode, 200);
    assert.equal((await t.request('GET', '/users/me', { token: pat.token })).json().id, u.id);
  });

  test('tokens cannot be created for an organization you do not belong to', async () => {
    const a = await t.user('outsider-a@example.com');
    const b = await t.user('outsider-b@example.com');
    const org = (await t.request('POST', '/orgs', { token: a.token, body: { name: 'private' } })).json();
    const res = await t.request('POST', '/users/me/tokens', { token: b.token, body: { name: 'x', org_id: org.id, actions: ['org:read'], expires_in: 600 } });
    assert.equal(res.statusCode, 404);
  });
});
