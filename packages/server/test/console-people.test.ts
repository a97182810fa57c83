// test-database: once (the subject is not the database: it runs in the SQLite pass only)
// The console's people pages end to end, against a real `fleetwire start` and Debian's Chromium: an
// owner invites a second user (made over the API by the platform admin) from the members page, by
// keyboard; the platform's refusal to remove the last owner is shown; that user signs in, sees two
// invitations above their organizations, declines one and accepts the other (the organization
// joins their list); the owner makes them a viewer, and on the members page they see the list
// without a single control that would change it. A longer list of members is paged. The platform
// admin finds, creates and deletes users on the users page; a plain user has no link to it and is
// told they may not see it. Each page is checked with axe-core and its screenshot written to
// docs/images/console-{members,invitations,users}.png; a phone-sized screen does not scroll the
// members page sideways.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { call, cliEnv, dataFolder, login, startCli, type Server } from './helpers/cli.js';
import { buildConsole, checkPage, consoleTestsAvailable as available, launchChromium, openPage, signIn, closedAfterTests } from './helpers/console.js';

const admin = { email: 'admin@example.org', password: 'console-people-admin' };
const owner = { email: 'olive@example.org', password: 'console-people-owner' };
const invitee = { email: 'ivan@example.org', password: 'console-people-invitee' };

let server: Server | undefined;
let browser: Browser | undefined;
closedAfterTests(() => ({ browser, server }));

interface Members {
  members: { email: string; role: string }[];
}

/** Accepts the next window.confirm() the page shows, and says what it asked. */
function acceptNextConfirm(page: Page): Promise<string> {
  return new Promise((resolve) => {
    page.once('dialog', (dialog) => {
      resolve(dialog.message());
      void dialog.accept();
    });
  });
}

test('an owner invites a user who accepts, then makes them a viewer who sees no edit controls; only a platform admin sees the users', { skip: available === true ? false : available, timeout: 120_000 }, async () => {
  buildConsole();
  server = await startCli(cliEnv(dataFolder(), { FLEETWIRE_ADMIN_EMAIL: admin.email, FLEETWIRE_ADMIN_PASSWORD: admin.password }));
  const origin = server.api;
  const { token: adminToken } = await login(origin, admin.email, admin.password);
  for (const u of [owner, invitee]) assert.equal((await call(origin, 'POST', '/users', { token: adminToken, body: { ...u, name: u.email.split('@')[0] } })).status, 201);
  const { token: ownerToken } = await login(origin, owner.email, owner.password);
  const org = (await call<{ id: string }>(origin, 'POST', '/orgs', { token: ownerToken, body: { name: 'Orchard' } })).body.id;
  const members = () => call<Members>(origin, 'GET', `/orgs/${org}/members`, { token: ownerToken }).then((r) => r.body.members.map((m) => `${m.email} ${m.role}`).sort());

  browser = await launchChromium();
  const owners = await openPage(browser, origin);
  const page = owners.page;
  await page.goto(`${origin}/organizations/${org}/devices`);
  await signIn(page, owner);
  await page.getByRole('link', { name: 'Members', exact: true }).click();
  const table = page.getByRole('table', { name: 'Members' });
  await table.getByRole('cell', { name: owner.email, exact: true }).waitFor();

  // the invitation, by keyboard: the email, Tab to the role, Enter sends the form
  await page.getByLabel('Email to invite').focus();
  await page.keyboard.type(invitee.email);
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate("document.activeElement?.getAttribute('name')"), 'role');
  await page.getByRole('combobox', { name: 'Role', exact: true }).selectOption('operator');
  await page.getByLabel('Email to invite').press('Enter');
  await page.getByTestId('note').filter({ hasText: `${invitee.email} is invited as operator` }).waitFor();
  const pending = page.getByRole('table', { name: 'Pending invitations' });
  await pending.getByRole('cell', { name: invitee.email, exact: true }).waitFor();

  // the last owner cannot go: the platform's refusal is on the page, and nothing changed
  const asked = acceptNextConfirm(page);
  await page.getByRole('button', { name: `Remove ${owner.email}` }).click();
  assert.match(await asked, /Remove olive@example\.org from Orchard\?/);
  await page.getByRole('alert').filter({ hasText: 'An organization must keep at least one owner' }).waitFor();
  assert.deepEqual(await members(), [`${owner.email} owner`]);

  // a second invitation, made over the API, for the invited user to decline
  const vineyard = (await call<{ id: string }>(origin, 'POST', '/orgs', { token: ownerToken, body: { name: 'Vineyard' } })).body.id;
  assert.equal((await call(origin, 'POST', `/orgs/${vineyard}/members`, { token: ownerToken, body: { email: invitee.email, role: 'admin' } })).status, 202);

  // the invited user signs in and finds the invitations above their (empty) list of organizations
  const invitees = await openPage(browser, origin);
  const other = invitees.page;
  await other.goto(`${origin}/organizations`);
  await signIn(other, invitee);
  const received = other.getByRole('table', { name: 'Your invitations' });
  await received.getByRole('cell', { name: 'Orchard', exact: true }).waitFor();
  await other.getByText('You are in no organization yet').waitFor();
  await received.getByRole('cell', { name: 'Vineyard', exact: true }).waitFor();
  await checkPage(other, 'invitations');
  await other.getByRole('button', { name: 'Decline the invitation into Vineyard' }).click();
  await other.getByRole('status').filter({ hasText: 'You declined the invitation into Vineyard.' }).waitFor();
  await received.getByRole('cell', { name: 'Vineyard', exact: true }).waitFor({ state: 'detached' });
  assert.equal((await call<{ total: number }>(origin, 'GET', `/orgs/${vineyard}/invitations`, { token: ownerToken })).body.total, 0);
  await other.getByRole('button', { name: 'Accept the invitation into Orchard' }).click();
  await other.getByRole('status').filter({ hasText: 'You are now a member of Orchard.' }).waitFor();
  await other.getByRole('link', { name: 'Orchard' }).waitFor();
  await other.getByRole('banner').getByRole('option', { name: 'Orchard' }).waitFor({ state: 'attached' });
  assert.equal(await received.count(), 0, 'the answered invitation is gone');
  assert.deepEqual(await members(), [`${invitee.email} operator`, `${owner.email} owner`]);

  // the owner sees the new member (and no pending invitation), then makes them a viewer
  await page.reload();
  await table.getByRole('cell', { name: invitee.email, exact: true }).waitFor();
  await page.getByText('No invitation is waiting for an answer.').waitFor();
  await page.getByRole('combobox', { name: `Role of ${invitee.email}` }).selectOption('viewer');
  await page.getByTestId('note').filter({ hasText: `${invitee.email} is now viewer.` }).waitFor();
  assert.deepEqual(await members(), [`${invitee.email} viewer`, `${owner.email} owner`]);
  // a pending invitation as well, for the picture
  await page.getByLabel('Email to invite').fill('pat@example.org');
  await page.getByRole('button', { name: 'Invite' }).click();
  await pending.getByRole('cell', { name: 'pat@example.org', exact: true }).waitFor();
  await checkPage(page, 'members');
  // and revoked
  await page.getByRole('button', { name: 'Revoke the invitation of pat@example.org' }).click();
  await page.getByText('No invitation is waiting for an answer.').waitFor();

  // the viewer sees the members and not one control that would change them
  await other.getByRole('link', { name: 'Orchard' }).click();
  await other.getByRole('link', { name: 'Members', exact: true }).click();
  await other.getByRole('table', { name: 'Members' }).getByRole('cell', { name: owner.email, exact: true }).waitFor();
  await other.getByText('your role: viewer').waitFor();
  const main = other.getByRole('main');
  assert.equal(await main.getByRole('combobox').count(), 0, 'no role select');
  assert.equal(await main.getByRole('textbox').count(), 0, 'no invitation form');
  assert.equal(await main.getByRole('button').count(), 0, 'no remove, invite or revoke button');

  // a plain user has no link to the users page, and the page tells them they may not see it
  assert.equal(await other.getByRole('banner').getByRole('link', { name: 'Users' }).count(), 0);
  await other.goto(`${origin}/admin/users`);
  await other.getByRole('alert').filter({ hasText: 'Only platform admins may see' }).waitFor();
  assert.equal(await other.getByRole('table', { name: 'Users' }).count(), 0);

  // the platform admin reaches the users from the top bar, creates one, finds it and deletes it
  const admins = await openPage(browser, origin);
  const adminPage = admins.page;
  await adminPage.goto(`${origin}/organizations`);
  await signIn(adminPage, admin);
  await adminPage.getByRole('heading', { name: 'Organizations' }).waitFor();
  await adminPage.getByRole('banner').getByRole('link', { name: 'Users' }).click();
  const users = adminPage.getByRole('table', { name: 'Users' });
  await users.getByRole('cell', { name: invitee.email, exact: true }).waitFor();
  const form = adminPage.getByRole('form', { name: 'New user' });
  await form.getByLabel('Email', { exact: true }).fill('carol@example.org');
  await form.getByLabel('Password', { exact: true }).fill('carol-password');
  await form.getByRole('button', { name: 'Create user' }).click();
  await users.getByRole('cell', { name: 'carol@example.org', exact: true }).waitFor();
  assert.equal((await login(origin, 'carol@example.org', 'carol-password')).status, 200, 'the new user signs in');
  await checkPage(adminPage, 'users');
  await adminPage.getByLabel('Find by email').fill('carol@example.org');
  await adminPage.getByRole('button', { name: 'Find', exact: true }).click();
  await users.getByRole('cell', { name: owner.email, exact: true }).waitFor({ state: 'detached' });
  const deleted = acceptNextConfirm(adminPage);
  await adminPage.getByRole('button', { name: 'Delete carol@example.org' }).click();
  assert.match(await deleted, /Delete the account carol@example\.org\?/);
  await adminPage.getByText('No user has the email carol@example.org.').waitFor();
  assert.equal((await login(origin, 'carol@example.org', 'carol-password')).status, 401);

  // twenty more members (a platform admin adds existing users at once): the list is paged
  for (let k = 1; k <= 20; k++) {
    const email = `member-${String(k).padStart(2, '0')}@example.org`;
    assert.equal((await call(origin, 'POST', '/users', { token: adminToken, body: { email, password: 'member-password' } })).status, 201);
    assert.equal((await call(origin, 'POST', `/orgs/${org}/members`, { token: adminToken, body: { email, role: 'operator' } })).status, 201);
  }
  await page.reload();
  await page.getByTestId('page-info').filter({ hasText: '1–20 of 22' }).waitFor();
  assert.equal(await table.getByRole('row').count(), 21, 'a heading and twenty members');
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByTestId('page-info').filter({ hasText: '21–22 of 22' }).waitFor();
  await table.getByRole('row').nth(3).waitFor({ state: 'detached' });
  assert.equal(await table.getByRole('row').count(), 3, 'a heading and the last two members');

  // a phone-sized screen: the members page (its pager too) does not scroll sideways
  const phone = await openPage(browser, origin, { width: 390, height: 844 });
  await phone.page.goto(`${origin}/organizations/${org}/members`);
  await signIn(phone.page, owner);
  await phone.page.getByRole('combobox', { name: `Role of ${invitee.email}` }).waitFor();
  const overflow = (await phone.page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth')) as number;
  assert.ok(overflow <= 0, `the members page is ${overflow} px wider than the phone`);

  // the browser logs the refused removal of the last owner; nothing else went wrong anywhere
  assert.deepEqual(owners.errors.map((e) => /status of 409 .*\/members\//.test(e)), [true]);
  owners.errors.length = 0;
  for (const watched of [owners, invitees, admins, phone]) {
    assert.deepEqual(watched.errors, []);
    assert.deepEqual(watched.elsewhere, []);
  }
});
