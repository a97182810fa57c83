import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startTestPlatform, type TestPlatform } from '../../../test/helpers/platform.js';
import { assertProblem } from '../../../test/helpers/problem.js';
import { addMember as addMemberAs } from '../../../test/helpers/members.js';
import { actions, orgRoles, roleAllows, type Action, type OrgRole } from '../../auth/permissions.js';

type TestUser = Awaited<ReturnType<TestPlatform['user']>>;

describe('organizations over HTTP', () => {
  let t: TestPlatform;
  let alice: TestUser; // owns the organizations the tests create
  let root: TestUser; // platform admin
  let adam: TestUser;
  let olga: TestUser;
  let vera: TestUser;
  let otto: TestUser;

  async function createOrg(name: string, owner: TestUser = alice): Promise<{ id: string; name: string }> {
    const res = await t.request('POST', '/orgs', { token: owner.token, body: { name } });
    assert.equal(res.statusCode, 201, res.body);
    return res.json();
  }

  /** Alice invites, the user accepts. */
  async function addMember(orgId: string, user: TestUser, role: OrgRole): Promise<void> {
    await addMemberAs(t, orgId, alice.token, user, role);
  }

  before(async () => {
    t = await startTestPlatform();
    alice = await t.user('alice@example.com');
    root = await t.user('root@example.com', 'admin');
    adam = await t.user('adam@example.com');
    olga = await t.user('olga@example.com');
    vera = await t.user('vera@example.com');
    otto = await t.user('otto@example.com');
  });
  after(() => t.close());

  test('creating an organization makes the caller its owner', async () => {
    const res = await t.request('POST', '/orgs', { token: alice.token, body: { name: 'Acme' } });
    assert.equal(res.statusCode, 201);
    const org = res.json();
    assert.equal(res.headers.location, `/orgs/${org.id}`);
    assert.equal(org.name, 'Acme');
    assert.equal(org.role, 'owner');

    const got = await t.request('GET', `/orgs/${org.id}`, { token: alice.token });
    assert.equal(got.statusCode, 200);
    assert.deepEqual(got.json(), org);

    const members = (await t.request('GET', `/orgs/${org.id}/members`, { token: alice.token })).json();
    assert.equal(members.total, 1);
    assert.equal(members.members[0].user_id, alice.id);
    assert.equal(members.members[0].email, alice.email);
    assert.equal(members.members[0].role, 'owner');
  });

  test('an organization needs a name of 1 to 256 characters and nothing else', async () => {
    for (const body of [{}, { name: '' }, { name: 'x'.repeat(257) }, { name: 'ok', extra: 1 }]) {
      assertProblem(await t.request('POST', '/orgs', { token: alice.token, body }), 400, 'request.invalid');
    }
    assertProblem(await t.request('POST', '/orgs', { body: { name: 'anonymous' } }), 401, 'auth.required');
  });

  test('organizations are listed to their members only, a page at a time', async () => {
    const lister = await t.user('lister@example.com');
    const made = [];
    for (const name of ['one', 'two', 'three']) {
      made.push(await createOrg(name, lister));
      t.clock.advance(1000);
    }
    await createOrg('not mine', otto);

    const all = await t.request('GET', '/orgs', { token: lister.token });
    assert.equal(all.statusCode, 200);
    assert.equal(all.json().total, 3);
    assert.deepEqual(all.json().orgs.map((o: { id: string }) => o.id), made.map((o) => o.id));
    assert.ok(all.json().orgs.every((o: { role: string }) => o.role === 'owner'));

    const page = (await t.request('GET', '/orgs?offset=1&limit=1', { token: lister.token })).json();
    assert.deepEqual({ total: page.total, offset: page.offset, limit: page.limit }, { total: 3, offset: 1, limit: 1 });
    assert.deepEqual(page.orgs.map((o: { name: string }) => o.name), ['two']);

    const named = (await t.request('GET', '/orgs?name=three', { token: lister.token })).json();
    assert.deepEqual(named.orgs.map((o: { name: string }) => o.name), ['three']);

    assertProblem(await t.request('GET', '/orgs?limit=0', { token: lister.token }), 400, 'request.invalid');
    assertProblem(await t.request('GET', '/orgs?limit=1001', { token: lister.token }), 400, 'request.invalid');
  });

  test('a platform admin sees every organization and may act in it', async () => {
    const org = await createOrg('seen by root');
    const list = (await t.request('GET', '/orgs?limit=1000', { token: root.token })).json();
    const seen = list.orgs.find((o: { id: string }) => o.id === org.id);
    assert.ok(seen, 'the admin lists organizations they are not a member of');
    assert.equal(seen.role, undefined, 'the admin is not a member');
    assert.equal(list.total, list.orgs.length);

    const got = await t.request('GET', `/orgs/${org.id}`, { token: root.token });
    assert.equal(got.statusCode, 200);
    assert.equal(got.json().name, 'seen by root');
    assert.equal((await t.request('POST', `/orgs/${org.id}/devices`, { token: root.token, body: { name: 'by root' } })).statusCode, 201);
  });

  test('unknown, malformed and foreign organization ids are not found', async () => {
    const org = await createOrg('private');
    for (const id of [randomUUID(), 'not-a-uuid', org.id]) {
      assertProblem(await t.request('GET', `/orgs/${id}`, { token: otto.token }), 404, 'org.not_found');
    }
  });

  test('renaming an organization', async () => {
    const org = await createOrg('old name');
    t.clock.advance(1000);
    const res = await t.request('PATCH', `/orgs/${org.id}`, { token: alice.token, body: { name: 'new name' } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().name, 'new name');
    assert.notEqual(res.json().updated_at, res.json().created_at);
    assert.equal((await t.request('GET', `/orgs/${org.id}`, { token: alice.token })).json().name, 'new name');
    assertProblem(await t.request('PATCH', `/orgs/${org.id}`, { token: alice.token, body: { name: '' } }), 400, 'request.invalid');
  });

  test('deleting an organization removes it and everything in it', async () => {
    const org = await createOrg('doomed');
    await addMember(org.id, otto, 'viewer');
    const device = (await t.request('POST', `/orgs/${org.id}/devices`, { token: alice.token, body: { name: 'd' } })).json();
    assert.equal((await t.request('DELETE', `/orgs/${org.id}`, { token: alice.token })).statusCode, 204);
    assertProblem(await t.request('GET', `/orgs/${org.id}`, { token: alice.token }), 404, 'org.not_found');
    assertProblem(await t.request('GET', `/orgs/${org.id}/devices/${device.id}`, { token: alice.token }), 404, 'org.not_found');
    assert.equal(await t.platform.devices.get(org.id, device.id).catch(() => 'gone'), 'gone');
    const ottos = (await t.request('GET', '/orgs', { token: otto.token })).json();
    assert.ok(!ottos.orgs.some((o: { id: string }) => o.id === org.id));
    assertProblem(await t.request('DELETE', `/orgs/${org.id}`, { token: alice.token }), 404, 'org.not_found');
  });

  describe('members', () => {
    test('a platform admin adds an existing user by email at once, case-insensitively', async () => {
      const org = await createOrg('team');
      const res = await t.request('POST', `/orgs/${org.id}/members`, { token: root.token, body: { email: 'OLGA@example.com', role: 'operator' } });
      assert.equal(res.statusCode, 201);
      assert.equal(res.headers.location, `/orgs/${org.id}/members/${olga.id}`);
      const m = res.json();
      assert.equal(m.user_id, olga.id);
      assert.equal(m.email, olga.email);
      assert.equal(m.role, 'operator');
      const got = await t.request('GET', res.headers.location as string, { token: alice.token });
      assert.equal(got.statusCode, 200);
      assert.deepEqual(got.json(), m);
      // the new member sees the organization with their role
      assert.equal((await t.request('GET', `/orgs/${org.id}`, { token: olga.token })).json().role, 'operator');
      assertProblem(await t.request('POST', `/orgs/${org.id}/members`, { token: root.token, body: { email: 'ghost@example.com', role: 'viewer' } }), 404, 'user.not_found');
    });

    test('an owner invites: the same answer whether or not the email has an account, and no membership until accepted', async () => {
      const org = await createOrg('invites');
      const known = await t.request('POST', `/orgs/${org.id}/members`, { token: alice.token, body: { email: 'OLGA@example.com', role: 'operator' } });
      const unknown = await t.request('POST', `/orgs/${org.id}/members`, { token: alice.token, body: { email: 'ghost@example.com', role: 'operator' } });
      for (const res of [known, unknown]) {
        assert.equal(res.statusCode, 202, res.body);
        assert.deepEqual(Object.keys(res.json()).sort(), ['created_at', 'email', 'expires_at', 'id', 'org_id', 'role']);
        assert.equal(res.headers.location, `/orgs/${org.id}/invitations/${res.json().id}`);
        assert.equal(Date.parse(res.json().expires_at) - Date.parse(res.json().created_at), 7 * 86_400_000);
      }
      assert.equal(known.json().email, 'olga@example.com');
      assert.equal(unknown.json().user_id, undefined);
      // not a member yet: the organization stays hidden from Olga
      assertProblem(await t.request('GET', `/orgs/${org.id}`, { token: olga.token }), 404, 'org.not_found');
      assert.equal((await t.request('GET', `/orgs/${org.id}/members`, { token: alice.token })).json().total, 1);
      const pendingInOrg = (await t.request('GET', `/orgs/${org.id}/invitations`, { token: alice.token })).json();
      assert.deepEqual(pendingInOrg.invitations.map((i: { email: string }) => i.email).sort(), ['ghost@example.com', 'olga@example.com']);

      const mine = (await t.request('GET', '/users/me/invitations', { token: olga.token })).json();
      const invitation = mine.invitations.find((i: { org_id: string }) => i.org_id === org.id);
      assert.deepEqual({ id: invitation.id, org_name: invitation.org_name, role: invitation.role }, { id: known.json().id, org_name: 'invites', role: 'operator' });
      // someone else cannot accept Olga's invitation
      assertProblem(await t.request('POST', `/users/me/invitations/${invitation.id}/accept`, { token: otto.token }), 404, 'org.invitation_not_found');
      const accepted = await t.request('POST', `/users/me/invitations/${invitation.id}/accept`, { token: olga.token });
      assert.equal(accepted.statusCode, 200);
      assert.deepEqual({ user_id: accepted.json().user_id, role: accepted.json().role }, { user_id: olga.id, role: 'operator' });
      assert.equal((await t.request('GET', `/orgs/${org.id}`, { token: olga.token })).json().role, 'operator');
      assertProblem(await t.request('POST', `/users/me/invitations/${invitation.id}/accept`, { token: olga.token }), 404, 'org.invitation_not_found');
      assert.ok(!(await t.request('GET', '/users/me/invitations', { token: olga.token })).json().invitations.some((i: { org_id: string }) => i.org_id === org.id));
    });

    test('an invitation can be declined by its user or withdrawn by the organization', async () => {
      const org = await createOrg('declined');
      const invite = async (u: TestUser) => (await t.request('POST', `/orgs/${org.id}/members`, { token: alice.token, body: { email: u.email, role: 'viewer' } })).json().id as string;
      const toAdam = await invite(adam);
      assert.equal((await t.request('POST', `/users/me/invitations/${toAdam}/decline`, { token: adam.token })).statusCode, 204);
      assertProblem(await t.request('POST', `/users/me/invitations/${toAdam}/accept`, { token: adam.token }), 404, 'org.invitation_not_found');
      const toVera = await invite(vera);
      assertProblem(await t.request('DELETE', `/orgs/${org.id}/invitations/${toVera}`, { token: otto.token }), 404, 'org.not_found');
      assert.equal((await t.request('DELETE', `/orgs/${org.id}/invitations/${toVera}`, { token: alice.token })).statusCode, 204);
      assertProblem(await t.request('POST', `/users/me/invitations/${toVera}/accept`, { token: vera.token }), 404, 'org.invitation_not_found');
    });

    test('inviting the same email again replaces its pending invitation, role and expiry', async () => {
      const org = await createOrg('again');
      const first = (await t.request('POST', `/orgs/${org.id}/members`, { token: alice.token, body: { email: adam.email, role: 'viewer' } })).json();
      t.clock.advance(1000);
      const second = (await t.request('POST', `/orgs/${org.id}/members`, { token: alice.token, body: { email: adam.email, role: 'admin' } })).json();
      assert.notEqual(second.id, first.id);
      assert.ok(Date.parse(second.expires_at) > Date.parse(first.expires_at));
      const pending = (await t.request('GET', `/orgs/${org.id}/invitations`, { token: alice.token })).json();
      assert.deepEqual(pending.invitations.map((i: { id: string; role: string }) => [i.id, i.role]), [[second.id, 'admin']]);
      assertProblem(await t.request('POST', `/users/me/invitations/${first.id}/accept`, { token: adam.token }), 404, 'org.invitation_not_found');
      assert.equal((await t.request('POST', `/users/me/invitations/${second.id}/accept`, { token: adam.token })).json().role, 'admin');
    });

    test('inviting a member twice is 409 org.member_exists; a bad role is 400', async () => {
      const org = await createOrg('team');
      await addMember(org.id, vera, 'viewer');
      assertProblem(await t.request('POST', `/orgs/${org.id}/members`, { token: alice.token, body: { email: vera.email, role: 'admin' } }), 409, 'org.member_exists');
      assertProblem(await t.request('POST', `/orgs/${org.id}/members`, { token: alice.token, body: { email: alice.email, role: 'viewer' } }), 409, 'org.member_exists');
      assertProblem(await t.request('POST', `/orgs/${org.id}/members`, { token: alice.token, body: { email: vera.email, role: 'king' } }), 400, 'request.invalid');
      assertProblem(await t.request('POST', `/orgs/${org.id}/members`, { token: alice.token, body: { email: 'not an email', role: 'viewer' } }), 400, 'request.invalid');
    });

    test('members are listed a page at a time with the total', async () => {
      const org = await createOrg('big team');
      for (const u of [adam, olga, vera]) {
        t.clock.advance(1000);
        await addMember(org.id, u, 'viewer');
      }
      const all = (await t.request('GET', `/orgs/${org.id}/members`, { token: vera.token })).json();
      assert.equal(all.total, 4);
      assert.deepEqual(all.members.map((m: { email: string }) => m.email), [alice.email, adam.email, olga.email, vera.email]);
      const page = (await t.request('GET', `/orgs/${org.id}/members?offset=2&limit=1`, { token: alice.token })).json();
      assert.deepEqual({ total: page.total, offset: page.offset, limit: page.limit }, { total: 4, offset: 2, limit: 1 });
      assert.deepEqual(page.members.map((m: { email: string }) => m.email), [olga.email]);
      const past = (await t.request('GET', `/orgs/${org.id}/members?offset=10`, { token: alice.token })).json();
      assert.equal(past.total, 4);
      assert.deepEqual(past.members, []);
    });

    test("changing a member's role and removing a member", async () => {
      const org = await createOrg('team');
      await addMember(org.id, olga, 'viewer');
      const changed = await t.request('PATCH', `/orgs/${org.id}/members/${olga.id}`, { token: alice.token, body: { role: 'operator' } });
      assert.equal(changed.statusCode, 200);
      assert.equal(changed.json().role, 'operator');
      assert.equal((await t.request('POST', `/orgs/${org.id}/devices`, { token: olga.token, body: { name: 'now allowed' } })).statusCode, 201);

      assert.equal((await t.request('DELETE', `/orgs/${org.id}/members/${olga.id}`, { token: alice.token })).statusCode, 204);
      assertProblem(await t.request('GET', `/orgs/${org.id}/members/${olga.id}`, { token: alice.token }), 404, 'org.member_not_found');
      assertProblem(await t.request('GET', `/orgs/${org.id}`, { token: olga.token }), 404, 'org.not_found');
      for (const id of [olga.id, randomUUID(), 'nope']) {
        assertProblem(await t.request('DELETE', `/orgs/${org.id}/members/${id}`, { token: alice.token }), 404, 'org.member_not_found');
        assertProblem(await t.request('PATCH', `/orgs/${org.id}/members/${id}`, { token: alice.token, body: { role: 'viewer' } }), 404, 'org.member_not_found');
      }
    });

    test('only owners grant, change or remove the owner role', async () => {
      const org = await createOrg('hierarchy');
      await addMember(org.id, adam, 'admin');
      await addMember(org.id, vera, 'viewer');
      const asAdam = (method: 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown) => t.request(method, `/orgs/${org.id}/members${path}`, { token: adam.token, body });

      assertProblem(await asAdam('POST', '', { email: otto.email, role: 'owner' }), 403, 'auth.forbidden');
      assertProblem(await asAdam('PATCH', `/${vera.id}`, { role: 'owner' }), 403, 'auth.forbidden');
      assertProblem(await asAdam('PATCH', `/${alice.id}`, { role: 'viewer' }), 403, 'auth.forbidden');
      assertProblem(await asAdam('DELETE', `/${alice.id}`), 403, 'auth.forbidden');
      assert.equal((await t.request('GET', `/orgs/${org.id}/members/${alice.id}`, { token: adam.token })).json().role, 'owner');

      // an admin manages the other roles
      await addMemberAs(t, org.id, adam.token, otto, 'operator');
      assert.equal((await asAdam('PATCH', `/${vera.id}`, { role: 'admin' })).statusCode, 200);
      assert.equal((await asAdam('DELETE', `/${otto.id}`)).statusCode, 204);

      // an owner may grant the owner role
      const promoted = await t.request('PATCH', `/orgs/${org.id}/members/${adam.id}`, { token: alice.token, body: { role: 'owner' } });
      assert.equal(promoted.statusCode, 200);
      assert.equal(promoted.json().role, 'owner');
    });

    test('the last owner can be neither demoted nor removed', async () => {
      const org = await createOrg('solo');
      assertProblem(await t.request('PATCH', `/orgs/${org.id}/members/${alice.id}`, { token: alice.token, body: { role: 'admin' } }), 409, 'org.last_owner');
      assertProblem(await t.request('DELETE', `/orgs/${org.id}/members/${alice.id}`, { token: alice.token }), 409, 'org.last_owner');
      // keeping the owner role is no demotion
      assert.equal((await t.request('PATCH', `/orgs/${org.id}/members/${alice.id}`, { token: alice.token, body: { role: 'owner' } })).statusCode, 200);

      // with a second owner, either may step down
      await addMember(org.id, otto, 'owner');
      const stepDown = await t.request('PATCH', `/orgs/${org.id}/members/${alice.id}`, { token: alice.token, body: { role: 'admin' } });
      assert.equal(stepDown.statusCode, 200);
      assert.equal(stepDown.json().role, 'admin');
      assertProblem(await t.request('DELETE', `/orgs/${org.id}/members/${otto.id}`, { token: otto.token }), 409, 'org.last_owner');
    });
  });

  test('every role gets exactly the actions of the permission table', async () => {
    const org = await createOrg('roles');
    const users: Record<Exclude<OrgRole, 'owner'>, TestUser> = { admin: adam, operator: olga, viewer: vera };
    for (const [role, u] of Object.entries(users)) await addMember(org.id, u, role as OrgRole);
    const byRole = { owner: alice, ...users };
    const base = `/orgs/${org.id}`;
    const device = (await t.request('POST', `${base}/devices`, { token: alice.token, body: { name: 'probe' } })).json();
    const channel = (await t.request('POST', `${base}/channels`, { token: alice.token, body: { name: 'probe' } })).json();
    const group = (await t.request('POST', `${base}/groups`, { token: alice.token, body: { name: 'probe' } })).json();
    const connection = { device_ids: [device.id], channel_ids: [channel.id], types: ['publish'] };

    // one harmless request per action, and what it answers when the role allows it
    const probes: Partial<Record<Action, { method: 'GET' | 'POST' | 'PATCH' | 'DELETE'; url: string; body?: unknown; allowed: number }>> = {
      'org:read': { method: 'GET', url: base, allowed: 200 },
      'org:update': { method: 'PATCH', url: base, body: { name: 'roles' }, allowed: 200 },
      'members:read': { method: 'GET', url: `${base}/members`, allowed: 200 },
      'members:write': { method: 'PATCH', url: `${base}/members/${vera.id}`, body: { role: 'viewer' }, allowed: 200 },
      'devices:read': { method: 'GET', url: `${base}/devices/${device.id}`, allowed: 200 },
      'devices:write': { method: 'POST', url: `${base}/devices/${device.id}/enable`, allowed: 200 },
      'channels:read': { method: 'GET', url: `${base}/channels`, allowed: 200 },
      'channels:write': { method: 'PATCH', url: `${base}/channels/${channel.id}`, body: {}, allowed: 200 },
      'groups:read': { method: 'GET', url: `${base}/groups/${group.id}/devices`, allowed: 200 },
      'groups:write': { method: 'PATCH', url: `${base}/groups/${group.id}`, body: {}, allowed: 200 },
      'connections:read': { method: 'GET', url: `${base}/devices/${device.id}/channels`, allowed: 200 },
      'connections:write': { method: 'DELETE', url: `${base}/connections`, body: connection, allowed: 204 },
      'dead-letters:read': { method: 'GET', url: `${base}/dead-letters`, allowed: 200 },
      'dead-letters:write': { method: 'DELETE', url: `${base}/dead-letters`, allowed: 200 },
      'identity:read': { method: 'GET', url: `${base}/registrations`, allowed: 200 },
      'identity:write': { method: 'POST', url: `${base}/enrolment-tokens`, body: {}, allowed: 201 },
      'events:read': { method: 'GET', url: `${base}/events`, allowed: 200 },
      'twins:read': { method: 'GET', url: `${base}/devices/${device.id}/twin`, allowed: 200 },
      'twins:write': { method: 'PATCH', url: `${base}/devices/${device.id}/twin`, body: { tags: { probe: true } }, allowed: 200 },
      'org:delete': { method: 'DELETE', url: base, allowed: 204 }, // last: the owner's probe deletes the organization
    };
    const withoutRoute = new Set<Action>(['messages:read', 'messages:publish']); // served by the messaging adapters, not this API
    assert.deepEqual(actions.filter((a) => !probes[a] && !withoutRoute.has(a)), [], 'every action has a probe');

    const wrong: string[] = [];
    for (const [action, probe] of Object.entries(probes) as [Action, NonNullable<(typeof probes)[Action]>][]) {
      for (const role of [...orgRoles].reverse()) {
        const res = await t.request(probe.method, probe.url, { token: byRole[role].token, body: probe.body });
        const expected = roleAllows(role, action) ? probe.allowed : 403;
        if (res.statusCode !== expected || (expected === 403 && res.json().code !== 'auth.forbidden')) wrong.push(`${role} ${action}: ${res.statusCode} ${res.body}`);
      }
    }
    assert.deepEqual(wrong, []);
  });
});

test('an invitation expires after 7 days', async () => {
  const t = await startTestPlatform();
  try {
    const owner = await t.user('inviter@example.com');
    const org = (await t.request('POST', '/orgs', { token: owner.token, body: { name: 'later' } })).json();
    const id = (await t.request('POST', `/orgs/${org.id}/members`, { token: owner.token, body: { email: 'slow@example.com', role: 'viewer' } })).json().id as string;
    t.clock.advance(7 * 86_400_000 + 1000);
    // the account is created after the invitation: it still finds it, until it expires
    const slow = await t.user('slow@example.com');
    assert.equal((await t.request('GET', '/users/me/invitations', { token: slow.token })).json().total, 0);
    assertProblem(await t.request('POST', `/users/me/invitations/${id}/accept`, { token: slow.token }), 404, 'org.invitation_not_found');
    assertProblem(await t.request('GET', `/orgs/${org.id}`, { token: slow.token }), 404, 'org.not_found');
  } finally {
    await t.close();
  }
});

test('an invitation sent before the account exists is found by the new account', async () => {
  const t = await startTestPlatform();
  try {
    const owner = await t.user('early@example.com');
    const org = (await t.request('POST', '/orgs', { token: owner.token, body: { name: 'early' } })).json();
    await t.request('POST', `/orgs/${org.id}/members`, { token: owner.token, body: { email: 'Newcomer@example.com', role: 'viewer' } });
    const newcomer = await t.user('newcomer@example.com');
    const mine = (await t.request('GET', '/users/me/invitations', { token: newcomer.token })).json();
    assert.equal(mine.total, 1);
    assert.equal((await t.request('POST', `/users/me/invitations/${mine.invitations[0].id}/accept`, { token: newcomer.token })).statusCode, 200);
    assert.equal((await t.request('GET', `/orgs/${org.id}`, { token: newcomer.token })).json().role, 'viewer');
  } finally {
    await t.close();
  }
});
