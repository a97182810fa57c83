// test-database: once (the subject is not the database: it runs in the SQLite pass only)
// The console's "Connect a device" page end to end, against a real `fleetwire start` and Debian's
// Chromium: the commands name the real device, the chosen channel and the listener ports; the secret
// rotated from the page is filled in; the copied curl and mosquitto_pub commands, run as they are,
// publish, and the page shows the first message as it arrives. A device without channels is told so; a viewer sees no rotate button;
// a phone-sized screen does not scroll sideways.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { Browser } from 'playwright-core';
import { announcedPort, call, cliEnv, dataFolder, login, startCli, type Server } from './helpers/cli.js';
import { buildConsole, checkPage, consoleTestsAvailable as available, launchChromium, openPage, signIn, closedAfterTests } from './helpers/console.js';

const admin = { email: 'admin@example.org', password: 'console-connect-password' };
const viewer = { email: 'viewer@example.org', password: 'console-connect-viewer' };

let server: Server | undefined;
let browser: Browser | undefined;
closedAfterTests(() => ({ browser, server }));

test('an operator connects a device from the console: real commands, a rotated secret filled in, the first message shown; a viewer cannot rotate', { skip: available === true ? false : available, timeout: 120_000 }, async () => {
  buildConsole();
  server = await startCli(cliEnv(dataFolder(), { FLEETWIRE_ADMIN_EMAIL: admin.email, FLEETWIRE_ADMIN_PASSWORD: admin.password, FLEETWIRE_SIGNUP: 'true' }));
  const mqttPort = await announcedPort(server, 'MQTT listening');
  const coapPort = await announcedPort(server, 'CoAP listening');
  const origin = server.api;
  const { token } = await login(origin, admin.email, admin.password);
  const org = (await call<{ id: string }>(origin, 'POST', '/orgs', { token, body: { name: 'Greenhouse' } })).body.id;
  const channel = (await call<{ id: string }>(origin, 'POST', `/orgs/${org}/channels`, { token, body: { name: 'climate', content_type: 'application/senml+json' } })).body.id;
  const device = (await call<{ id: string; secret: string }>(origin, 'POST', `/orgs/${org}/devices`, { token, body: { name: 'bench-sensor' } })).body;
  const lonely = (await call<{ id: string }>(origin, 'POST', `/orgs/${org}/devices`, { token, body: { name: 'spare' } })).body.id;
  assert.equal((await call(origin, 'POST', `/orgs/${org}/connections`, { token, body: { device_ids: [device.id], channel_ids: [channel], types: ['publish', 'subscribe'] } })).status, 204);
  const other = (await call<{ id: string }>(origin, 'POST', `/orgs/${org}/channels`, { token, body: { name: 'irrigation' } })).body.id;
  assert.equal((await call(origin, 'POST', `/orgs/${org}/connections`, { token, body: { device_ids: [device.id], channel_ids: [other], types: ['publish'] } })).status, 204);

  browser = await launchChromium();
  const { page, elsewhere, errors } = await openPage(browser, origin);
  await page.goto(`${origin}/organizations/${org}/devices/${device.id}`);
  await signIn(page, admin);
  await page.getByRole('link', { name: 'Connect', exact: true }).click();
  await page.getByRole('heading', { name: 'Connect bench-sensor' }).waitFor();
  // another channel chosen: its id in the commands, and in the address
  await page.getByLabel('Channel').selectOption({ label: 'irrigation (publish)' });
  await page.getByTestId('command').filter({ hasText: `channels/${other}/messages/connect` }).first().waitFor();
  assert.equal(new URL(page.url()).searchParams.get('channel'), other);
  await page.getByLabel('Channel').selectOption({ label: 'climate (publish, subscribe)' });
  assert.equal(await page.getByLabel('Channel').inputValue(), channel);

  // the commands: the real ids and ports, the secret as a variable
  const commands = page.getByTestId('command');
  await commands.first().waitFor();
  const texts = await commands.allTextContents();
  const find = (start: string) => texts.find((t) => t.startsWith(start)) ?? assert.fail(`no ${start} command in ${texts.join('\n')}`);
  assert.match(find('mosquitto_pub'), new RegExp(`-h 127\\.0\\.0\\.1 -p ${mqttPort} -u '${device.id}' -P "\\$DEVICE_SECRET"[\\s\\S]*channels/${channel}/messages/connect`));
  assert.match(find('mosquitto_sub'), new RegExp(`-p ${mqttPort} [\\s\\S]*channels/${channel}/messages/#`));
  assert.ok(find('curl').includes(`'${origin}/channels/${channel}/messages/connect'`), find('curl'));
  assert.ok(find('curl').includes('authorization: Device $DEVICE_SECRET'));
  assert.ok(find('coap-client').includes(`coap://127.0.0.1:${coapPort}/channels/${channel}/messages/connect?auth=$DEVICE_SECRET`), find('coap-client'));
  assert.ok(find('import').includes(`url: 'mqtt://127.0.0.1:${mqttPort}', deviceId: '${device.id}'`), find('import'));
  await page.getByText('Waiting for the first message…').waitFor();

  // rotate from the page: a confirmation first, then the new secret is in the commands
  let confirmation = '';
  page.once('dialog', (dialog) => {
    confirmation = dialog.message();
    void dialog.accept();
  });
  await page.getByRole('button', { name: 'Rotate secret and fill it in' }).click();
  await page.getByTestId('secret-filled').waitFor();
  assert.match(confirmation, /stops working/);
  assert.equal(await page.getByText('$DEVICE_SECRET').count(), 0, 'the variable is replaced everywhere');
  const old = await fetch(`${origin}/channels/${channel}/messages/connect`, { method: 'POST', headers: { authorization: `Device ${device.secret}`, 'content-type': 'application/senml+json' }, body: '[{"n":"temp","v":1}]' });
  assert.equal(old.status, 401, 'the old secret no longer works');

  // the curl command copied with its button (by keyboard), then run as it is
  const copy = page.getByRole('button', { name: 'Copy: Publish with curl (HTTP)' });
  await copy.focus();
  await page.keyboard.press('Enter');
  await page.getByRole('button', { name: 'Copied: Publish with curl (HTTP)' }).waitFor();
  const curl = (await page.evaluate('navigator.clipboard.readText()')) as string;
  assert.doesNotMatch(curl, /\$DEVICE_SECRET/);
  const run = spawnSync('sh', ['-c', curl], { encoding: 'utf8', timeout: 15_000 });
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /^20\d$/m, run.stdout);
  // the copied mosquitto_pub command works as it is too
  await page.getByRole('button', { name: 'Copy: Publish with mosquitto_pub (MQTT)' }).click();
  const pub = spawnSync('sh', ['-c', (await page.evaluate('navigator.clipboard.readText()')) as string], { encoding: 'utf8', timeout: 15_000 });
  assert.equal(pub.status, 0, pub.stderr);
  const first = page.getByTestId('first-message');
  await first.filter({ hasText: '21.5' }).waitFor();
  assert.match(await first.textContent() ?? '', /over HTTP on connect/);
  await checkPage(page, 'connect');

  // a phone-sized screen: the commands wrap rather than scroll sideways
  await page.setViewportSize({ width: 390, height: 844 });
  assert.ok((await page.evaluate('document.documentElement.scrollWidth')) as number <= 390, 'no sideways scrolling');

  // a device without channels: said so, with the way to its page
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto(`${origin}/organizations/${org}/devices/${lonely}/connect`);
  await page.getByTestId('no-channels').waitFor();
  await page.getByRole('link', { name: 'Connect it to a channel on its page' }).click();
  await page.getByRole('heading', { name: 'spare' }).waitFor();

  // a viewer: the commands, no rotate button
  assert.equal((await call(origin, 'POST', '/auth/signup', { body: viewer })).status, 201);
  assert.equal((await call(origin, 'POST', `/orgs/${org}/members`, { token, body: { email: viewer.email, role: 'viewer' } })).status, 201);
  const seen = await openPage(browser, origin);
  await seen.page.goto(`${origin}/organizations/${org}/devices/${device.id}/connect`);
  await signIn(seen.page, viewer);
  await seen.page.getByRole('heading', { name: 'Connect bench-sensor' }).waitFor();
  await seen.page.getByTestId('command').first().waitFor();
  assert.equal(await seen.page.getByRole('button', { name: 'Rotate secret and fill it in' }).count(), 0);

  assert.deepEqual([...elsewhere, ...seen.elsewhere], [], 'everything comes from the platform');
  assert.deepEqual([...errors, ...seen.errors], []);
});
