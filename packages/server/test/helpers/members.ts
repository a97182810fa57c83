import assert from 'node:assert/strict';
import type { TestPlatform } from './platform.js';

/**
 * Makes `user` a member of the organization as `inviter` would: an invitation (202) that the user
 * accepts with their own token, or at once (201) when the inviter is a platform admin.
 */
export async function addMember(t: Pick<TestPlatform, 'request'>, orgId: string, inviterToken: string, user: { email: string; token: string }, role: string): Promise<void> {
  const res = await t.request('POST', `/orgs/${orgId}/members`, { token: inviterToken, body: { email: user.email, role } });
  if (res.statusCode === 201) return;
  assert.equal(res.statusCode, 202, res.body);
  const pending = await t.request('GET', '/users/me/invitations', { token: user.token });
  assert.equal(pending.statusCode, 200, pending.body);
  const invitation = (pending.json().invitations as { id: string; org_id: string }[]).find((i) => i.org_id === orgId);
  assert.ok(invitation, `no invitation into ${orgId} for ${user.email}`);
  const accepted = await t.request('POST', `/users/me/invitations/${invitation.id}/accept`, { token: user.token });
  assert.equal(accepted.statusCode, 200, accepted.body);
}
