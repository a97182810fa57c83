import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startTestPlatform, testPassword, type TestPlatform } from '../../../test/helpers/platform.js';
import { assertProblem } from '../../../test/helpers/problem.js';

type TestUser = Awaited<ReturnType<TestPlatform['user']>>;

describe('users over HTTP', () => {
  let t: TestPlatform;
  let root: TestUser; // platform admin
  let ursula: TestUser; // a normal user

  before(async () => {
    t = await startTestPlatform();
    root = await t.user('root@example.com', 'admin');
    ursula = await t.user('ursula@example.com');
  });
  after(() => t.close());

  async function login(email: string, password = testPassword) {
    return t.request('POST', '/auth/token', { body: { email, password } });
  }

  describe('POST /users', () => {
    test('a platform admin creates a user who can then log in', async () => {
      const res = await t.request('POST', '/users', { token: root.token, body: { email: 'New.Person@Example.com', password: testPassword, name: 'New Person' } });
      assert.equal(res.statusCode, 201);
      const user = res.json();
      assert.equal(res.headers.location, `/users/${user.id}`);
      assert.equal(user.email, 'new.person@example.com');
      assert.equal(user.name, 'New Person');
      assert.equal(user.role, 'user');
      assert.equal(user.password, undefined);
      assert.equal(user.password_hash, undefined);
      assert.equal((await login('new.person@example.com')).statusCode, 200);
    });

    test('a normal user may not create users', async () => {
      assertProblem(await t.request('POST', '/users', { token: ursula.token, body: { email: 'sneaky@example.com', password: testPassword } }), 403, 'auth.forbidden');
      assert.equal((await login('sneaky@example.com')).statusCode, 401);
    });

    test('an email is taken whatever its case', async () => {
      assertProblem(await t.request('POST', '/users', { token: root.token, body: { email: 'URSULA@Example.COM', password: testPassword } }), 409, 'user.email_taken');
    });

    test('weak passwords, bad emails and unknown fields are refused', async () => {
      assertProblem(await t.request('POST', '/users', { token: root.token, body: { email: 'weak@example.com', password: 'short' } }), 400, 'user.weak_password');
      for (const body of [
        { email: 'not an email', password: testPassword },
        { email: 'fields@example.com', password: testPassword, is_admin: true },
        { email: 'role@example.com', password: testPassword, role: 'superuser' },
        { password: testPassword },
      ]) {
        assertProblem(await t.request('POST', '/users', { token: root.token, body }), 400, 'request.invalid');
      }
    });

    test('a platform admin may create another platform admin', async () => {
      const res = await t.request('POST', '/users', { token: root.token, body: { email: 'root2@example.com', password: testPassword, role: 'admin' } });
      assert.equal(res.statusCode, 201);
      assert.equal(res.json().role, 'admin');
    });
  });

  test('users are listed a page at a time, and found by email', async () => {
    const all = await t.request('GET', '/users?limit=1000', { token: root.token });
    assert.equal(all.statusCode, 200);
    const { total, users } = all.json();
    assert.equal(users.length, total);
    assert.ok(total >= 2);
    assert.ok(users.every((u: Record<string, unknown>) => u.password_hash === undefined));

    const page = (await t.request('GET', '/users?offset=1&limit=1', { token: root.token })).json();
    assert.deepEqual({ total: page.total, offset: page.offset, limit: page.limit }, { total, offset: 1, limit: 1 });
    assert.deepEqual(page.users, [users[1]]);

    const found = (await t.request('GET', '/users?email=Ursula@Example.com', { token: root.token })).json();
    assert.equal(found.total, 1);
    assert.equal(found.users[0].id, ursula.id);
    const none = (await t.request('GET', '/users?email=nobody@example.com', { token: root.token })).json();
    assert.deepEqual({ total: none.total, users: none.users }, { total: 0, users: [] });

    assertProblem(await t.request('GET', '/users', { token: ursula.token }), 403, 'auth.forbidden');
    assertProblem(await t.request('GET', '/users?offset=-1', { token: root.token }), 400, 'request.invalid');
  });

  test('a user reads themselves; other users are not found unless you are an admin', async () => {
    const self = await t.request('GET', `/users/${ursula.id}`, { token: ursula.token });
    assert.equal(self.statusCode, 200);
    assert.equal(self.json().email, ursula.email);
    assertProblem(await t.request('GET', `/users/${root.id}`, { token: ursula.token }), 404, 'user.not_found');
    assertProblem(await t.request('GET', `/users/${randomUUID()}`, { token: ursula.token }), 404, 'user.not_found');

    const byAdmin = await t.request('GET', `/users/${ursula.id}`, { token: root.token });
    assert.equal(byAdmin.statusCode, 200);
    assert.deepEqual(byAdmin.json(), self.json());
    for (const id of [randomUUID(), 'not-a-uuid']) assertProblem(await t.request('GET', `/users/${id}`, { token: root.token }), 404, 'user.not_found');
  });

  test('a platform admin changes name, role and password of a user', async () => {
    const pat = await t.user('pat@example.com');
    t.clock.advance(1000);
    const res = await t.request('PATCH', `/users/${pat.id}`, { token: root.token, body: { name: 'Pat', role: 'admin' } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().name, 'Pat');
    assert.equal(res.json().role, 'admin');
    assert.notEqual(res.json().updated_at, res.json().created_at);
    // the role applies to the tokens the user already holds
    assert.equal((await t.request('GET', '/users', { token: pat.token })).statusCode, 200);

    // fields left out are kept
    const renamed = await t.request('PATCH', `/users/${pat.id}`, { token: root.token, body: { name: 'Patricia' } });
    assert.equal(renamed.json().role, 'admin');

    assert.equal((await t.request('PATCH', `/users/${pat.id}`, { token: root.token, body: { password: 'another-long-password' } })).statusCode, 200);
    assert.equal((await login(pat.email)).statusCode, 401);
    assert.equal((await login(pat.email, 'another-long-password')).statusCode, 200);

    assertProblem(await t.request('PATCH', `/users/${pat.id}`, { token: root.token, body: { password: 'short' } }), 400, 'user.weak_password');
    assertProblem(await t.request('PATCH', `/users/${pat.id}`, { token: root.token, body: { email: 'new@example.com' } }), 400, 'request.invalid');
    assertProblem(await t.request('PATCH', `/users/${randomUUID()}`, { token: root.token, body: { name: 'ghost' } }), 404, 'user.not_found');
    assertProblem(await t.request('PATCH', `/users/${ursula.id}`, { token: ursula.token, body: { role: 'admin' } }), 403, 'auth.forbidden');
    assert.equal((await t.request('GET', '/users/me', { token: ursula.token })).json().role, 'user');
  });

  test('a platform admin deletes a user, but not themselves', async () => {
    const gone = await t.user('gone@example.com');
    assertProblem(await t.request('DELETE', `/users/${gone.id}`, { token: ursula.token }), 403, 'auth.forbidden');
    assert.equal((await t.request('DELETE', `/users/${gone.id}`, { token: root.token })).statusCode, 204);
    assertProblem(await t.request('GET', `/users/${gone.id}`, { token: root.token }), 404, 'user.not_found');
    assertProblem(await t.request('DELETE', `/users/${gone.id}`, { token: root.token }), 404, 'user.not_found');
    // the deleted user's tokens stop working at once
    assertProblem(await t.request('GET', '/users/me', { token: gone.token }), 401, 'auth.token_invalid');

    assertProblem(await t.request('DELETE', `/users/${root.id}`, { token: root.token }), 400, 'request.invalid');
    assert.equal((await t.request('GET', '/users/me', { token: root.token })).statusCode, 200);
  });

  test('a user changes their own name', async () => {
    const res = await t.request('PATCH', '/users/me', { token: ursula.token, body: { name: 'Ursula K.' } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().name, 'Ursula K.');
    assert.equal(res.json().role, 'user');
    assert.equal((await t.request('GET', '/users/me', { token: ursula.token })).json().name, 'Ursula K.');
    // nothing else can be changed this way
    assertProblem(await t.request('PATCH', '/users/me', { token: ursula.token, body: { name: 'U', role: 'admin' } }), 400, 'request.invalid');
    assertProblem(await t.request('PATCH', '/users/me', { body: { name: 'anonymous' } }), 401, 'auth.required');
  });

  test('self sign-up is disabled by default', async () => {
    const res = await t.request('POST', '/auth/signup', { body: { email: 'walk-in@example.com', password: testPassword } });
    assertProblem(res, 403, 'auth.signup_disabled');
    assert.equal((await login('walk-in@example.com')).statusCode, 401);
  });
});

describe('self sign-up when enabled', () => {
  let t: TestPlatform;
  before(async () => {
    t = await startTestPlatform({ signup: true });
  });
  after(() => t.close());

  test('anyone creates a normal account and logs in with it', async () => {
    const res = await t.request('POST', '/auth/signup', { body: { email: 'Walk-In@example.com', password: testPassword, name: 'Walk In' } });
    assert.equal(res.statusCode, 201);
    const user = res.json();
    assert.equal(res.headers.location, `/users/${user.id}`);
    assert.equal(user.email, 'walk-in@example.com');
    assert.equal(user.role, 'user');
    const login = await t.request('POST', '/auth/token', { body: { email: 'walk-in@example.com', password: testPassword } });
    assert.equal(login.statusCode, 200);
    assert.equal((await t.request('GET', '/users/me', { token: login.json().access_token })).json().id, user.id);

    assertProblem(await t.request('POST', '/auth/signup', { body: { email: 'WALK-IN@example.com', password: testPassword } }), 409, 'user.email_taken');
    assertProblem(await t.request('POST', '/auth/signup', { body: { email: 'weak@example.com', password: 'short' } }), 400, 'user.weak_password');
  });

  test('sign-up cannot choose the platform role', async () => {
    assertProblem(await t.request('POST', '/auth/signup', { body: { email: 'climber@example.com', password: testPassword, role: 'admin' } }), 400, 'request.invalid');
  });
});
