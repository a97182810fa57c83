import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { testPassword } from '../../test/helpers/platform.js';
import { assertProblem } from '../../test/helpers/problem.js';
import { login, processesOnOneDatabase, type Pair, type PlatformProcess } from '../../test/helpers/processes.js';

// The user and the role each API request reads are kept briefly (auth/principals.ts); every change
// made in one process is seen by the others on the bus at once, and by the rest once the entry expires.
describe('users and roles cached per process, changed across processes', () => {
  const cacheMs = 1000;
  const { clock, node, bus: newBus } = processesOnOneDatabase(cacheMs);

  /** An organization owned by a new user, with a second user as a member of `role`. */
  async function orgWithMember(a: PlatformProcess, tag: string, role: string): Promise<{ org: string; owner: Pair; member: Pair; memberId: string }> {
    await a.platform.users.create({ email: `owner-${tag}@example.com`, password: testPassword });
    const m = await a.platform.users.create({ email: `member-${tag}@example.com`, password: testPassword });
    const owner = await login(a, `owner-${tag}@example.com`);
    const member = await login(a, `member-${tag}@example.com`);
    const org = (await a.request('POST', '/orgs', { token: owner.access_token, body: { name: tag } })).json().id as string;
    const inv = await a.request('POST', `/orgs/${org}/members`, { token: owner.access_token, body: { email: `member-${tag}@example.com`, role } });
    assert.equal(inv.statusCode, 202, inv.body);
    assert.equal((await a.request('POST', `/users/me/invitations/${inv.json().id}/accept`, { token: member.access_token })).statusCode, 200);
    return { org, owner, member, memberId: m.id };
  }

  test('a member removed, or given a lesser role, in one process is refused by another at once', async () => {
    const bus = newBus();
    const a = await node(bus);
    const b = await node(bus);
    const { org, owner, member, memberId } = await orgWithMember(a, 'roles', 'admin');
    // B reads (and keeps) the member's user and role
    assert.equal((await b.request('POST', `/orgs/${org}/channels`, { token: member.access_token, body: { name: 'c1' } })).statusCode, 201);
    assert.equal((await a.request('PATCH', `/orgs/${org}/members/${memberId}`, { token: owner.access_token, body: { role: 'viewer' } })).statusCode, 200);
    assertProblem(await b.request('POST', `/orgs/${org}/channels`, { token: member.access_token, body: { name: 'c2' } }), 403, 'auth.forbidden');
    assert.equal((await b.request('GET', `/orgs/${org}/channels`, { token: member.access_token })).statusCode, 200, 'a viewer still reads');
    assert.equal((await a.request('DELETE', `/orgs/${org}/members/${memberId}`, { token: owner.access_token })).statusCode, 204);
    assertProblem(await b.request('GET', `/orgs/${org}/channels`, { token: member.access_token }), 404, 'org.not_found');
  });

  test('a deleted organization and a demoted platform admin are refused by another process at once', async () => {
    const bus = newBus();
    const a = await node(bus);
    const b = await node(bus);
    const { org, owner } = await orgWithMember(a, 'gone', 'viewer');
    assert.equal((await b.request('GET', `/orgs/${org}`, { token: owner.access_token })).statusCode, 200);
    assert.equal((await a.request('DELETE', `/orgs/${org}`, { token: owner.access_token })).statusCode, 204);
    assertProblem(await b.request('GET', `/orgs/${org}`, { token: owner.access_token }), 404, 'org.not_found');

    const admin = await a.platform.users.create({ email: 'demoted@example.com', password: testPassword, role: 'admin' });
    await a.platform.users.create({ email: 'other-admin@example.com', password: testPassword, role: 'admin' });
    const pair = await login(a, 'demoted@example.com');
    const other = await login(a, 'other-admin@example.com');
    assert.equal((await b.request('GET', '/users', { token: pair.access_token })).statusCode, 200, 'an admin lists users; B keeps the user');
    assert.equal((await a.request('PATCH', `/users/${admin.id}`, { token: other.access_token, body: { role: 'user' } })).statusCode, 200);
    assert.equal((await b.request('GET', '/users', { token: pair.access_token })).statusCode, 403, 'no longer an admin in B either');
  });

  test('a process that missed the broadcast refuses the removed member once its entry expires', async () => {
    const buses = [newBus(), newBus()]; // one each: A's broadcasts never reach B
    const a = await node(buses[0]!);
    const b = await node(buses[1]!);
    const { org, owner, member, memberId } = await orgWithMember(a, 'expiry', 'viewer');
    assert.equal((await b.request('GET', `/orgs/${org}/channels`, { token: member.access_token })).statusCode, 200);
    assert.equal((await a.request('DELETE', `/orgs/${org}/members/${memberId}`, { token: owner.access_token })).statusCode, 204);
    assertProblem(await a.request('GET', `/orgs/${org}/channels`, { token: member.access_token }), 404, 'org.not_found');
    clock.advance(cacheMs + 1);
    assertProblem(await b.request('GET', `/orgs/${org}/channels`, { token: member.access_token }), 404, 'org.not_found');
  });
});
