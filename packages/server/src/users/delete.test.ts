import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPlatform, type TestPlatform } from '../../test/helpers/platform.js';
import { addMember } from '../../test/helpers/members.js';

let t: TestPlatform;
before(async () => {
  t = await startTestPlatform();
});
after(() => t.close());

test('a user who is the only owner of an organization cannot be deleted until another owner exists', async () => {
  const admin = await t.user('root@example.com', 'admin');
  const alice = await t.user('alice@example.com');
  const bob = await t.user('bob@example.com');
  const org = (await t.request('POST', '/orgs', { token: alice.token, body: { name: 'Alice Co' } })).json();

  const refused = await t.request('DELETE', `/users/${alice.id}`, { token: admin.token });
  assert.equal(refused.statusCode, 409);
  assert.equal(refused.json().code, 'org.last_owner');
  assert.deepEqual(refused.json().org_ids, [org.id]);

  await addMember(t, org.id, alice.token, bob, 'owner');
  assert.equal((await t.request('DELETE', `/users/${alice.id}`, { token: admin.token })).statusCode, 204);
  assert.equal((await t.request('GET', `/users/${alice.id}`, { token: admin.token })).statusCode, 404);
  const members = (await t.request('GET', `/orgs/${org.id}/members`, { token: bob.token })).json();
  assert.deepEqual(members.members.map((m: { email: string }) => m.email), ['bob@example.com']);
  assert.equal((await t.request('DELETE', `/users/${alice.id}`, { token: admin.token })).statusCode, 404);
});
