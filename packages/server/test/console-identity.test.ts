// test-database: once (the subject is not the database: it runs in the first pass only)
// The console's device identity pages end to end, as an operator uses them, against a real
// `fleetwire start` and Debian's Chromium: a device registered from the form (with a channel and a
// group), a 2-row CSV import and a refused one that names the serial already taken, an enrolment
// token made and read from its dialog (and its copy button), then a device enrolled with it over
// HTTP with an openssl CSR, the registration seen enrolled and its certificate listed (marked as
// expiring within 30 days), a refused attempt in the failed-attempts table, a suspend and a resume,
// the certificate revoked with a reason; a viewer sees the pages without any control that changes
// them. Certificates are 20 days long here, so that the inventory's "within 30 days" mark shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { call, cliEnv, dataFolder, login, startCli, type Server } from './helpers/cli.js';
import { accessibilityViolations, buildConsole, checkPage, consoleTestsAvailable as available, launchChromium, openPage, signIn, closedAfterTests } from './helpers/console.js';
import { deviceRequest } from './helpers/tls.js';

const admin = { email: 'admin@example.org', password: 'console-identity-password' };
const viewer = { email: 'viewer@example.org', password: 'console-identity-viewer' };

let server: Server | undefined;
let browser: Browser | undefined;
closedAfterTests(() => ({ browser, server }));

interface Registration {
  id: string;
  serial: string;
  state: string;
  device_id: string | null;
  channel_ids: string[];
  group_ids: string[];
}
interface Certificate {
  serial: string;
  device_id: string;
  status: string;
  revocation_reason: string | null;
}

async function noViolations(page: Page, name: string): Promise<void> {
  assert.deepEqual(await accessibilityViolations(page), [], `${name}: accessibility (axe-core)`);
}

test('an operator registers and imports devices, makes an enrolment token, sees the device enrol, suspends, resumes and revokes in the console; a viewer sees no controls', { skip: available === true ? false : available, timeout: 150_000 }, async () => {
  buildConsole();
  server = await startCli(cliEnv(dataFolder(), { FLEETWIRE_ADMIN_EMAIL: admin.email, FLEETWIRE_ADMIN_PASSWORD: admin.password, FLEETWIRE_SIGNUP: 'true', FLEETWIRE_CERTIFICATE_LIFETIME: '20d' }));
  const origin = server.api;
  const { token } = await login(origin, admin.email, admin.password);
  const org = (await call<{ id: string }>(origin, 'POST', '/orgs', { token, body: { name: 'Water works' } })).body.id;
  const channel = (await call<{ id: string }>(origin, 'POST', `/orgs/${org}/channels`, { token, body: { name: 'telemetry' } })).body.id;
  const group = (await call<{ id: string }>(origin, 'POST', `/orgs/${org}/groups`, { token, body: { name: 'line 1' } })).body.id;
  const registrations = (query = '') => call<{ total: number; registrations: Registration[] }>(origin, 'GET', `/orgs/${org}/registrations?limit=100&${query}`, { token }).then((r) => r.body);
  const certificates = () => call<{ total: number; certificates: Certificate[] }>(origin, 'GET', `/orgs/${org}/certificates?limit=100`, { token }).then((r) => r.body);

  browser = await launchChromium();
  const { page, elsewhere, errors } = await openPage(browser, origin);
  page.on('dialog', (dialog) => void dialog.accept()); // the confirmations of reset, revoke and delete
  await page.goto(`${origin}/organizations/${org}/devices`);
  await signIn(page, admin);
  await page.getByRole('link', { name: 'Identity', exact: true }).click(); // the identity pages' tab opens the registrations
  await page.getByRole('heading', { name: 'Registrations', exact: true }).waitFor();
  const table = page.getByRole('table', { name: 'Registrations', exact: true });
  const row = (serial: string) => table.getByRole('row').filter({ hasText: serial });

  // one device registered from the form, joining the channel and the group when it enrols
  const form = page.getByRole('form', { name: 'Register a device' });
  await form.getByLabel('Serial').fill('SN-100');
  await form.getByLabel('Model').fill('meter');
  await form.getByLabel('telemetry').check();
  await form.getByLabel('line 1').check();
  await form.getByRole('button', { name: 'Register' }).click();
  await form.getByRole('status').filter({ hasText: 'SN-100 is registered (pending): it enrols with an enrolment token.' }).waitFor();
  await row('SN-100').getByTestId('registration-state').filter({ hasText: 'pending' }).waitFor();
  const sn100 = (await registrations('serial=SN-100')).registrations[0]!;
  assert.deepEqual([sn100.state, sn100.channel_ids, sn100.group_ids], ['pending', [channel], [group]]);

  // an import of two rows pasted as CSV; then one that names a serial taken, and registers nothing
  const importer = page.getByRole('region', { name: 'Import registrations' });
  await importer.getByLabel('CSV text').fill(`serial,model,channel_ids\nSN-200,valve,${channel}\nSN-201,valve,\n`);
  await importer.getByRole('button', { name: 'Preview' }).click();
  await importer.getByRole('table', { name: 'Registrations to import' }).getByRole('row').filter({ hasText: 'SN-201' }).waitFor();
  await importer.getByRole('button', { name: 'Register 2 devices' }).click();
  await importer.getByRole('status').filter({ hasText: '2 devices registered.' }).waitFor();
  await row('SN-201').waitFor();
  assert.deepEqual((await registrations('state=pending')).registrations.map((r) => r.serial).sort(), ['SN-100', 'SN-200', 'SN-201']);
  assert.deepEqual((await registrations('serial=SN-200')).registrations[0]!.channel_ids, [channel]);
  await importer.getByLabel('CSV text').fill('serial\nSN-300\nSN-200\n');
  await importer.getByRole('button', { name: 'Preview' }).click();
  await importer.getByRole('button', { name: 'Register 2 devices' }).click();
  await importer.getByTestId('refused-serials').filter({ hasText: 'SN-200' }).waitFor();
  assert.equal(await importer.getByTestId('refused-serials').getByRole('listitem').count(), 1, 'only the taken serial is named');
  await importer.getByRole('table', { name: 'Registrations to import' }).getByRole('row').filter({ hasText: 'SN-200' }).filter({ hasText: 'registered already' }).waitFor();
  assert.equal((await registrations('serial=SN-300')).total, 0, 'all or nothing');
  // a row the preview refuses before anything is sent
  await importer.getByLabel('CSV text').fill('serial,public_key\nSN-400,not a key\n');
  await importer.getByRole('button', { name: 'Preview' }).click();
  await importer.getByRole('row').filter({ hasText: 'SN-400' }).filter({ hasText: 'public_key is a PEM public key' }).waitFor();
  assert.equal(await importer.getByRole('button', { name: 'Register 1 device' }).isDisabled(), true);

  // an enrolment token for SN-1*, read from its dialog, copied, and the commands filled in
  await page.getByRole('link', { name: 'Enrolment tokens', exact: true }).click();
  const tokenForm = page.getByRole('form', { name: 'New enrolment token' });
  await tokenForm.getByLabel('Valid for').selectOption({ label: '1 hour' });
  await tokenForm.getByLabel('Serial pattern (optional, * matches anything)').fill('SN-1*');
  await tokenForm.getByRole('button', { name: 'Make a token' }).click();
  const dialog = page.getByRole('dialog', { name: 'The enrolment token, shown only now' });
  await dialog.waitFor();
  const enrolmentToken = (await dialog.getByTestId('token-value').textContent())!;
  assert.match(enrolmentToken, /^fwe_/);
  await dialog.getByRole('button', { name: 'Copy', exact: true }).click();
  await dialog.getByRole('button', { name: 'Copied', exact: true }).waitFor();
  assert.equal(await page.evaluate('navigator.clipboard.readText()'), enrolmentToken);
  const commands = await dialog.getByTestId('command').allTextContents();
  assert.match(commands[0]!, /openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 .*\/serialNumber=SN-142\//s);
  assert.ok(commands[1]!.includes(`--arg token '${enrolmentToken}'`) && commands[1]!.includes(`'${origin}/enrol'`), commands[1]);
  await noViolations(page, 'enrolment token dialog');
  await dialog.getByRole('button', { name: 'Done' }).click();
  await dialog.waitFor({ state: 'hidden' });
  const tokens = page.getByRole('table', { name: 'Enrolment tokens' });
  await tokens.getByTestId('token-use').filter({ hasText: 'not yet' }).waitFor();
  await noViolations(page, 'enrolment tokens');

  // the device enrols with it over HTTP: first a serial outside the pattern (refused), then SN-100
  const outside = deviceRequest('/serialNumber=GW-1/CN=gateway');
  assert.equal((await call(origin, 'POST', '/enrol', { body: { csr: outside.csr, token: enrolmentToken } })).status, 403);
  const device = deviceRequest('/serialNumber=SN-100/CN=meter');
  const enrolled = await call<{ device_id: string; serial: string }>(origin, 'POST', '/enrol', { body: { csr: device.csr, token: enrolmentToken } });
  assert.equal(enrolled.status, 201, JSON.stringify(enrolled.body));
  await page.reload();
  await tokens.getByTestId('token-use').getByRole('link', { name: 'SN-100' }).click();
  await row('SN-100').getByTestId('registration-state').filter({ hasText: 'enrolled' }).waitFor();
  await row('SN-100').getByRole('link', { name: 'meter SN-100' }).waitFor(); // its device, named after its model and serial
  assert.equal(new URL(page.url()).searchParams.get('serial'), 'SN-100');
  await page.getByRole('button', { name: 'Show all registrations' }).click();
  const refused = page.getByRole('table', { name: 'Failed enrolment attempts' });
  await refused.getByRole('row').filter({ hasText: 'enrolment.serial_not_allowed' }).waitFor();
  await row('SN-201').waitFor();
  await checkPage(page, 'registrations');

  // suspend and resume from the list, checked over the API
  await page.getByRole('button', { name: 'Suspend SN-100' }).click();
  await row('SN-100').getByTestId('registration-state').filter({ hasText: 'suspended' }).waitFor();
  assert.equal((await registrations('serial=SN-100')).registrations[0]!.state, 'suspended');
  assert.equal(await page.getByRole('button', { name: 'Suspend SN-100' }).count(), 0, 'a suspended registration is not offered a suspend');
  await page.getByRole('button', { name: 'Resume SN-100' }).click();
  await row('SN-100').getByTestId('registration-state').filter({ hasText: 'enrolled' }).waitFor();
  assert.equal((await registrations('serial=SN-100')).registrations[0]!.state, 'enrolled');
  // a pending one is deleted (after the confirmation)
  await page.getByRole('button', { name: 'Delete SN-201' }).click();
  await row('SN-201').waitFor({ state: 'detached' });
  assert.equal((await registrations('serial=SN-201')).total, 0);
  // the state filter, in the address
  await page.getByLabel('State').selectOption('enrolled');
  await page.getByRole('button', { name: 'Filter' }).click();
  await row('SN-200').waitFor({ state: 'detached' });
  assert.equal(await table.getByRole('row').count(), 2, 'the heading and SN-100');

  // its certificate in the inventory, marked as expiring within 30 days; revoked with a reason
  await page.getByRole('link', { name: 'Certificates', exact: true }).click();
  const inventory = page.getByRole('table', { name: 'Certificates' });
  const certRow = inventory.getByRole('row').filter({ has: page.getByRole('link', { name: 'meter SN-100' }) });
  await certRow.getByTestId('certificate-status').filter({ hasText: 'active' }).waitFor();
  assert.match((await certRow.getByTestId('expiry').textContent())!, /^◷ expires in (19|20) days$/);
  await page.getByLabel('Expiring within 30 days').check();
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.getByTestId('page-info').filter({ hasText: '1–1 of 1' }).waitFor();
  assert.equal(new URL(page.url()).searchParams.get('expiring'), '30d');
  await noViolations(page, 'certificates');
  await page.getByRole('button', { name: `Revoke certificate ${enrolled.body.serial}` }).click();
  const revoke = page.getByRole('form', { name: 'Revoke a certificate' });
  await revoke.getByLabel('Reason').selectOption('keyCompromise');
  await revoke.getByRole('button', { name: 'Revoke' }).click();
  await certRow.getByTestId('certificate-status').filter({ hasText: 'revoked' }).waitFor();
  await certRow.filter({ hasText: '(key compromise)' }).waitFor(); // the reason in words
  assert.deepEqual((await certificates()).certificates.map((c) => [c.serial, c.device_id, c.status, c.revocation_reason]), [[enrolled.body.serial, enrolled.body.device_id, 'revoked', 'keyCompromise']]);

  // the device's page lists it, with the way to the inventory
  await certRow.getByRole('link', { name: 'meter SN-100' }).click();
  const own = page.getByRole('table', { name: 'Device certificates' });
  await own.getByRole('row').filter({ hasText: enrolled.body.serial.slice(0, 12) }).filter({ hasText: 'revoked' }).waitFor();
  await page.getByRole('link', { name: 'In the certificates inventory' }).click();
  await page.getByText('Of the device meter SN-100 only.').waitFor();
  await noViolations(page, 'device certificates');

  // a viewer reads every identity page, without a control that changes anything
  assert.equal((await call(origin, 'POST', '/auth/signup', { body: viewer })).status, 201);
  assert.equal((await call(origin, 'POST', `/orgs/${org}/members`, { token, body: { email: viewer.email, role: 'viewer' } })).status, 201);
  const seen = await openPage(browser, origin);
  await seen.page.goto(`${origin}/organizations/${org}/devices`);
  await signIn(seen.page, viewer);
  await seen.page.getByRole('link', { name: 'Identity', exact: true }).click(); // the identity pages' tab opens the registrations
  await seen.page.getByRole('table', { name: 'Registrations', exact: true }).getByRole('row').filter({ hasText: 'SN-100' }).waitFor();
  await seen.page.getByRole('table', { name: 'Failed enrolment attempts' }).waitFor();
  for (const name of ['Suspend SN-100', 'Reset SN-100', 'Revoke SN-100', 'Delete SN-200', 'Register', 'Preview']) assert.equal(await seen.page.getByRole('button', { name, exact: true }).count(), 0, name);
  assert.equal(await seen.page.getByRole('form', { name: 'Register a device' }).count(), 0);
  await seen.page.getByRole('link', { name: 'Enrolment tokens', exact: true }).click();
  await seen.page.getByRole('table', { name: 'Enrolment tokens' }).getByRole('link', { name: 'SN-100' }).waitFor();
  assert.equal(await seen.page.getByRole('form', { name: 'New enrolment token' }).count(), 0);
  assert.equal(await seen.page.getByRole('button', { name: /^Withdraw/ }).count(), 0);
  await seen.page.getByRole('link', { name: 'Certificates', exact: true }).click();
  await seen.page.getByRole('table', { name: 'Certificates' }).getByRole('link', { name: 'meter SN-100' }).waitFor();
  assert.equal(await seen.page.getByRole('button', { name: /^Revoke/ }).count(), 0);
  await noViolations(seen.page, 'viewer certificates');

  assert.deepEqual([...elsewhere, ...seen.elsewhere], [], 'everything comes from the platform');
  // the refused import's 409 is the browser's own log line for a refusal the page shows
  assert.deepEqual([...errors, ...seen.errors].filter((e) => !/status of 409/.test(e)), []);
});
