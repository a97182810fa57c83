// test-database: once (the subject is not the database: it runs in the SQLite pass only)
// The console's "Connect a device" page end to end, against a real `fleetwire start` and Debian's
// Chromium: the commands name the real device, the chosen channel and the listener ports; the secret
// rotated from the page is filled in; the copied curl and mosquitto_pub commands, run as they are,
// publish, and the page shows the first message as it arrives. A device without channels is told so; a viewer sees no rotate button;
// a phone-sized screen does not scroll sideways.
// The certificate path, against a platform with MQTT over TLS: the page makes the registration and
// a one-time token, its openssl and curl commands (copied and run as they are) enrol a real device,
// and the page says enrolled without a reload; a refused attempt for the serial appears as it
// happens; the copied mosquitto_pub publishes with the certificate; after a renewal over MQTT
// (mosquitto_rr on enrolment/renew) and a connection with the new certificate, the certificate
// pages show what renewed what, and the events list reads the renewal and the supersession.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { announcedPort, call, cliEnv, dataFolder, login, startCli, type Server } from './helpers/cli.js';
import { accessibilityViolations, buildConsole, checkPage, consoleTestsAvailable as available, launchChromium, openPage, signIn, closedAfterTests } from './helpers/console.js';
import { eventually } from './helpers/eventually.js';
import { certificateAuthority, deviceRequest } from './helpers/tls.js';

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

interface Certificate {
  serial: string;
  status: string;
  replaces: string | null;
  revocation_reason: string | null;
}

/** Runs a command the page copied, as a user pastes it into a shell in `cwd`. */
async function runCopied(page: Page, button: string, cwd: string): Promise<string> {
  await page.getByRole('button', { name: `Copy: ${button}` }).click();
  await page.getByRole('button', { name: `Copied: ${button}` }).waitFor();
  const text = (await page.evaluate('navigator.clipboard.readText()')) as string;
  const run = spawnSync('sh', ['-c', text], { cwd, encoding: 'utf8', timeout: 15_000 });
  assert.equal(run.status, 0, `${text}\n${run.stderr}`);
  return text;
}

test('an operator enrols a device with a certificate from the console: registration and token made, the copied openssl and curl enrol it, the page says enrolled; a renewal shows on the certificate pages', { skip: available === true ? false : available, timeout: 150_000 }, async () => {
  buildConsole();
  const listener = certificateAuthority([]);
  const device = mkdtempSync(join(tmpdir(), 'fleetwire-console-enrol-'));
  const tls = await startCli(cliEnv(dataFolder(), { FLEETWIRE_ADMIN_EMAIL: admin.email, FLEETWIRE_ADMIN_PASSWORD: admin.password, FLEETWIRE_MQTT_TLS_CERT: listener.serverCert, FLEETWIRE_MQTT_TLS_KEY: listener.serverKey, FLEETWIRE_MQTTS_PORT: '0' }));
  try {
    const mqttsPort = await announcedPort(tls, 'MQTT over TLS listening');
    const origin = tls.api;
    const { token } = await login(origin, admin.email, admin.password);
    const org = (await call<{ id: string }>(origin, 'POST', '/orgs', { token, body: { name: 'Water works' } })).body.id;
    const channel = (await call<{ id: string }>(origin, 'POST', `/orgs/${org}/channels`, { token, body: { name: 'telemetry', content_type: 'application/senml+json' } })).body.id;
    await call(origin, 'POST', `/orgs/${org}/channels`, { token, body: { name: 'alarms' } });
    const certificates = () => call<{ certificates: Certificate[] }>(origin, 'GET', `/orgs/${org}/certificates?limit=100`, { token }).then((r) => r.body.certificates);

    browser ??= await launchChromium();
    const { page, elsewhere, errors } = await openPage(browser, origin);
    await page.goto(`${origin}/organizations/${org}/devices`);
    await signIn(page, admin);
    // the organization's tabs fit one line at 1280 px: every link at the same height
    const tabs = page.getByRole('navigation', { name: 'Organization' }).getByRole('link');
    await tabs.filter({ hasText: 'Dead letters' }).waitFor();
    const tops = await tabs.evaluateAll((links) => links.map((a) => Math.round(a.getBoundingClientRect().top)));
    assert.equal(new Set(tops).size, 1, `the tabs are on one line: ${tops.join(', ')}`);
    await page.getByRole('link', { name: 'Enrol a device with a certificate' }).click();
    await page.getByRole('heading', { name: 'Connect a device' }).waitFor();

    // the serial, its model and a channel; the page makes the registration and a token for that serial only
    const form = page.getByRole('form', { name: 'Enrol a device with a certificate' });
    await form.getByLabel('Serial').fill('SN-77');
    await form.getByLabel('Model (optional)').fill('meter');
    await form.getByLabel('telemetry').check();
    await form.getByLabel('Token valid for').selectOption({ label: '1 hour' });
    await form.getByRole('button', { name: 'Make the registration and a token' }).click();
    const made = page.getByTestId('enrolment-token');
    const enrolmentToken = (await made.getByTestId('token-value').textContent())!;
    assert.match(enrolmentToken, /^fwe_/);
    const registrations = (await call<{ registrations: { id: string; serial: string; state: string; channel_ids: string[] }[] }>(origin, 'GET', `/orgs/${org}/registrations?serial=SN-77`, { token })).body.registrations;
    assert.deepEqual(registrations.map((r) => [r.serial, r.state, r.channel_ids]), [['SN-77', 'pending', [channel]]]);
    const tokens = (await call<{ tokens: { serial_pattern: string | null; used_at: string | null; expires_at: string }[] }>(origin, 'GET', `/orgs/${org}/enrolment-tokens`, { token })).body.tokens;
    assert.deepEqual(tokens.map((t) => [t.serial_pattern, t.used_at]), [['SN-77', null]]);
    const lifetime = Date.parse(tokens[0]!.expires_at) - Date.now();
    assert.ok(lifetime > 59 * 60_000 && lifetime <= 3600_000, `the token lasts an hour (${lifetime} ms left)`);
    const expiry = await page.evaluate((iso) => new Date(iso).toLocaleString(), tokens[0]!.expires_at);
    assert.equal(await made.getByTestId('token-expiry').textContent(), expiry, 'the token is shown with its expiry');
    const commands = await page.getByTestId('command').allTextContents();
    const sdk = commands.find((c) => c.startsWith('fleetwire-device enrol')) ?? assert.fail(commands.join('\n'));
    assert.ok(sdk.includes(`--url '${origin}' \\\n  --token '${enrolmentToken}' --serial 'SN-77' --ca listener-ca.pem\nfleetwire-device run`), sdk);
    await page.getByTestId('waiting').waitFor();

    // the device runs the copied openssl and curl commands: it is enrolled, and the page says so without a reload
    await runCopied(page, 'On the device: its key and certificate request (the serial in the subject)', device);
    await runCopied(page, 'Enrol with the token, then keep the certificate and its issuing CA', device);
    const enrolled = JSON.parse(readFileSync(join(device, 'enrolled.json'), 'utf8')) as { serial: string; device_id: string; channel_ids: string[] };
    assert.deepEqual(enrolled.channel_ids, [channel], JSON.stringify(enrolled));
    const shown = page.getByTestId('enrolled');
    await shown.getByTestId('certificate-serial').filter({ hasText: enrolled.serial }).waitFor({ timeout: 10_000 });
    await shown.getByRole('link', { name: 'meter SN-77' }).waitFor();

    // an impostor with another key and another token for the serial: refused, and the page shows it with its code
    const other = (await call<{ token: string }>(origin, 'POST', `/orgs/${org}/enrolment-tokens`, { token, body: { serial_pattern: 'SN-77' } })).body.token;
    const impostor = deviceRequest('/serialNumber=SN-77/CN=meter');
    rmSync(impostor.dir, { recursive: true, force: true });
    assert.equal((await call(origin, 'POST', '/enrol', { body: { csr: impostor.csr, token: other } })).status, 403); // enrolment.key_mismatch: the registration holds the first key now
    await page.getByTestId('refused-attempts').filter({ hasText: 'enrolment.key_mismatch' }).waitFor({ timeout: 10_000 });

    // the copied mosquitto_pub publishes over TLS with the certificate the enrolment left
    copyFileSync(listener.ca, join(device, 'listener-ca.pem'));
    const pub = await runCopied(page, 'Then publish over MQTT with TLS, the certificate as its credentials', device);
    assert.ok(pub.includes(`-p ${mqttsPort} `) && pub.includes(`channels/${channel}/messages/hello`), pub);
    await eventually(async () => {
      const stored = await call<{ total: number }>(origin, 'GET', `/channels/${channel}/messages?publisher=${enrolled.device_id}&total=true`, { token });
      assert.equal(stored.body.total, 1);
    }, 10_000, 200);
    await checkPage(page, 'connect-certificate');

    // a renewal over MQTT with the certificate (mosquitto_rr), then a connection with the new one: the old is superseded
    const tlsArgs = (cert: string) => ['-h', '127.0.0.1', '-p', String(mqttsPort), '--cafile', 'listener-ca.pem', '--cert', cert, '--key', 'device.key', '-V', 'mqttv5'];
    assert.equal(spawnSync('openssl', ['req', '-new', '-key', 'device.key', '-subj', '/serialNumber=SN-77', '-out', 'renew.csr'], { cwd: device }).status, 0);
    const rr = spawnSync('mosquitto_rr', [...tlsArgs('device.pem'), '-t', 'enrolment/renew', '-e', 'enrolment/accepted', '-W', '10', '-m', JSON.stringify({ csr: readFileSync(join(device, 'renew.csr'), 'utf8') })], { cwd: device, encoding: 'utf8', timeout: 15_000 });
    const renewed = JSON.parse(rr.stdout) as { result: string; serial: string; certificate: string; chain: string[] };
    assert.equal(renewed.result, 'accepted', rr.stdout + rr.stderr);
    writeFileSync(join(device, 'renewed.pem'), renewed.certificate + renewed.chain[0]);
    const again = spawnSync('mosquitto_pub', [...tlsArgs('renewed.pem'), '-t', `channels/${channel}/messages/hello`, '-m', '[{"n":"temp","v":22}]', '-q', '1'], { cwd: device, encoding: 'utf8', timeout: 15_000 });
    assert.equal(again.status, 0, again.stderr);
    await eventually(async () => {
      const old = (await certificates()).find((c) => c.serial === enrolled.serial);
      assert.deepEqual([old?.status, old?.revocation_reason], ['revoked', 'superseded']);
    }, 10_000, 200);

    // the inventory: the renewal names the one it renews, which reads as replaced by a renewal
    await page.getByRole('navigation', { name: 'Device identity' }).getByRole('link', { name: 'Certificates' }).click();
    const inventory = page.getByRole('table', { name: 'Certificates' });
    const renewalRow = inventory.getByRole('row').filter({ has: page.getByRole('link', { name: renewed.serial, exact: true }) });
    await renewalRow.getByTestId('renews').filter({ hasText: `renews ${enrolled.serial}` }).waitFor();
    const oldRow = inventory.getByRole('row').filter({ has: page.getByRole('link', { name: enrolled.serial, exact: true }), hasNot: page.getByTestId('renews') });
    await oldRow.getByTestId('revoked').filter({ hasText: 'replaced by a renewal' }).waitFor();
    await checkPage(page, 'certificates-renewal');
    // the renewal's page: what it replaces, linked; and that one's page names its renewal
    await page.getByRole('link', { name: renewed.serial, exact: true }).click();
    await page.getByTestId('replaces').filter({ hasText: enrolled.serial }).waitFor();
    assert.equal(await page.getByTestId('certificate-status').textContent(), 'active');
    await page.getByTestId('replaces').getByRole('link').click();
    await page.getByTestId('renewed-by').filter({ hasText: renewed.serial }).waitFor();
    await page.getByTestId('revoked').filter({ hasText: 'replaced by a renewal' }).waitFor();
    assert.deepEqual(await accessibilityViolations(page), [], 'certificate page: accessibility (axe-core)');

    // the events list reads the renewal and the supersession
    await page.getByRole('navigation', { name: 'Device identity' }).getByRole('link', { name: 'Events' }).click();
    const events = page.getByRole('table', { name: 'Identity events' }).getByTestId('event');
    await events.filter({ hasText: 'Renewed certificate in use, the one it replaces revoked' }).waitFor();
    await page.getByRole('search', { name: 'Filter identity events' }).getByLabel('Event').selectOption({ label: 'Certificate renewal' });
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByTestId('page-info').filter({ hasText: '1–1 of 1' }).waitFor();
    assert.deepEqual(await events.allTextContents(), ['Certificate renewal']);
    assert.equal(new URL(page.url()).searchParams.get('action'), 'renew');

    assert.deepEqual(elsewhere, [], 'everything comes from the platform');
    assert.deepEqual(errors, []);
  } finally {
    await tls.stop();
    rmSync(device, { recursive: true, force: true });
    rmSync(listener.dir, { recursive: true, force: true });
  }
});
