// test-database: once (the subject is not the database: it runs in the SQLite pass only)
// Presence in the console end to end, against a real `fleetwire start` and Debian's Chromium, with
// a real MQTT.js device on the platform's MQTT listener: the device shows online in the list and on
// its page (its connection listed), the presence filter keeps to it and stays in the address; the
// fleet overview counts the fleet by presence, enrolment and group; an operator sets the reporting
// interval; after the socket is lost the device shows offline with the reason in words, is listed
// as gone offline in the last hour, and its uptime strip shows both states; a viewer sees all of it
// and cannot set the interval; nothing scrolls sideways on a phone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt, { type MqttClient } from 'mqtt';
import type { Browser, Page } from 'playwright-core';
import { announcedPort, call, cliEnv, dataFolder, login, startCli, type Server } from './helpers/cli.js';
import { accessibilityViolations, buildConsole, checkPage, consoleTestsAvailable as available, launchChromium, openPage, signIn, closedAfterTests } from './helpers/console.js';
import { eventually } from './helpers/eventually.js';

const admin = { email: 'admin@example.org', password: 'console-presence-password' };
const viewer = { email: 'viewer@example.org', password: 'console-presence-viewer' };

let server: Server | undefined;
let browser: Browser | undefined;
let client: MqttClient | undefined;
closedAfterTests(() => ({ browser, server }));

interface Presence {
  state: string;
  reason: string | null;
  interval: number | null;
}

/** The text of the presence cell of a device's row in the device list. */
const presenceCell = (page: Page, name: string) => page.getByRole('table', { name: 'Devices' }).getByRole('row').filter({ has: page.getByRole('link', { name, exact: true }) }).getByTestId('presence');

const noSidewaysScroll = async (page: Page, what: string) => assert.ok(((await page.evaluate('document.documentElement.scrollWidth')) as number) <= 390, `${what}: no sideways scrolling`);

test('presence in the console: online and offline with the reason in the list and on the device page, the filter, the fleet overview, the uptime strip; a viewer cannot set the interval', { skip: available === true ? false : available, timeout: 150_000 }, async () => {
  buildConsole();
  server = await startCli(cliEnv(dataFolder(), { FLEETWIRE_ADMIN_EMAIL: admin.email, FLEETWIRE_ADMIN_PASSWORD: admin.password, FLEETWIRE_SIGNUP: 'true' }));
  const mqttPort = await announcedPort(server, 'MQTT listening');
  const origin = server.api;
  const { token } = await login(origin, admin.email, admin.password);
  const org = (await call<{ id: string }>(origin, 'POST', `/orgs`, { token, body: { name: 'Cold store' } })).body.id;
  const made = await call<{ devices: { id: string; name: string; secret: string }[] }>(origin, 'POST', `/orgs/${org}/devices/bulk`, { token, body: { devices: ['freezer-1', 'freezer-2', 'door-1'].map((name) => ({ name })) } });
  assert.equal(made.status, 201);
  const [freezer1, freezer2] = made.body.devices as [(typeof made.body.devices)[number], (typeof made.body.devices)[number]];
  const group = (await call<{ id: string }>(origin, 'POST', `/orgs/${org}/groups`, { token, body: { name: 'freezers' } })).body.id;
  assert.equal((await call(origin, 'POST', `/orgs/${org}/groups/${group}/devices`, { token, body: { device_ids: [freezer1.id, freezer2.id] } })).status, 204);
  const presenceOf = async (id: string) => (await call<Presence>(origin, 'GET', `/orgs/${org}/devices/${id}/presence`, { token })).body;

  // freezer-1 connects over MQTT (MQTT.js, the platform's own listener)
  client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { protocolVersion: 5, clientId: 'freezer-1-main', username: freezer1.id, password: freezer1.secret, reconnectPeriod: 0 });
  await eventually(async () => assert.equal((await presenceOf(freezer1.id)).state, 'online'), 10_000);

  browser = await launchChromium();
  const { page, elsewhere, errors } = await openPage(browser, origin);
  await page.goto(`${origin}/organizations/${org}/devices`);
  await signIn(page, admin);
  await presenceCell(page, 'freezer-1').filter({ hasText: /^online for \d+ s$/ }).waitFor();
  assert.equal(await presenceCell(page, 'freezer-2').textContent(), 'offline never seen', 'a device never heard from');

  // the presence filter: kept in the address, only the online device listed
  await page.getByRole('search', { name: 'Filter devices' }).getByLabel('Presence').selectOption('online');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL((u) => u.searchParams.get('presence') === 'online');
  await eventually(async () => assert.deepEqual(await page.getByRole('table', { name: 'Devices' }).getByRole('link').allTextContents(), ['freezer-1']), 10_000);
  await checkPage(page, 'devices-presence');
  await page.reload();
  assert.equal(await page.getByRole('search', { name: 'Filter devices' }).getByLabel('Presence').inputValue(), 'online', 'the filter survives a reload');
  await page.getByRole('search', { name: 'Filter devices' }).getByLabel('Presence').selectOption('offline');
  await page.getByRole('button', { name: 'Filter' }).click();
  await eventually(async () => assert.deepEqual((await page.getByRole('table', { name: 'Devices' }).getByRole('link').allTextContents()).sort(), ['door-1', 'freezer-2']), 10_000);

  // the fleet overview: counts by presence, enrolment and group
  await page.getByRole('navigation', { name: 'Organization' }).getByRole('link', { name: 'Overview' }).click();
  const count = (id: string) => page.getByTestId(id).locator('strong');
  await page.getByTestId('count-online').waitFor();
  assert.deepEqual([await count('count-online').textContent(), await count('count-idle').textContent(), await count('count-offline').textContent()], ['1', '0', '2']);
  assert.equal(await count('enrolment-none').textContent(), '3', 'none of them enrolled');
  assert.deepEqual(await page.getByRole('table', { name: 'Devices by group' }).getByRole('row').nth(1).getByRole('cell').allTextContents(), ['freezers', '2', '1', '0', '1']);
  await page.getByText('No device went offline in the last hour').waitFor();

  // the device page: online, its connection, and the operator gives it a reporting interval
  await page.goto(`${origin}/organizations/${org}/devices/${freezer1.id}`);
  await page.getByTestId('device-presence-now').filter({ hasText: 'online' }).waitFor();
  await page.getByRole('navigation', { name: 'Device views' }).getByRole('link', { name: 'Presence' }).click();
  assert.equal(new URL(page.url()).searchParams.get('view'), 'presence');
  await page.getByTestId('device-presence').filter({ hasText: /^online for / }).waitFor();
  await page.getByRole('table', { name: 'Live connections' }).getByRole('cell', { name: 'freezer-1-main' }).waitFor();
  const interval = page.getByRole('form', { name: 'Reporting interval' });
  await interval.getByLabel('Reporting interval (seconds)').fill('0');
  await interval.getByRole('button', { name: 'Set interval' }).click();
  await interval.getByRole('alert').filter({ hasText: 'a whole number of seconds, 1 to 604800' }).waitFor();
  await interval.getByLabel('Reporting interval (seconds)').fill('300');
  await interval.getByRole('button', { name: 'Set interval' }).click();
  await page.getByTestId('presence-interval').filter({ hasText: '5 min (300 s)' }).waitFor();
  assert.equal((await presenceOf(freezer1.id)).interval, 300);
  await page.getByTestId('uptime').first().locator('[data-state="online"]').waitFor();

  // the socket is lost: offline, the reason in words, without a reload
  client.stream.destroy();
  await eventually(async () => assert.equal((await presenceOf(freezer1.id)).reason, 'connection_lost'), 10_000);
  await page.getByTestId('device-presence').filter({ hasText: /^offline for \d+ s, connection lost$/ }).waitFor({ timeout: 10_000 });
  assert.equal(await page.getByTestId('presence-reason').textContent(), 'connection lost');
  await page.getByText('No connection open.').waitFor();
  // the uptime strips (24 hours, 7 days) show both states, the percentage, and the same in words
  const strips = page.getByTestId('uptime');
  assert.equal(await strips.count(), 2);
  const day = strips.first();
  await day.locator('.segment.offline').nth(1).waitFor();
  assert.deepEqual(await day.locator('.segment').evaluateAll((s) => s.map((e) => e.getAttribute('data-state'))), ['offline', 'online', 'offline']);
  assert.match((await day.getByRole('img').getAttribute('aria-label'))!, /^Presence over the last 24 hours: offline from .+; online from .+; offline from .+$/);
  assert.match((await day.getByTestId('uptime-percent').textContent())!, /^(< |> )?\d+(\.\d)? %$/);
  await day.getByText('The changes in words').click();
  assert.equal(await day.getByTestId('uptime-words').getByRole('listitem').count(), 3);
  await checkPage(page, 'device-presence');

  // the list shows it offline with the reason; the overview lists it as gone offline in the last hour
  await page.goto(`${origin}/organizations/${org}/devices`);
  await presenceCell(page, 'freezer-1').filter({ hasText: /^offline for \d+ s, connection lost$/ }).waitFor();
  await page.getByRole('navigation', { name: 'Organization' }).getByRole('link', { name: 'Overview' }).click();
  const gone = page.getByRole('table', { name: 'Gone offline in the last hour' });
  await gone.waitFor();
  assert.deepEqual(await gone.getByRole('row').nth(1).getByRole('cell').nth(2).textContent(), 'connection lost');
  assert.deepEqual(await gone.getByRole('link').allTextContents(), ['freezer-1']);
  assert.equal(await count('count-offline').textContent(), '3');
  await checkPage(page, 'fleet-overview');
  await gone.getByRole('link', { name: 'freezer-1' }).click();
  await page.getByRole('heading', { name: 'freezer-1' }).waitFor();
  await page.getByTestId('device-presence').filter({ hasText: 'connection lost' }).waitFor();

  // a viewer sees presence, the overview and the strip, and no way to set the interval
  assert.equal((await call(origin, 'POST', '/auth/signup', { body: viewer })).status, 201);
  assert.equal((await call(origin, 'POST', `/orgs/${org}/members`, { token, body: { email: viewer.email, role: 'viewer' } })).status, 201);
  const seen = await openPage(browser, origin, { width: 390, height: 844 });
  await seen.page.goto(`${origin}/organizations/${org}/devices/${freezer1.id}?view=presence`);
  await signIn(seen.page, viewer);
  await seen.page.getByTestId('device-presence').filter({ hasText: 'connection lost' }).waitFor();
  await seen.page.getByTestId('uptime').first().locator('[data-state="online"]').waitFor();
  assert.equal(await seen.page.getByRole('form', { name: 'Reporting interval' }).count(), 0, 'no interval form');
  assert.equal(await seen.page.getByRole('textbox').count(), 0, 'nothing to type into');
  const viewerToken = (await login(origin, viewer.email, viewer.password)).token;
  assert.equal((await call(origin, 'PUT', `/orgs/${org}/devices/${freezer1.id}/presence`, { token: viewerToken, body: { interval: 60 } })).status, 403, 'the platform refuses it too');
  assert.deepEqual(await accessibilityViolations(seen.page), [], 'viewer device presence: accessibility (axe-core)');
  await noSidewaysScroll(seen.page, 'device presence on a phone');
  await seen.page.goto(`${origin}/organizations/${org}/overview`);
  await seen.page.getByRole('table', { name: 'Gone offline in the last hour' }).getByRole('link', { name: 'freezer-1' }).waitFor();
  await noSidewaysScroll(seen.page, 'fleet overview on a phone');
  await seen.page.goto(`${origin}/organizations/${org}/devices`);
  await presenceCell(seen.page, 'door-1').waitFor();
  await noSidewaysScroll(seen.page, 'device list on a phone');

  assert.deepEqual([...elsewhere, ...seen.elsewhere], [], 'everything comes from the platform');
  assert.deepEqual([...errors, ...seen.errors], []);
});
