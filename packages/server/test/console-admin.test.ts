// test-database: once (the subject is not the database: it runs in the SQLite pass only)
// The console's account page end to end: the admin the platform created signs in, opens its account
// from the top bar, creates a personal access token for one organization with one action (shown
// once), uses it against the API with fetch, and revokes it (the API then refuses it). The page is
// checked with axe-core and its screenshot written to docs/images/console-account.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { call, cliEnv, dataFolder, login, startCli, type Server } from './helpers/cli.js';
import { buildConsole, checkPage, consoleTestsAvailable as available, launchChromium, openPage, signIn, closedAfterTests } from './helpers/console.js';

const admin = { email: 'admin@example.org', password: 'console-admin-password' };

let server: Server | undefined;
let browser: Browser | undefined;
closedAfterTests(() => ({ browser, server }));

test('a personal access token made on the account page works against the API until it is revoked', { skip: available === true ? false : available, timeout: 60_000 }, async () => {
  buildConsole();
  server = await startCli(cliEnv(dataFolder(), { FLEETWIRE_ADMIN_EMAIL: admin.email, FLEETWIRE_ADMIN_PASSWORD: admin.password }));
  const origin = server.api;
  const { token: adminToken } = await login(origin, admin.email, admin.password);
  const org = await call<{ id: string }>(origin, 'POST', '/orgs', { token: adminToken, body: { name: 'Orchard' } });
  assert.equal(org.status, 201);

  browser = await launchChromium();
  const { page, elsewhere, errors } = await openPage(browser, origin);
  await page.goto(`${origin}/sign-in`);
  await signIn(page, admin);
  await page.getByRole('heading', { name: 'Organizations' }).waitFor();

  // the account page is reached from the top bar, by keyboard
  await page.getByRole('link', { name: admin.email }).focus();
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Your account' }).waitFor();

  await page.getByLabel('Token name').fill('backup script');
  await page.getByLabel('Token organization').selectOption(org.body.id);
  await page.getByRole('checkbox', { name: 'devices:read' }).check();
  await page.getByRole('button', { name: 'Create token' }).click();
  const token = (await page.getByTestId('token-value').textContent())!;
  assert.ok(token.length >= 32, token);
  await page.getByRole('cell', { name: 'backup script', exact: true }).waitFor();
  await checkPage(page, 'account');

  const devices = `${origin}/orgs/${org.body.id}/devices`;
  assert.equal((await fetch(devices, { headers: { authorization: `Bearer ${token}` } })).status, 200);
  // an action the token was not given is refused
  const write = await fetch(devices, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'd1' }) });
  assert.equal(write.status, 403);

  await page.getByRole('button', { name: 'Revoke backup script' }).click();
  await page.getByRole('cell', { name: 'revoked', exact: true }).waitFor();
  assert.equal((await fetch(devices, { headers: { authorization: `Bearer ${token}` } })).status, 401);

  assert.deepEqual(errors, []);
  assert.deepEqual(elsewhere, []);
});

test('a password changed on the account page ends the other sessions at once, and the console carries on with the new one', { skip: available === true ? false : available, timeout: 60_000 }, async () => {
  assert.ok(server && browser, 'runs after the test above, on its platform');
  const origin = server.api;
  // another session of the same account, as a second browser or a script holds
  const other = await login(origin, admin.email, admin.password);
  const me = (token: string) => fetch(`${origin}/users/me`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal((await me(other.token)).status, 200);

  const { page, errors } = await openPage(browser, origin);
  await page.goto(`${origin}/sign-in`);
  await signIn(page, admin);
  await page.getByRole('heading', { name: 'Organizations' }).waitFor();
  await page.goto(`${origin}/account`);
  await page.getByRole('heading', { name: 'Your account' }).waitFor();
  const changed = 'console-admin-new-password';
  await page.getByLabel('Current password').fill(admin.password);
  await page.getByLabel('New password').fill(changed);
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.getByText('every other session is ended').waitFor();

  // the other session is over at once; the old password no longer signs in, the new one does
  assert.equal((await me(other.token)).status, 401);
  assert.equal((await fetch(`${origin}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: admin.email, password: admin.password }) })).status, 401);
  assert.equal((await login(origin, admin.email, changed)).status, 200);
  // the console's own session goes on: a reload keeps it signed in on the account page
  await page.reload();
  await page.getByRole('heading', { name: 'Your account' }).waitFor();
  await page.getByRole('cell', { name: 'backup script', exact: true }).waitFor();
  assert.deepEqual(errors, []);
});
