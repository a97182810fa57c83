import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { startTestPlatform, testPassword, type TestPlatform } from '../../test/helpers/platform.js';
import { login, processesOnOneDatabase, type Pair } from '../../test/helpers/processes.js';
import { assertProblem } from '../../test/helpers/problem.js';

describe('access tokens end with their session', () => {
  let t: TestPlatform;
  before(async () => {
    t = await startTestPlatform();
  });
  after(() => t.close());

  const me = (token: string) => t.request('GET', '/users/me', { token });

  test('logout makes the access token of its session fail at once, not the other sessions', async () => {
    await t.platform.users.create({ email: 'logout@example.com', password: testPassword });
    const a = await login(t, 'logout@example.com');
    const b = await login(t, 'logout@example.com');
    assert.equal((await me(a.access_token)).statusCode, 200);
    assert.equal((await t.request('POST', '/auth/logout', { body: { refresh_token: a.refresh_token } })).statusCode, 204);
    assertProblem(await me(a.access_token), 401, 'auth.session_ended');
    assert.equal((await me(b.access_token)).statusCode, 200);
  });

  test('a refreshed access token belongs to the same session and ends with it', async () => {
    await t.platform.users.create({ email: 'refreshed@example.com', password: testPassword });
    const first = await login(t, 'refreshed@example.com');
    const next: Pair = (await t.request('POST', '/auth/refresh', { body: { refresh_token: first.refresh_token } })).json();
    assert.equal((await me(first.access_token)).statusCode, 200);
    assert.equal((await me(next.access_token)).statusCode, 200);
    await t.request('POST', '/auth/logout', { body: { refresh_token: next.refresh_token } });
    assertProblem(await me(first.access_token), 401, 'auth.session_ended');
    assertProblem(await me(next.access_token), 401, 'auth.session_ended');
  });

  test('reusing a replaced refresh token ends the access tokens of its session', async () => {
    await t.platform.users.create({ email: 'stolen@example.com', password: testPassword });
    const first = await login(t, 'stolen@example.com');
    const next: Pair = (await t.request('POST', '/auth/refresh', { body: { refresh_token: first.refresh_token } })).json();
    assert.equal((await t.request('POST', '/auth/refresh', { body: { refresh_token: first.refresh_token } })).statusCode, 401);
    assertProblem(await me(next.access_token), 401, 'auth.session_ended');
  });

  test('a password change ends every session of the account, the one that changed it included', async () => {
    await t.platform.users.create({ email: 'newpass@example.com', password: testPassword });
    const a = await login(t, 'newpass@example.com');
    const b = await login(t, 'newpass@example.com');
    const changed = await t.request('POST', '/users/me/password', { token: a.access_token, body: { current_password: testPassword, new_password: 'another-long-password' } });
    assert.equal(changed.statusCode, 204);
    assertProblem(await me(a.access_token), 401, 'auth.session_ended');
    assertProblem(await me(b.access_token), 401, 'auth.session_ended');
    const c = await login(t, 'newpass@example.com', 'another-long-password');
    assert.equal((await me(c.access_token)).statusCode, 200);
  });

  test('a platform admin setting a password ends the sessions of that user', async () => {
    const admin = await t.user('setter@example.com', 'admin');
    const u = await t.user('set-for@example.com');
    assert.equal((await t.request('PATCH', `/users/${u.id}`, { token: admin.token, body: { password: 'set-by-the-admin' } })).statusCode, 200);
    assertProblem(await me(u.token), 401, 'auth.session_ended');
    assert.equal((await me(admin.token)).statusCode, 200);
  });

  test('sign out everywhere ends every session of the caller, and only theirs', async () => {
    const u = await t.user('everywhere@example.com');
    const other = await login(t, 'everywhere@example.com');
    const someoneElse = await t.user('bystander@example.com');
    assert.equal((await t.request('DELETE', '/users/me/sessions', { token: u.token })).statusCode, 204);
    assertProblem(await me(u.token), 401, 'auth.session_ended');
    assertProblem(await me(other.access_token), 401, 'auth.session_ended');
    assertProblem(await t.request('POST', '/auth/refresh', { body: { refresh_token: other.refresh_token } }), 401, 'auth.refresh_token_invalid');
    assert.equal((await me(someoneElse.token)).statusCode, 200);
  });

  test('a platform admin signs another user out everywhere; others may not', async () => {
    const admin = await t.user('signs-out@example.com', 'admin');
    const u = await t.user('signed-out@example.com');
    const peer = await t.user('peer@example.com');
    assertProblem(await t.request('DELETE', `/users/${u.id}/sessions`, { token: peer.token }), 403, 'auth.forbidden');
    assert.equal((await me(u.token)).statusCode, 200);
    assertProblem(await t.request('DELETE', '/users/0190a1b2-0000-7000-8000-000000000000/sessions', { token: admin.token }), 404, 'user.not_found');
    assert.equal((await t.request('DELETE', `/users/${u.id}/sessions`, { token: admin.token })).statusCode, 204);
    assertProblem(await me(u.token), 401, 'auth.session_ended');
    assert.equal((await me(admin.token)).statusCode, 200);
  });

  test('an access token with no session (issued before sessions were recorded) is refused', async () => {
    const { SignJWT } = await import('jose');
    const u = await t.user('legacy@example.com');
    const now = Math.floor(t.clock.now() / 1000);
    const legacy = await new SignJWT({ typ: 'access' }).setProtectedHeader({ alg: 'HS256' }).setIssuer('fleetwire').setSubject(u.id).setIssuedAt(now).setExpirationTime(now + 600).sign(t.platform.keys.jwt);
    assertProblem(await me(legacy), 401, 'auth.token_invalid');
  });

  test('an ended session refuses its access token when publishing as a user too', async () => {
    const u = await t.user('publisher@example.com');
    const org = (await t.request('POST', '/orgs', { token: u.token, body: { name: 'pub' } })).json();
    const channel = (await t.request('POST', `/orgs/${org.id}/channels`, { token: u.token, body: { name: 'c' } })).json();
    const publish = () => t.request('POST', `/channels/${channel.id}/messages`, { token: u.token, body: { v: 1 }, headers: { 'content-type': 'application/json' } });
    assert.equal((await publish()).statusCode, 202);
    await t.request('DELETE', '/users/me/sessions', { token: u.token });
    assertProblem(await publish(), 401, 'auth.session_ended');
  });
});

test('a WebSocket with the access token of an ended session is closed with 4401, and a new upgrade is refused with 401', async () => {
  const t = await startTestPlatform();
  try {
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const base = `ws://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    const u = await t.user('ws-user@example.com');
    const org = (await t.request('POST', '/orgs', { token: u.token, body: { name: 'ws' } })).json();
    const channel = (await t.request('POST', `/orgs/${org.id}/channels`, { token: u.token, body: { name: 'c' } })).json();
    const upgrade = () =>
      new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(`${base}/ws/channels/${channel.id}/messages`, { headers: { authorization: `Bearer ${u.token}` } });
        ws.once('open', () => (ws.close(), resolve(101)));
        ws.once('unexpected-response', (_req, res) => (res.resume(), ws.terminate(), resolve(res.statusCode ?? 0)));
        ws.once('error', reject);
      });
    // one socket open with the token, another with a token of another session of the same user
    const open = (token: string) =>
      new Promise<{ ws: WebSocket; closed: Promise<number> }>((resolve, reject) => {
        const ws = new WebSocket(`${base}/ws/channels/${channel.id}/messages`, { headers: { authorization: `Bearer ${token}` } });
        const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
        ws.once('open', () => resolve({ ws, closed }));
        ws.once('error', reject);
      });
    const first = await login(t, 'ws-user@example.com');
    const other = await login(t, 'ws-user@example.com');
    const held = await open(first.access_token);
    const kept = await open(other.access_token);
    assert.equal(await upgrade(), 101);
    // logout ends the socket of its session at once, with 4401, and leaves the other session's socket
    await t.request('POST', '/auth/logout', { body: { refresh_token: first.refresh_token } });
    assert.equal(await held.closed, 4401);
    assert.equal(await upgrade(), 101, 'the token of a session still open still opens sockets');
    assert.equal(kept.ws.readyState, WebSocket.OPEN);
    // sign-out everywhere ends every socket opened with a login token of that user
    await t.request('DELETE', '/users/me/sessions', { token: other.access_token });
    assert.equal(await kept.closed, 4401);
    assert.equal(await upgrade(), 401);
  } finally {
    await t.close();
  }
});

describe('ending a session across processes', () => {
  const cacheMs = 1000;
  const { clock, node, bus: newBus } = processesOnOneDatabase(cacheMs);

  test('another process on the bus refuses the access token at once', async () => {
    const bus = newBus();
    const a = await node(bus);
    const b = await node(bus);
    await a.platform.users.create({ email: 'across@example.com', password: testPassword });
    const pair = await login(a, 'across@example.com');
    assert.equal((await b.request('GET', '/users/me', { token: pair.access_token })).statusCode, 200, 'the session is live, and now cached in B');
    await a.request('POST', '/auth/logout', { body: { refresh_token: pair.refresh_token } });
    assertProblem(await b.request('GET', '/users/me', { token: pair.access_token }), 401, 'auth.session_ended');
  });

  test('a process that missed the broadcast refuses the access token once its cache entry expires', async () => {
    const buses = [newBus(), newBus()]; // one each: A's broadcasts never reach B
    const a = await node(buses[0]!);
    const b = await node(buses[1]!);
    await a.platform.users.create({ email: 'lost-broadcast@example.com', password: testPassword });
    const pair = await login(a, 'lost-broadcast@example.com');
    assert.equal((await b.request('GET', '/users/me', { token: pair.access_token })).statusCode, 200);
    await a.request('DELETE', '/users/me/sessions', { token: pair.access_token });
    assertProblem(await a.request('GET', '/users/me', { token: pair.access_token }), 401, 'auth.session_ended');
    clock.advance(cacheMs + 1);
    assertProblem(await b.request('GET', '/users/me', { token: pair.access_token }), 401, 'auth.session_ended');
  });
});
