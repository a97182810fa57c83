// test-database: once (the subject is not the database: it runs in the SQLite pass only)
// The web console end to end, as an operator uses it: the console is built, a real `fleetwire
// start` process serves it, and Debian's Chromium (headless, through playwright-core) drives it.
// The admin the platform created signs in, creates an organization, a channel and a device (its
// secret shown once), watches a message published with the real mosquitto_pub arrive live and
// rotates the secret (the old one refused); its session ended elsewhere sends it to sign-in and
// back; then it signs out, and a viewer signs in and finds no edit controls. Each page is checked
// with axe-core and its screenshot written to docs/images/ (shown in docs/console.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { Browser } from 'playwright-core';
import { announcedPort, call, cliEnv, dataFolder, login, startCli, type Server } from './helpers/cli.js';
import { buildConsole, checkPage, consoleTestsAvailable as available, launchChromium, mosquittoPub, openPage, signIn, closedAfterTests } from './helpers/console.js';

const admin = { email: 'admin@example.org', password: 'console-admin-password' };
const viewer = { email: 'viewer@example.org', password: 'console-viewer-password' };

let server: Server | undefined;
let browser: Browser | undefined;
closedAfterTests(() => ({ browser, server }));

test('an admin runs a fleet from the console and sees a message arrive live; a viewer sees no edit controls', { skip: available === true ? false : available, timeout: 180_000 }, async () => {
  buildConsole();
  server = await startCli(cliEnv(dataFolder(), { FLEETWIRE_ADMIN_EMAIL: admin.email, FLEETWIRE_ADMIN_PASSWORD: admin.password, FLEETWIRE_SIGNUP: 'true', FLEETWIRE_SESSION_CHECK_CACHE: '0' }));
  const mqttPort = await announcedPort(server, 'MQTT listening');
  const origin = server.api;

  browser = await launchChromium();
  const { context, page, elsewhere, errors } = await openPage(browser, origin);
  const cookieSentTo = new Set<string>();
  page.on('requestfinished', (req) => {
    void req.allHeaders().then((h) => {
      if (h.cookie?.includes('fleetwire_refresh')) cookieSentTo.add(new URL(req.url()).pathname);
    });
  });

  // a page that needs a session goes to sign-in, and back after it
  const res = await page.goto(`${origin}/organizations`);
  assert.equal(res?.status(), 200);
  assert.match(String(res?.headers()['content-security-policy']), /script-src 'self'/);
  await page.waitForURL(/\/sign-in\?next=%2Forganizations$/);
  await checkPage(page, 'sign-in');
  await page.getByLabel('Password').fill('wrong-password');
  await page.getByLabel('Email').fill(admin.email);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'Wrong email or password' }).waitFor();
  await signIn(page, admin);
  await page.getByRole('heading', { name: 'Organizations' }).waitFor();
  assert.equal(new URL(page.url()).pathname, '/organizations');
  assert.equal(await page.evaluate('document.cookie'), '', 'the refresh cookie is HttpOnly: no script reads it');

  // an organization, made the current one
  await page.getByRole('textbox', { name: 'New organization' }).fill('Greenhouse');
  await page.getByRole('button', { name: 'Create organization' }).click();
  await page.getByRole('heading', { name: 'Greenhouse' }).waitFor();
  const org = /\/organizations\/([^/]+)\/devices/.exec(page.url())?.[1];
  assert.ok(org, page.url());
  const menu = page.getByRole('combobox', { name: 'Organization' });
  await menu.locator(`option[value="${org}"]`).waitFor({ state: 'attached' });
  assert.equal(await menu.inputValue(), org, 'the new organization is the current one in the menu');

  // a channel, with its content type
  await page.getByRole('link', { name: 'Channels' }).click();
  await page.getByRole('textbox', { name: 'New channel' }).fill('telemetry');
  await page.getByLabel('Content type').selectOption('application/senml+json');
  await page.getByRole('button', { name: 'Create channel' }).click();
  await page.getByRole('link', { name: 'telemetry' }).waitFor();
  await checkPage(page, 'channels');

  // a device: its secret shown once, with a copy button
  await page.getByRole('link', { name: 'Devices' }).click();
  await page.getByRole('textbox', { name: 'New device' }).fill('sensor-1');
  await page.getByRole('button', { name: 'Create device' }).click();
  const secret = (await page.getByTestId('secret-value').textContent())!;
  assert.ok(secret.length >= 32, secret);
  await page.getByRole('button', { name: 'Copy' }).click();
  await page.getByRole('button', { name: 'Copied' }).waitFor();
  assert.equal(await page.evaluate('navigator.clipboard.readText()'), secret);
  await page.getByRole('link', { name: 'sensor-1' }).waitFor();
  await checkPage(page, 'devices');
  await page.getByRole('button', { name: 'Done' }).click();
  assert.equal(await page.getByTestId('secret').count(), 0);
  assert.ok(!(await page.content()).includes(secret), 'the secret is gone from the page');

  // the paged list's filter is the platform's
  await page.getByLabel('Name', { exact: true }).fill('nothing-like-this');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.getByText('No device matches the filter.').waitFor();
  await page.getByLabel('Name', { exact: true }).fill('sensor');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.getByTestId('page-info').filter({ hasText: '1–1 of 1' }).waitFor();

  // paged and sorted by the platform: 24 more devices (made over the API), 20 to a page
  let { token } = await login(origin, admin.email, admin.password);
  const probes = Array.from({ length: 24 }, (_, k) => ({ name: `probe-${String(k).padStart(2, '0')}` }));
  assert.equal((await call(origin, 'POST', `/orgs/${org}/devices/bulk`, { token, body: { devices: probes } })).status, 201);
  const firstRow = () => page.getByRole('table', { name: 'Devices' }).getByRole('row').nth(1);
  await page.getByLabel('Name', { exact: true }).fill('');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.getByTestId('page-info').filter({ hasText: '1–20 of 25' }).waitFor();
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByTestId('page-info').filter({ hasText: '21–25 of 25' }).waitFor();
  await page.getByLabel('Sort by').selectOption('name');
  await page.getByTestId('page-info').filter({ hasText: '1–20 of 25' }).waitFor();
  await firstRow().filter({ hasText: 'probe-00' }).waitFor();
  assert.match(new URL(page.url()).search, /sort=name/, 'the view is in the address');
  await page.getByRole('button', { name: /sort descending/ }).click();
  await firstRow().filter({ hasText: 'sensor-1' }).waitFor();

  // the device page: disable and enable
  await page.getByRole('link', { name: 'sensor-1' }).click();
  await page.getByTestId('device-status').filter({ hasText: 'enabled' }).waitFor();
  await page.getByRole('button', { name: 'Disable' }).click();
  await page.getByTestId('device-status').filter({ hasText: 'disabled' }).waitFor();
  await page.getByRole('button', { name: 'Enable' }).click();
  await page.getByTestId('device-status').filter({ hasText: 'enabled' }).waitFor();
  const device = /\/devices\/([^/?]+)/.exec(page.url())![1]!;
  await checkPage(page, 'device');

  // connected over the API (the console's connections page comes later)
  const channels = await call<{ channels: { id: string }[] }>(origin, 'GET', `/orgs/${org}/channels`, { token });
  const channel = channels.body.channels[0]!.id;
  assert.equal((await call(origin, 'POST', `/orgs/${org}/connections`, { token, body: { device_ids: [device], channel_ids: [channel], types: ['publish'] } })).status, 204);

  // a reload forgets the access token: the console renews it from the cookie, no sign-in
  await page.goto(`${origin}/organizations/${org}/channels/${channel}`);
  await page.getByTestId('live-state').filter({ hasText: 'live' }).waitFor({ timeout: 15_000 });
  assert.equal(new URL(page.url()).pathname, `/organizations/${org}/channels/${channel}`);

  const pub = spawnSync(mosquittoPub!, ['-h', '127.0.0.1', '-p', String(mqttPort), '-i', 'console-e2e', '-u', device, '-P', secret, '-q', '1', '-t', `channels/${channel}/messages/greenhouse/bench`, '-m', '[{"n":"temp","u":"Cel","v":21.5}]'], { encoding: 'utf8', timeout: 15_000 });
  // (the same command as docs/console.md shows)
  assert.equal(pub.status, 0, pub.stderr);
  const row = page.getByRole('table', { name: 'Live messages' }).getByRole('row').filter({ hasText: '"v":21.5' });
  await row.waitFor({ timeout: 15_000 });
  assert.match(await row.innerText(), /greenhouse\/bench/);
  assert.match(await row.innerText(), /mqtt/);
  assert.equal(await page.title(), 'telemetry · Greenhouse · Fleetwire');
  await checkPage(page, 'channel-live');

  // rotating the secret: the new one shown once, the old one refused from then on
  await page.goto(`${origin}/organizations/${org}/devices/${device}`);
  page.once('dialog', (dialog) => void dialog.accept());
  await page.getByRole('button', { name: 'Rotate secret' }).click();
  const rotated = (await page.getByTestId('secret-value').textContent())!;
  assert.ok(rotated.length >= 32 && rotated !== secret, rotated);
  const publish = (password: string) => spawnSync(mosquittoPub!, ['-h', '127.0.0.1', '-p', String(mqttPort), '-i', 'console-e2e', '-u', device, '-P', password, '-q', '1', '-t', `channels/${channel}/messages/lab`, '-m', '[{"n":"temp","v":1}]'], { encoding: 'utf8', timeout: 15_000 });
  assert.notEqual(publish(secret).status, 0, 'the old secret is refused');
  assert.equal(publish(rotated).status, 0, 'the new one works');

  // a phone-sized screen: the page fits its width
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${origin}/organizations/${org}/devices`);
  await page.getByRole('link', { name: 'sensor-1' }).waitFor();
  assert.ok((await page.evaluate('document.documentElement.scrollWidth')) as number <= 390, 'no sideways scrolling');
  await checkPage(page, 'phone-devices');
  await page.setViewportSize({ width: 1280, height: 800 });

  // the session ends elsewhere (sign out everywhere): the next page the console loads goes to
  // sign-in, and back to that page after it
  await page.goto(`${origin}/organizations/${org}/devices`);
  await page.getByRole('link', { name: 'sensor-1' }).waitFor();
  assert.equal((await call(origin, 'DELETE', '/users/me/sessions', { token })).status, 204);
  await page.getByRole('link', { name: 'Channels' }).click();
  await page.waitForURL(/\/sign-in\?next=/);
  assert.equal(new URL(page.url()).searchParams.get('next'), `/organizations/${org}/channels`);
  await signIn(page, admin);
  await page.getByRole('link', { name: 'telemetry' }).waitFor();
  assert.equal(new URL(page.url()).pathname, `/organizations/${org}/channels`);
  ({ token } = await login(origin, admin.email, admin.password));

  // signing out ends the session: the cookie is cleared and a page needs sign-in again
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/sign-in$/);
  assert.deepEqual((await context.cookies()).filter((c) => c.name === 'fleetwire_refresh'), []);
  await page.goto(`${origin}/organizations/${org}/devices`);
  await page.waitForURL(/\/sign-in\?next=/);

  // a viewer of the organization (a platform admin adds an existing account at once)
  assert.equal((await call(origin, 'POST', '/auth/signup', { body: viewer })).status, 201);
  assert.equal((await call(origin, 'POST', `/orgs/${org}/members`, { token, body: { email: viewer.email, role: 'viewer' } })).status, 201);

  // by keyboard this time: Enter in the password field signs in
  await page.getByLabel('Email').fill(viewer.email);
  await page.getByLabel('Password').fill(viewer.password);
  await page.getByLabel('Password').press('Enter');
  // back to the page the sign-in interrupted
  await page.getByRole('link', { name: 'sensor-1' }).waitFor();
  assert.equal(new URL(page.url()).pathname, `/organizations/${org}/devices`);
  await page.getByText('your role: viewer').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Create device' }).count(), 0);
  await checkPage(page, 'viewer-devices');
  await page.getByRole('link', { name: 'sensor-1' }).click();
  await page.getByTestId('device-status').waitFor();
  for (const name of ['Disable', 'Enable', 'Rotate secret']) assert.equal(await page.getByRole('button', { name }).count(), 0, name);
  await page.getByRole('link', { name: 'Channels' }).click();
  await page.getByRole('link', { name: 'telemetry' }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Create channel' }).count(), 0);

  assert.deepEqual(elsewhere, [], 'everything comes from the platform');
  assert.deepEqual([...cookieSentTo].filter((p) => !p.startsWith('/auth/')), [], 'the refresh cookie goes to the auth routes only');
  assert.ok(cookieSentTo.has('/auth/refresh'), 'the reload renewed the session with the cookie');
  assert.deepEqual(errors, []);
});
