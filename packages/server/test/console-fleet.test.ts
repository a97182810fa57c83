// test-database: once (the subject is not the database: it runs in the SQLite pass only)
// The console's fleet pages end to end, as an operator uses them, against a real `fleetwire start`
// and Debian's Chromium: the devices list filtered by tag, metadata and status (the view in the
// address), a bulk disable and a bulk delete of selected rows checked over the API, a CSV import
// whose bad row is shown before anything is sent, then the secrets downloaded as CSV, devices
// named with a prefix, a group made and filled from the list, a device connected to a channel from its page and proved with the real mosquitto_pub;
// a viewer sees no checkboxes or actions, and a phone-sized screen does not scroll sideways.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { Browser } from 'playwright-core';
import { announcedPort, call, cliEnv, dataFolder, login, startCli, type Server } from './helpers/cli.js';
import { buildConsole, checkPage, consoleTestsAvailable as available, launchChromium, mosquittoPub, openPage, signIn, closedAfterTests } from './helpers/console.js';

const admin = { email: 'admin@example.org', password: 'console-fleet-password' };
const viewer = { email: 'viewer@example.org', password: 'console-fleet-viewer' };

let server: Server | undefined;
let browser: Browser | undefined;
closedAfterTests(() => ({ browser, server }));

interface DeviceList {
  total: number;
  devices: { id: string; name: string; status: string; tags: string[]; metadata: Record<string, unknown> }[];
}

test('an operator filters, acts in bulk, imports a CSV file, groups and connects devices in the console; a viewer sees no actions', { skip: available === true ? false : available, timeout: 120_000 }, async () => {
  buildConsole();
  server = await startCli(cliEnv(dataFolder(), { FLEETWIRE_ADMIN_EMAIL: admin.email, FLEETWIRE_ADMIN_PASSWORD: admin.password, FLEETWIRE_SIGNUP: 'true' }));
  const mqttPort = await announcedPort(server, 'MQTT listening');
  const origin = server.api;
  const { token } = await login(origin, admin.email, admin.password);
  const org = (await call<{ id: string }>(origin, 'POST', '/orgs', { token, body: { name: 'Pumping station' } })).body.id;
  const channel = (await call<{ id: string }>(origin, 'POST', `/orgs/${org}/channels`, { token, body: { name: 'levels', content_type: 'application/json' } })).body.id;
  const fleet = [
    ...Array.from({ length: 6 }, (_, k) => ({ name: `pump-${k + 1}`, tags: ['pump'], metadata: { floor: k < 3 ? 1 : 2 } })),
    { name: 'valve-1', tags: ['valve'], metadata: { floor: 1 } },
    { name: 'valve-2', tags: ['valve'], metadata: { floor: 2 }, status: 'disabled' },
  ];
  const made = await call<{ devices: { id: string; name: string; secret: string }[] }>(origin, 'POST', `/orgs/${org}/devices/bulk`, { token, body: { devices: fleet } });
  assert.equal(made.status, 201);
  const devices = (query: string) => call<DeviceList>(origin, 'GET', `/orgs/${org}/devices?limit=100&${query}`, { token }).then((r) => r.body);

  browser = await launchChromium();
  const { page, elsewhere, errors } = await openPage(browser, origin);
  await page.goto(`${origin}/organizations/${org}/devices`);
  await signIn(page, admin);
  const table = page.getByRole('table', { name: 'Devices' });
  await table.getByRole('link', { name: 'pump-1' }).waitFor();

  // filters: a tag and a metadata pair (typed as key=value), all in the address
  await page.getByLabel('Tag').fill('pump');
  await page.getByLabel('Metadata').fill('floor=2');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.getByTestId('page-info').filter({ hasText: '1–3 of 3' }).waitFor();
  assert.deepEqual(new URLSearchParams(new URL(page.url()).search).get('metadata'), 'floor=2');
  await page.reload();
  await page.getByTestId('page-info').filter({ hasText: '1–3 of 3' }).waitFor();
  assert.equal(await page.getByLabel('Tag').inputValue(), 'pump', 'a reload keeps the view');

  // a bulk action over the selected rows: disable the three, then the platform says so
  await page.getByRole('checkbox', { name: 'Select all on this page' }).check();
  await page.getByTestId('selected-count').filter({ hasText: '3 selected' }).waitFor();
  await page.getByRole('button', { name: 'Disable', exact: true }).click();
  await page.getByTestId('outcome').filter({ hasText: 'Disable: 3 done.' }).waitFor();
  assert.deepEqual((await devices('status=disabled&sort=name')).devices.map((d) => d.name), ['pump-4', 'pump-5', 'pump-6', 'valve-2']);
  await page.getByRole('button', { name: 'Show all devices' }).click();
  await page.getByLabel('Status').selectOption('disabled');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.getByTestId('page-info').filter({ hasText: '1–4 of 4' }).waitFor();
  await checkPage(page, 'devices-filtered');

  // a group, then two devices selected on the list added to it
  await page.getByRole('link', { name: 'Groups', exact: true }).click();
  await page.getByRole('textbox', { name: 'New group' }).fill('north-wing');
  await page.getByRole('button', { name: 'Create group' }).click();
  await page.getByRole('link', { name: 'north-wing' }).waitFor();
  await checkPage(page, 'groups');
  await page.getByRole('link', { name: 'Devices', exact: true }).click();
  await table.getByRole('link', { name: 'valve-1' }).waitFor();
  await page.getByRole('checkbox', { name: 'Select valve-1' }).check();
  await page.getByRole('checkbox', { name: 'Select valve-2' }).check();
  await page.getByRole('button', { name: 'Add to group…' }).click();
  await page.getByRole('form', { name: 'Add to group' }).getByLabel('Group').selectOption({ label: 'north-wing' });
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  await page.getByTestId('outcome').filter({ hasText: 'Add to group: 2 done.' }).waitFor();
  await page.getByRole('link', { name: 'Groups', exact: true }).click();
  await page.getByRole('link', { name: 'north-wing' }).click();
  const members = page.getByRole('table', { name: 'Devices in the group' });
  await members.getByRole('link', { name: 'valve-2' }).waitFor();
  // one more by name, from the group's page
  await page.getByLabel('Add devices named').fill('pump-1');
  await page.getByRole('button', { name: 'Find' }).click();
  await page.getByRole('button', { name: 'Add pump-1' }).click();
  await members.getByRole('link', { name: 'pump-1' }).waitFor();
  await checkPage(page, 'group');
  const group = /\/groups\/([^/?]+)/.exec(page.url())![1]!;
  assert.deepEqual((await devices(`group_id=${group}&sort=name`)).devices.map((d) => d.name), ['pump-1', 'valve-1', 'valve-2']);

  // the CSV import: the bad row shown in the preview, nothing sent until it is right
  await page.getByRole('link', { name: 'Devices', exact: true }).click();
  await page.getByRole('link', { name: 'Create many or import a CSV file' }).click();
  await page.getByLabel('A CSV file').check();
  const upload = (text: string) => page.getByLabel('CSV file', { exact: true }).setInputFiles({ name: 'devices.csv', mimeType: 'text/csv', buffer: Buffer.from(text) });
  await upload('name,tags,metadata\ntank-1,tank;north,"{""litres"":500}"\ntank-2,tank,{litres}\n');
  await page.getByRole('button', { name: 'Preview' }).click();
  const preview = page.getByRole('table', { name: 'Devices to create' });
  await preview.getByRole('row').filter({ hasText: 'tank-2' }).filter({ hasText: 'metadata is not JSON' }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Create 2 devices' }).isDisabled(), true, 'a bad row stops the import');
  await checkPage(page, 'devices-import-preview');
  assert.equal((await devices('tag=tank')).total, 0, 'nothing was sent');
  await upload('name,tags,metadata\ntank-1,tank;north,"{""litres"":500}"\ntank-2,tank,"{""litres"":750}"\n');
  await page.getByRole('button', { name: 'Preview' }).click();
  await page.getByRole('button', { name: 'Create 2 devices' }).click();
  const download = page.waitForEvent('download');
  await page.getByRole('link', { name: 'Download id, name, secret (CSV)' }).click();
  const secrets = (await readFile(await (await download).path())).toString('utf8').trim().split('\r\n');
  assert.equal(secrets[0], 'id,name,secret');
  const tanks = await devices('tag=tank&sort=name');
  assert.deepEqual(tanks.devices.map((d) => [d.name, d.tags, d.metadata]), [
    ['tank-1', ['tank', 'north'], { litres: 500 }],
    ['tank-2', ['tank'], { litres: 750 }],
  ]);
  const tank1 = secrets.map((line) => line.split(',')).find((f) => f[1] === 'tank-1')!;
  assert.equal(tank1[0], tanks.devices[0]!.id);

  // N devices named with a prefix, then deleted together from the list (after a confirmation)
  await page.getByRole('button', { name: 'Done' }).click();
  await page.getByLabel('A name prefix and a count').check();
  await page.getByRole('textbox', { name: 'Name prefix' }).fill('tap-');
  await page.getByLabel('How many').fill('3');
  await page.getByRole('button', { name: 'Preview' }).click();
  await preview.getByRole('row').filter({ hasText: 'tap-3' }).waitFor();
  await page.getByRole('button', { name: 'Create 3 devices' }).click();
  await page.getByTestId('secrets').waitFor();
  assert.deepEqual((await devices('name=tap-&sort=name')).devices.map((d) => d.name), ['tap-1', 'tap-2', 'tap-3']);
  await page.goto(`${origin}/organizations/${org}/devices?name=tap-`);
  await page.getByTestId('page-info').filter({ hasText: '1–3 of 3' }).waitFor();
  await page.getByRole('checkbox', { name: 'Select all on this page' }).check();
  page.once('dialog', (dialog) => void dialog.accept());
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  await page.getByTestId('outcome').filter({ hasText: 'Delete: 3 done.' }).waitFor();
  assert.equal((await devices('name=tap-')).total, 0);

  // tank-1 connected to the channel from its page, then its secret from the CSV file publishes
  await page.goto(`${origin}/organizations/${org}/devices/${tank1[0]}`);
  await page.getByRole('heading', { name: 'tank-1' }).waitFor();
  const connect = page.getByRole('form', { name: 'Connect to a channel' });
  await connect.getByLabel('Channel').selectOption({ label: 'levels' });
  await connect.getByLabel('subscribe').uncheck();
  await connect.getByRole('button', { name: 'Connect' }).click();
  await page.getByRole('table', { name: 'Connected channels' }).getByRole('row').filter({ hasText: 'levels' }).filter({ hasText: 'publish' }).waitFor();
  const publish = () => spawnSync(mosquittoPub!, ['-h', '127.0.0.1', '-p', String(mqttPort), '-i', 'console-fleet', '-u', tank1[0]!, '-P', tank1[2]!, '-q', '1', '-t', `channels/${channel}/messages/level`, '-m', '{"litres":420}'], { encoding: 'utf8', timeout: 15_000 });
  assert.equal(publish().status, 0, publish().stderr);
  // tags and metadata edited on the page (PATCH)
  await page.getByLabel('Tags (separated by commas)').fill('tank, south');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
  assert.deepEqual((await devices('tag=south')).devices.map((d) => d.name), ['tank-1']);
  await checkPage(page, 'device-connections');
  await page.getByRole('button', { name: 'Disconnect from levels' }).click();
  await page.getByText('Not connected to any channel').waitFor();
  assert.notEqual(publish().status, 0, 'disconnected, the device may not publish');

  // a phone-sized screen: the devices page fits its width
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${origin}/organizations/${org}/devices`);
  await table.getByRole('link', { name: 'pump-1' }).waitFor();
  await page.getByRole('checkbox', { name: 'Select pump-1' }).check();
  assert.ok((await page.evaluate('document.documentElement.scrollWidth')) as number <= 390, 'no sideways scrolling');
  await checkPage(page, 'phone-devices-bulk');

  // a viewer: no checkboxes, no bulk actions, no import, no group controls
  assert.equal((await call(origin, 'POST', '/auth/signup', { body: viewer })).status, 201);
  assert.equal((await call(origin, 'POST', `/orgs/${org}/members`, { token, body: { email: viewer.email, role: 'viewer' } })).status, 201);
  const seen = await openPage(browser, origin);
  await seen.page.goto(`${origin}/organizations/${org}/devices`);
  await signIn(seen.page, viewer);
  await seen.page.getByRole('table', { name: 'Devices' }).getByRole('link', { name: 'pump-1' }).waitFor();
  assert.equal(await seen.page.getByRole('checkbox').count(), 0);
  assert.equal(await seen.page.getByRole('link', { name: 'Create many or import a CSV file' }).count(), 0);
  await seen.page.getByRole('link', { name: 'Groups', exact: true }).click();
  await seen.page.getByRole('link', { name: 'north-wing' }).click();
  await seen.page.getByRole('table', { name: 'Devices in the group' }).getByRole('link', { name: 'valve-1' }).waitFor();
  for (const name of ['Rename', 'Delete group', 'Remove valve-1 from the group', 'Find']) assert.equal(await seen.page.getByRole('button', { name }).count(), 0, name);
  await seen.page.getByRole('link', { name: 'valve-1' }).click();
  await seen.page.getByRole('heading', { name: 'Connections' }).waitFor();
  assert.equal(await seen.page.getByRole('form', { name: 'Connect to a channel' }).count(), 0);
  assert.equal(await seen.page.getByRole('button', { name: 'Save' }).count(), 0);
  await seen.page.getByRole('link', { name: 'north-wing' }).waitFor(); // its groups

  assert.deepEqual([...elsewhere, ...seen.elsewhere], [], 'everything comes from the platform');
  assert.deepEqual([...errors, ...seen.errors], []);
});
