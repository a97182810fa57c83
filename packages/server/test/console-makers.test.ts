// test-database: once (the subject is not the database: it runs in the first pass only)
// The console's manufacturer CAs page end to end, against a real `fleetwire start` (with its HTTPS
// listener) and Debian's Chromium: a maker's CA made with openssl is added through the form (its
// PEM read from a file, an allow-list, a channel and a group) after the platform refused a leaf
// certificate, a pattern with a space and the same CA twice, each by the field it concerns; the
// allow-list is changed on the CA's page; a device with a factory certificate signed by the CA
// enrols over HTTPS (node:https, the factory certificate as TLS client certificate) and the
// registrations and events pages say so; a viewer reads the list and the CA without a control
// that changes them; the list pages past 20; the CA is deleted after a confirmation that says
// its devices keep their certificates, and they do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { announcedPort, call, cliEnv, dataFolder, login, startCli, type Server } from './helpers/cli.js';
import { eventually } from './helpers/eventually.js';
import { accessibilityViolations, buildConsole, checkPage, consoleTestsAvailable as available, launchChromium, openPage, signIn, closedAfterTests } from './helpers/console.js';

const admin = { email: 'admin@example.org', password: 'console-makers-password' };
const viewer = { email: 'viewer@example.org', password: 'console-makers-viewer' };

let server: Server | undefined;
let browser: Browser | undefined;
closedAfterTests(() => ({ browser, server }));

interface ManufacturerCa {
  id: string;
  name: string;
  fingerprint: string;
  serials: string[];
  channel_ids: string[];
  group_ids: string[];
}

const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
const p256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A device maker's CA (30 days), in a data folder the test run removes, and the factory certificates it signs. */
function manufacturer(name: string) {
  const dir = dataFolder();
  const f = (file: string) => join(dir, file);
  ssl('req', '-x509', ...p256, '-days', '30', '-subj', `/O=${name}/CN=${name} Factory CA`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign', '-keyout', f('ca.key'), '-out', f('ca.pem'));
  let n = 0;
  return {
    caFile: f('ca.pem'),
    /** A factory certificate and its key as the maker installs them, and the CSR of the device's new operational key. */
    device(serial: string): { cert: string; key: Buffer; csr: string; certFile: string } {
      const id = `d${++n}`;
      ssl('req', ...p256, '-subj', `/serialNumber=${serial}/CN=widget`, '-keyout', f(`${id}.key`), '-out', f(`${id}.factory.csr`));
      writeFileSync(f(`${id}.ext`), 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
      ssl('x509', '-req', '-in', f(`${id}.factory.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '30', '-extfile', f(`${id}.ext`), '-out', f(`${id}.pem`));
      ssl('req', '-new', ...p256, '-subj', `/serialNumber=${serial}`, '-keyout', f(`${id}.operational.key`), '-out', f(`${id}.csr`));
      return { cert: readFileSync(f(`${id}.pem`), 'utf8'), key: readFileSync(f(`${id}.key`)), csr: readFileSync(f(`${id}.csr`), 'utf8'), certFile: f(`${id}.pem`) };
    },
  };
}

/** The platform root as a device fetches it before it trusts the HTTPS listener: EST cacerts (RFC 7030 §4.1), a certs-only PKCS#7 in base64. */
async function platformRoot(origin: string): Promise<string> {
  const dir = dataFolder();
  const res = await fetch(`${origin}/.well-known/est/cacerts`);
  assert.equal(res.status, 200);
  writeFileSync(join(dir, 'cacerts.p7'), Buffer.from(await res.text(), 'base64'));
  ssl('pkcs7', '-inform', 'DER', '-in', join(dir, 'cacerts.p7'), '-print_certs', '-out', join(dir, 'root.pem'));
  return readFileSync(join(dir, 'root.pem'), 'utf8');
}

/** POST /enrol over HTTPS with no token, the factory certificate as TLS client certificate (docs/identity.md). */
function enrolWithFactoryCertificate(httpsPort: number, root: string, device: { cert: string; key: Buffer; csr: string }): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: httpsPort, path: '/enrol', method: 'POST', ca: root, cert: device.cert, key: device.key, headers: { 'content-type': 'application/json' }, timeout: 15_000 }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer to POST /enrol within 15 s')));
    req.on('error', reject);
    req.end(JSON.stringify({ csr: device.csr }));
  });
}

async function noViolations(page: Page, name: string): Promise<void> {
  assert.deepEqual(await accessibilityViolations(page), [], `${name}: accessibility (axe-core)`);
}

/** The id the field points to with aria-describedby is the refusal's, shown under it. */
async function describedByProblem(page: Page, field: ReturnType<Page['getByLabel']>, problemTestId: string): Promise<void> {
  const problem = page.getByTestId(problemTestId);
  assert.equal(await field.getAttribute('aria-invalid'), 'true');
  assert.equal(await field.getAttribute('aria-describedby'), await problem.getAttribute('id'));
}

test("an operator adds a manufacturer CA in the console (refusals by their field), changes its allow-list, sees a device enrol with its factory certificate and deletes it; a viewer sees no controls", { skip: available === true ? false : available, timeout: 150_000 }, async () => {
  buildConsole();
  server = await startCli(cliEnv(dataFolder(), { FLEETWIRE_ADMIN_EMAIL: admin.email, FLEETWIRE_ADMIN_PASSWORD: admin.password, FLEETWIRE_SIGNUP: 'true' }));
  const origin = server.api;
  const httpsPort = await announcedPort(server, 'HTTPS listening');
  const { token } = await login(origin, admin.email, admin.password);
  const org = (await call<{ id: string }>(origin, 'POST', '/orgs', { token, body: { name: 'Water works' } })).body.id;
  const channel = (await call<{ id: string }>(origin, 'POST', `/orgs/${org}/channels`, { token, body: { name: 'telemetry' } })).body.id;
  const group = (await call<{ id: string }>(origin, 'POST', `/orgs/${org}/groups`, { token, body: { name: 'line 1' } })).body.id;
  const cas = () => call<{ total: number; manufacturer_cas: ManufacturerCa[] }>(origin, 'GET', `/orgs/${org}/manufacturer-cas?limit=100`, { token }).then((r) => r.body);
  const acme = manufacturer('Acme');

  browser = await launchChromium();
  const { page, elsewhere, errors } = await openPage(browser, origin);
  const confirmations: string[] = [];
  page.on('dialog', (dialog) => {
    confirmations.push(dialog.message());
    void dialog.accept();
  });
  await page.goto(`${origin}/organizations/${org}/devices`);
  await signIn(page, admin);
  await page.getByRole('link', { name: 'Identity', exact: true }).click();
  await page.getByRole('navigation', { name: 'Device identity' }).getByRole('link', { name: 'Manufacturer CAs' }).click();
  await page.getByRole('heading', { name: 'Manufacturer CAs', exact: true }).waitFor();
  await page.getByText('No manufacturer CAs yet').waitFor();
  const form = page.getByRole('form', { name: 'Add a manufacturer CA' });
  const pem = form.getByLabel('CA certificate (PEM)');
  const serials = form.getByLabel(/^Serials it may enrol/);

  // a leaf certificate (a factory certificate, not a CA) pasted: refused by the certificate field
  await form.getByLabel('Name').fill('Acme');
  await pem.fill(acme.device('ACME-LEAF').cert);
  await serials.fill('ACME-1*');
  await form.getByRole('button', { name: 'Add the CA' }).click();
  await form.getByTestId('certificate-problem').filter({ hasText: 'The certificate is not a CA (basic constraints)' }).waitFor();
  await describedByProblem(page, pem, 'certificate-problem');
  assert.equal((await cas()).total, 0);

  // the CA read from its file into the text box; a pattern with a space refused by the serials field
  await form.getByLabel('Or its file').setInputFiles(acme.caFile);
  await eventually(async () => assert.equal(await pem.inputValue(), readFileSync(acme.caFile, 'utf8')));
  await serials.fill('ACME-1*, ACME 2*');
  await form.getByRole('button', { name: 'Add the CA' }).click();
  await form.getByTestId('serials-problem').filter({ hasText: 'serials/1' }).waitFor();
  await describedByProblem(page, serials, 'serials-problem');
  assert.equal(await form.getByTestId('certificate-problem').count(), 0, 'only the field the refusal concerns is marked');
  assert.equal(await pem.getAttribute('aria-invalid'), null);

  // corrected: one pattern a line or separated by commas, with the channel and the group
  await serials.fill('ACME-1*, ACME-2*\nACME-300');
  await form.getByLabel('telemetry').check();
  await form.getByLabel('line 1').check();
  await form.getByRole('button', { name: 'Add the CA' }).click();
  await form.getByRole('status').filter({ hasText: 'Acme is added' }).waitFor();
  const added = (await cas()).manufacturer_cas;
  assert.deepEqual(
    added.map((c) => [c.name, c.serials, c.channel_ids, c.group_ids]),
    [['Acme', ['ACME-1*', 'ACME-2*', 'ACME-300'], [channel], [group]]],
  );
  const ca = added[0]!;
  assert.equal(await pem.inputValue(), '', 'the form is empty again');

  // listed: subject, the fingerprint cut short with a copy button, the patterns, the expiry marked, the channel
  const table = page.getByRole('table', { name: 'Manufacturer CAs' });
  const row = table.getByRole('row').filter({ has: page.getByRole('link', { name: 'Acme', exact: true }) });
  await row.waitFor();
  await row.getByText('O=Acme, CN=Acme Factory CA').waitFor();
  await row.getByText(`${ca.fingerprint.slice(0, 16)}…`).waitFor();
  assert.deepEqual(await row.getByTestId('patterns').getByRole('listitem').allTextContents(), ['ACME-1*', 'ACME-2*', 'ACME-300']);
  assert.match((await row.getByTestId('expiry').textContent())!, /^◷ expires in (29|30) days$/);
  assert.equal(await row.getByTestId('ca-channels').textContent(), 'telemetry');
  await row.getByRole('button', { name: 'Copy: the fingerprint of Acme' }).click();
  await row.getByRole('button', { name: 'Copied: the fingerprint of Acme' }).waitFor();
  assert.equal(await page.evaluate('navigator.clipboard.readText()'), ca.fingerprint);

  // the same CA again: refused (409) by the certificate field
  await form.getByLabel('Name').fill('Acme again');
  await form.getByLabel('Or its file').setInputFiles(acme.caFile);
  await eventually(async () => assert.match(await pem.inputValue(), /^-----BEGIN CERTIFICATE-----/));
  await serials.fill('ACME-9*');
  await form.getByRole('button', { name: 'Add the CA' }).click();
  await form.getByTestId('certificate-problem').filter({ hasText: 'is registered in the organization already' }).waitFor();
  assert.equal((await cas()).total, 1);
  await checkPage(page, 'manufacturer-cas');

  // its page: the allow-list changed (an empty one refused by its field first), the group dropped
  await row.getByRole('link', { name: 'Acme', exact: true }).click();
  await page.getByRole('heading', { name: 'Manufacturer CA Acme' }).waitFor();
  const edit = page.getByRole('form', { name: 'Change the CA' });
  const allowList = edit.getByLabel(/^Serials it may enrol/);
  assert.equal(await allowList.inputValue(), 'ACME-1*\nACME-2*\nACME-300');
  assert.equal(await edit.getByLabel('telemetry').isChecked(), true);
  await allowList.fill(' , ');
  await edit.getByRole('button', { name: 'Save' }).click();
  await edit.getByTestId('serials-problem').waitFor();
  await describedByProblem(page, allowList, 'serials-problem');
  await allowList.fill('ACME-5*');
  await edit.getByLabel('line 1').uncheck();
  await edit.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('status').filter({ hasText: 'Acme is saved' }).waitFor();
  const facts = page.getByRole('definition').filter({ has: page.getByTestId('patterns') });
  await facts.getByText('ACME-5*', { exact: true }).waitFor();
  await page.getByTestId('ca-groups').filter({ hasText: 'none' }).waitFor();
  const changed = (await cas()).manufacturer_cas[0]!;
  assert.deepEqual([changed.serials, changed.channel_ids, changed.group_ids], [['ACME-5*'], [channel], []]);
  await noViolations(page, 'manufacturer CA page');

  // a device with a factory certificate of the CA enrols over HTTPS, no token; one off the new list is refused
  const root = await platformRoot(origin);
  const off = await enrolWithFactoryCertificate(httpsPort, root, acme.device('ACME-100'));
  assert.deepEqual([off.status, off.body.code], [403, 'enrolment.factory_certificate_invalid']);
  const enrolled = await enrolWithFactoryCertificate(httpsPort, root, acme.device('ACME-500'));
  assert.equal(enrolled.status, 201, JSON.stringify(enrolled.body));
  assert.deepEqual(enrolled.body.channel_ids, [channel], "the CA's channel");
  const deviceSerial = enrolled.body.serial as string;

  // the registrations page shows it enrolled; the events read the CA's changes and the factory certificate's enrolment
  await page.getByRole('navigation', { name: 'Device identity' }).getByRole('link', { name: 'Registrations' }).click();
  const registration = page.getByRole('table', { name: 'Registrations', exact: true }).getByRole('row').filter({ hasText: 'ACME-500' });
  await registration.getByTestId('registration-state').filter({ hasText: 'enrolled' }).waitFor();
  await page.getByRole('navigation', { name: 'Device identity' }).getByRole('link', { name: 'Events' }).click();
  const events = page.getByRole('table', { name: 'Identity events' });
  await events.getByRole('row').filter({ hasText: 'Enrolment' }).filter({ hasText: "a device, with its maker's factory certificate" }).first().waitFor();
  assert.equal(await events.getByTestId('event').filter({ hasText: 'Manufacturer CA changed' }).count(), 2, 'added, then changed');

  // a viewer reads the list and the CA's page, without a form or a button that changes them
  assert.equal((await call(origin, 'POST', '/auth/signup', { body: viewer })).status, 201);
  assert.equal((await call(origin, 'POST', `/orgs/${org}/members`, { token, body: { email: viewer.email, role: 'viewer' } })).status, 201);
  const seen = await openPage(browser, origin);
  await seen.page.goto(`${origin}/organizations/${org}/manufacturer-cas`);
  await signIn(seen.page, viewer);
  const seenRow = seen.page.getByRole('table', { name: 'Manufacturer CAs' }).getByRole('row').filter({ hasText: 'ACME-5*' });
  await seenRow.waitFor();
  assert.equal(await seen.page.getByRole('form', { name: 'Add a manufacturer CA' }).count(), 0);
  await noViolations(seen.page, 'viewer manufacturer CAs');
  await seenRow.getByRole('link', { name: 'Acme', exact: true }).click();
  await seen.page.getByRole('heading', { name: 'Manufacturer CA Acme' }).waitFor();
  await seen.page.getByTestId('ca-channels').filter({ hasText: 'telemetry' }).waitFor();
  assert.equal(await seen.page.getByRole('form', { name: 'Change the CA' }).count(), 0);
  assert.equal(await seen.page.getByRole('button', { name: /^(Delete|Save)/ }).count(), 0);

  // past 20, the list pages (newest first: Acme, the first added, is on the second page)
  for (let k = 1; k <= 20; k++) {
    const maker = `Maker ${String(k).padStart(2, '0')}`;
    const made = await call(origin, 'POST', `/orgs/${org}/manufacturer-cas`, { token, body: { name: maker, certificate: readFileSync(manufacturer(maker).caFile, 'utf8'), serials: [`M${k}-*`] } });
    assert.equal(made.status, 201, JSON.stringify(made.body));
  }
  await seen.page.getByRole('link', { name: '← Manufacturer CAs' }).click();
  const seenPages = seen.page.getByRole('group', { name: 'Pages of manufacturer CAs' });
  await seenPages.getByTestId('page-info').filter({ hasText: '1–20 of 21' }).waitFor();
  assert.equal(await seen.page.getByRole('link', { name: 'Acme', exact: true }).count(), 0);
  await seenPages.getByRole('button', { name: 'Next' }).click();
  await seenPages.getByTestId('page-info').filter({ hasText: '21–21 of 21' }).waitFor();
  await seen.page.getByRole('link', { name: 'Acme', exact: true }).waitFor();

  // deleted after a confirmation that says what stays; the device keeps its certificate, and the CA enrols nothing more
  await page.goto(`${origin}/organizations/${org}/manufacturer-cas/${ca.id}`);
  await page.getByRole('button', { name: 'Delete Acme' }).click();
  await page.getByRole('status').filter({ hasText: 'The manufacturer CA Acme is deleted' }).waitFor();
  assert.equal(confirmations.length, 1);
  assert.match(confirmations[0]!, /^Delete the manufacturer CA Acme\? .*the devices it enrolled keep their certificates\.$/);
  const left = await cas();
  assert.deepEqual([left.total, left.manufacturer_cas.some((c) => c.id === ca.id)], [20, false]);
  const kept = await call<{ certificates: { serial: string; status: string }[] }>(origin, 'GET', `/orgs/${org}/certificates?limit=100`, { token });
  assert.deepEqual(kept.body.certificates.map((c) => [c.serial, c.status]), [[deviceSerial, 'active']]);
  const after = await enrolWithFactoryCertificate(httpsPort, root, acme.device('ACME-501'));
  assert.equal(after.status, 403, JSON.stringify(after.body));
  await page.getByRole('link', { name: '← Manufacturer CAs' }).click();
  await page.getByRole('link', { name: 'Maker 01', exact: true }).waitFor();
  assert.equal(await page.getByRole('table', { name: 'Manufacturer CAs' }).getByRole('row').count(), 21, 'the heading and 20 CAs, on one page');
  assert.equal(await page.getByRole('link', { name: 'Acme', exact: true }).count(), 0);

  assert.deepEqual([...elsewhere, ...seen.elsewhere], [], 'everything comes from the platform');
  // the refusals' 400 and 409 are the browser's own log lines for refusals the page shows
  assert.deepEqual([...errors, ...seen.errors].filter((e) => !/status of (400|409)/.test(e)), []);
});
