// test-database: once (the subject is not the database: it runs in the first pass only)
// The console's Events page against a real `fleetwire start` and Debian's Chromium: the stored
// events of an organization, a change made elsewhere arriving live at the top, the type and device
// filters (kept in the address), and the live stream filtered the same way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { call, cliEnv, dataFolder, login, startCli, type Server } from './helpers/cli.js';
import { buildConsole, checkPage, consoleTestsAvailable as available, launchChromium, openPage, signIn, closedAfterTests } from './helpers/console.js';

const admin = { email: 'admin@example.org', password: 'console-events-password' };

let server: Server | undefined;
let browser: Browser | undefined;
closedAfterTests(() => ({ browser, server }));

test('the Events page lists what happened, shows new events live, and filters by type and device', { skip: available === true ? false : available, timeout: 120_000 }, async () => {
  buildConsole();
  server = await startCli(cliEnv(dataFolder(), { FLEETWIRE_ADMIN_EMAIL: admin.email, FLEETWIRE_ADMIN_PASSWORD: admin.password }));
  const origin = server.api;
  const { token } = await login(origin, admin.email, admin.password);
  const org = (await call<{ id: string }>(origin, 'POST', '/orgs', { token, body: { name: 'Event horizon' } })).body.id;
  const pump = (await call<{ id: string }>(origin, 'POST', `/orgs/${org}/devices`, { token, body: { name: 'pump' } })).body.id;
  await call(origin, 'POST', `/orgs/${org}/channels`, { token, body: { name: 'telemetry' } });

  browser = await launchChromium();
  const { page, elsewhere, errors } = await openPage(browser, origin);
  await page.goto(`${origin}/organizations/${org}/devices`);
  await signIn(page, admin);
  await page.getByRole('navigation', { name: 'Organization' }).getByRole('link', { name: 'Events', exact: true }).click();
  await page.getByRole('heading', { name: 'Events', exact: true }).waitFor();
  const types = page.getByRole('table', { name: 'Events' }).getByTestId('fleet-event');
  await page.getByTestId('live-state').filter({ hasText: 'Live' }).waitFor();
  assert.deepEqual(await types.allTextContents(), ['channel.created', 'device.created', 'org.created']);

  // a change made elsewhere (here: the API) arrives at the top while the page is open
  await call(origin, 'POST', `/orgs/${org}/devices/${pump}/disable`, { token });
  await types.first().filter({ hasText: 'device.disabled' }).waitFor();
  await checkPage(page, 'events');

  // only the pump's device events: the address keeps the view, and the live stream is filtered too
  await page.getByLabel('Type').fill('device.*');
  await page.getByLabel('Device id').fill(pump);
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/type=device/);
  await page.getByTestId('live-state').filter({ hasText: 'Live' }).waitFor();
  assert.deepEqual(await types.allTextContents(), ['device.disabled', 'device.created']);
  await call(origin, 'POST', `/orgs/${org}/channels`, { token, body: { name: 'not shown' } });
  await call(origin, 'POST', `/orgs/${org}/devices/${pump}/enable`, { token });
  await types.first().filter({ hasText: 'device.enabled' }).waitFor();
  assert.deepEqual(await types.allTextContents(), ['device.enabled', 'device.disabled', 'device.created']);

  // a filter the platform refuses says why
  await page.getByLabel('Type').fill('no.such');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.getByText('not an event type').waitFor();

  assert.deepEqual(elsewhere, []);
  assert.deepEqual(errors.filter((e) => !e.includes('400')), []);
});
