// A device presents its platform certificate to HTTPS instead of a secret: it publishes with
// POST …/messages and subscribes over WebSocket with no Authorization at all; revoking the
// certificate ends its WebSocket (4403) and refuses its next request. The HTTPS listener trusts an
// organization's issuing CA from the moment it is made (the device sends its certificate alone).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startTestPlatform, type TestPlatform } from '../../../test/helpers/platform.js';
import { eventually } from '../../../test/helpers/eventually.js';
import { anotherRequest, certificateAuthority, deviceRequest } from '../../../test/helpers/tls.js';

/** A client certificate (PEM) and its key file. */
type Client = { cert: string; keyFile: string };

/** One HTTPS request trusting the listener's CA `caFile`, with a client certificate or none. */
function httpsSend(url: string, method: string, caFile: string, body: string | Buffer | undefined, client: Client | undefined, type: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, ca: readFileSync(caFile), ...(client ? { cert: client.cert, key: readFileSync(client.keyFile) } : {}), headers: body ? { 'content-type': type } : {} }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('device certificates over HTTPS and WebSocket', () => {
  let t: TestPlatform;
  let base: string;
  const listener = certificateAuthority([]);
  let device: ReturnType<typeof deviceRequest>;
  let certFile: string;
  let channel: string;
  let serial: string;
  let org: string;
  let token: string;

  /** A request over HTTPS, with the device's certificate when `withCertificate`. */
  const send = (method: string, path: string, body: string | undefined, withCertificate: boolean) =>
    httpsSend(`${base}${path}`, method, listener.ca, body, withCertificate ? { cert: readFileSync(certFile, 'utf8'), keyFile: device.keyFile } : undefined, 'application/senml+json');

  before(async () => {
    t = await startTestPlatform({ httpTlsCert: listener.serverCert, httpTlsKey: listener.serverKey });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    base = `https://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    const alice = await t.user('alice@example.com');
    token = alice.token;
    org = (await t.request('POST', '/orgs', { token, body: { name: 'https' } })).json().id;
    channel = (await t.request('POST', `/orgs/${org}/channels`, { token, body: { name: 'telemetry' } })).json().id;
    device = deviceRequest('/CN=SN-HTTPS');
    await t.request('POST', `/orgs/${org}/registrations`, { token, body: { serial: 'SN-HTTPS', public_key: device.publicKey, channel_ids: [channel] } });
    const enrolled = await t.request('POST', '/enrol', { body: { csr: device.csr } });
    assert.equal(enrolled.statusCode, 201, enrolled.body);
    serial = enrolled.json().serial;
    // the certificate alone, no chain: the listener must trust the new issuing CA itself
    certFile = join(device.dir, 'leaf.pem');
    writeFileSync(certFile, enrolled.json().certificate);
    await eventually(() => assert.equal(t.platform.trust.current().issuers.size, 1));
  });
  after(() => t.close());

  test('publish and subscribe with the certificate, no secret; revoked: the WebSocket ends with 4403 and the next publish is refused', async () => {
    const pack = JSON.stringify([{ n: 'energy', v: 7 }]);
    assert.equal((await send('POST', `/channels/${channel}/messages`, pack, false)).status, 401, 'no certificate, no credentials');
    const published = await send('POST', `/channels/${channel}/messages`, pack, true);
    assert.equal(published.status, 202, published.body);

    const ws = new WebSocket(`${base.replace('https', 'wss')}/ws/channels/${channel}/messages`, { ca: readFileSync(listener.ca), cert: readFileSync(certFile), key: readFileSync(device.keyFile) });
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => (ws.once('open', () => resolve()), ws.once('error', reject)));
    const got = new Promise<string>((resolve) => ws.once('message', (m) => resolve(m.toString())));
    assert.equal((await send('POST', `/channels/${channel}/messages`, JSON.stringify([{ n: 'energy', v: 8 }]), true)).status, 202);
    assert.match(await got, /"v":8/);

    const revoked = await t.request('POST', `/orgs/${org}/certificates/${serial}/revoke`, { token, body: { reason: 'keyCompromise' } });
    assert.equal(revoked.json().status, 'revoked');
    assert.equal(await closed, 4403);
    const refused = await send('POST', `/channels/${channel}/messages`, pack, true);
    assert.equal(refused.status, 401, refused.body);
    assert.equal(JSON.parse(refused.body).code, 'auth.invalid_credentials');
  });
});

describe('certificate renewal over HTTPS', () => {
  let t: TestPlatform;
  let base: string;
  const listener = certificateAuthority([]);
  let org: string;
  let token: string;
  let channel: string;

  /** A request over HTTPS with a client certificate (PEM text) and key file, or none. */
  const send = (method: string, path: string, body: string | Buffer | undefined, client: Client | undefined, type = 'application/json') => httpsSend(`${base}${path}`, method, listener.ca, body, client, type);
  const renew = (csr: string, client: { cert: string; keyFile: string } | undefined) => send('POST', '/renew', JSON.stringify({ csr }), client);
  const publish = (client: { cert: string; keyFile: string }) => send('POST', `/channels/${channel}/messages`, JSON.stringify([{ n: 'v', v: 1 }]), client, 'application/senml+json');
  const certificate = async (serial: string) => (await t.request('GET', `/orgs/${org}/certificates/${serial}`, { token })).json();

  /** A device registered with its key and enrolled: its key file and certificate. */
  let n = 0;
  const enrolledDevice = async () => {
    const sn = `SN-RENEW-${++n}`;
    const device = deviceRequest(`/serialNumber=${sn}/CN=meter`);
    const registered = await t.request('POST', `/orgs/${org}/registrations`, { token, body: { serial: sn, public_key: device.publicKey, channel_ids: [channel] } });
    const enrolled = await t.request('POST', '/enrol', { body: { csr: device.csr } });
    assert.equal(enrolled.statusCode, 201, enrolled.body);
    return { sn, device, registration: registered.json().id as string, serial: enrolled.json().serial as string, client: { cert: enrolled.json().certificate as string, keyFile: device.keyFile } };
  };

  before(async () => {
    t = await startTestPlatform({ httpTlsCert: listener.serverCert, httpTlsKey: listener.serverKey });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    base = `https://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    token = (await t.user('renewer@example.com')).token;
    org = (await t.request('POST', '/orgs', { token, body: { name: 'renewals' } })).json().id;
    channel = (await t.request('POST', `/orgs/${org}/channels`, { token, body: { name: 'telemetry' } })).json().id;
    await t.request('POST', `/orgs/${org}/registrations`, { token, body: { serial: 'SN-FIRST' } }); // the issuing CA exists once someone enrols
    await enrolledDevice();
    await eventually(() => assert.equal(t.platform.trust.current().issuers.size, 1));
  });
  after(() => t.close());

  test('the same key: a new certificate that replaces the old once used; the old one then no longer works', async () => {
    const d = await enrolledDevice();
    const renewed = await renew(anotherRequest(d.device, `/serialNumber=${d.sn}`), d.client);
    assert.equal(renewed.status, 201, renewed.body);
    const next = JSON.parse(renewed.body);
    assert.notEqual(next.serial, d.serial);
    assert.equal(next.device_id, (await certificate(d.serial)).device_id);
    assert.equal((await certificate(next.serial)).replaces, d.serial);
    // until the new one is used, both work (the answer may have been lost on the way)
    assert.equal((await publish(d.client)).status, 202);
    assert.equal((await certificate(d.serial)).status, 'active');
    const nextClient = { cert: next.certificate, keyFile: d.device.keyFile };
    assert.equal((await publish(nextClient)).status, 202);
    await eventually(async () => assert.equal((await certificate(d.serial)).revocation_reason, 'superseded'));
    assert.equal((await publish(d.client)).status, 401, 'the replaced certificate is refused');
    assert.equal((await publish(nextClient)).status, 202);
    const events = (await t.request('GET', `/orgs/${org}/identity-events?registration_id=${d.registration}`, { token })).json().events.map((e: { action: string; outcome: string }) => `${e.action}:${e.outcome}`);
    assert.deepEqual(events.slice(0, 3).sort(), ['enrol:ok', 'renew:ok', 'supersede:ok'].sort());
  });

  test('a new key: the registration holds it from then on, and the old key enrols no more', async () => {
    const d = await enrolledDevice();
    const fresh = deviceRequest(`/serialNumber=${d.sn}`);
    const renewed = await renew(fresh.csr, d.client);
    assert.equal(renewed.status, 201, renewed.body);
    const registration = (await t.request('GET', `/orgs/${org}/registrations/${d.registration}`, { token })).json();
    assert.equal(registration.key_fingerprint, fresh.fingerprint);
    assert.equal((await publish({ cert: JSON.parse(renewed.body).certificate, keyFile: fresh.keyFile })).status, 202);
    const again = await t.request('POST', '/enrol', { body: { csr: anotherRequest(d.device, `/serialNumber=${d.sn}`) } });
    assert.equal(again.json().code, 'enrolment.not_registered', again.body);
  });

  test('renewed twice before using either: the first renewal is revoked, the presented certificate and the last remain', async () => {
    const d = await enrolledDevice();
    const first = JSON.parse((await renew(anotherRequest(d.device, `/serialNumber=${d.sn}`), d.client)).body);
    const second = await renew(anotherRequest(d.device, `/serialNumber=${d.sn}`), d.client);
    assert.equal(second.status, 201, second.body);
    assert.equal((await certificate(first.serial)).revocation_reason, 'superseded');
    assert.equal((await certificate(d.serial)).status, 'active');
    assert.equal((await certificate(JSON.parse(second.body).serial)).status, 'active');
    const active = (await t.request('GET', `/orgs/${org}/certificates?device_id=${first.device_id}&status=active`, { token })).json().total;
    assert.equal(active, 2);
  });

  test('refused: no certificate, a revoked one, a suspended registration, a replayed request; each changes nothing', async () => {
    const d = await enrolledDevice();
    const csr = anotherRequest(d.device, `/serialNumber=${d.sn}`);
    const none = await renew(csr, undefined);
    assert.equal(none.status, 401);
    assert.equal(JSON.parse(none.body).code, 'renewal.certificate_required');

    assert.equal((await t.request('POST', `/orgs/${org}/registrations/${d.registration}/suspend`, { token })).statusCode, 200);
    const suspended = await renew(csr, d.client);
    assert.equal(suspended.status, 403);
    assert.equal(JSON.parse(suspended.body).code, 'enrolment.registration_blocked');
    assert.equal((await t.request('POST', `/orgs/${org}/registrations/${d.registration}/resume`, { token })).statusCode, 200);

    const ok = await renew(csr, d.client);
    assert.equal(ok.status, 201, ok.body);
    const replayed = await renew(csr, d.client);
    assert.equal(replayed.status, 409);
    assert.equal(JSON.parse(replayed.body).code, 'enrolment.request_replayed');

    await t.request('POST', `/orgs/${org}/certificates/${d.serial}/revoke`, { token, body: { reason: 'keyCompromise' } });
    const revoked = await renew(anotherRequest(d.device, `/serialNumber=${d.sn}`), d.client);
    assert.equal(revoked.status, 403, revoked.body);
    assert.equal(JSON.parse(revoked.body).code, 'renewal.certificate_inactive');
    const certificates = (await t.request('GET', `/orgs/${org}/certificates?device_id=${(await certificate(d.serial)).device_id}`, { token })).json().certificates;
    assert.equal(certificates.length, 2, 'the enrolment and the one renewal');
    const refusals = (await t.request('GET', `/orgs/${org}/identity-events?registration_id=${d.registration}&outcome=refused`, { token })).json().events.map((e: { code: string }) => e.code);
    assert.deepEqual(refusals.sort(), ['enrolment.registration_blocked', 'enrolment.request_replayed', 'renewal.certificate_inactive'].sort());
  });

  test('the documented renewal commands (openssl, jq, curl) renew a certificate, by JSON and by EST, as written', async () => {
    const d = await enrolledDevice();
    const doc = readFileSync(new URL('../../../../../docs/identity.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('## Renewal')).split(/\n## /)[0]!;
    const commands = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]).join('\n').replaceAll('https://localhost:8443', base.replace('127.0.0.1', 'localhost')).replaceAll('SN-42', d.sn);
    assert.match(commands, /\/renew[\s\S]*simplereenroll/);
    const dir = mkdtempSync(join(tmpdir(), 'fleetwire-renew-'));
    copyFileSync(listener.ca, join(dir, 'root.pem')); // what verifies the listener: here the test's CA, as an operator's own listener certificate has
    copyFileSync(d.device.keyFile, join(dir, 'device.key'));
    writeFileSync(join(dir, 'device.pem'), d.client.cert);
    // asynchronously: the platform answering curl runs in this process
    await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', commands], { cwd: dir, timeout: 30_000 }).catch((e: Error & { stdout: string; stderr: string }) => assert.fail(`${e.message}\n${e.stdout}\n${e.stderr}`));
    const deviceId = (await certificate(d.serial)).device_id;
    const all = (await t.request('GET', `/orgs/${org}/certificates?device_id=${deviceId}`, { token })).json().certificates as { serial: string; replaces: string | null; status: string }[];
    assert.equal(all.length, 3, 'enrolled, renewed by JSON, renewed again by EST');
    const byJson = all.find((c) => c.replaces === d.serial)!;
    const byEst = all.find((c) => c.replaces === byJson.serial)!;
    assert.ok(byEst, 'the EST renewal presented the certificate the JSON renewal gave');
    assert.equal((await publish({ cert: readFileSync(join(dir, 'device.pem'), 'utf8'), keyFile: d.device.keyFile })).status, 202, 'device.pem is the newest certificate');
    await eventually(async () => assert.equal((await certificate(byJson.serial)).status, 'revoked'));
    rmSync(dir, { recursive: true, force: true });
  });

  test('EST simplereenroll over TLS with the certificate renews it', async () => {
    const d = await enrolledDevice();
    const der = execFileSync('openssl', ['req', '-outform', 'DER'], { input: anotherRequest(d.device, `/serialNumber=${d.sn}`) });
    const res = await send('POST', `/.well-known/est/${org}/simplereenroll`, Buffer.from(der.toString('base64')), d.client, 'application/pkcs10');
    assert.equal(res.status, 200, res.body);
    const issued = execFileSync('openssl', ['pkcs7', '-inform', 'DER', '-print_certs', '-noout'], { input: Buffer.from(res.body.replace(/\s+/g, ''), 'base64'), encoding: 'utf8' });
    const active = (await t.request('GET', `/orgs/${org}/certificates?device_id=${(await certificate(d.serial)).device_id}`, { token })).json().certificates;
    const renewed = active.find((c: { replaces: string | null }) => c.replaces === d.serial);
    assert.ok(renewed, 'a certificate that replaces the presented one');
    assert.match(issued, new RegExp(`subject=.*CN *= *${renewed.device_id}`));
    // the label of another organization does not take the certificate
    const other = (await t.request('POST', '/orgs', { token, body: { name: 'elsewhere' } })).json().id;
    const elsewhere = await send('POST', `/.well-known/est/${other}/simplereenroll`, Buffer.from(execFileSync('openssl', ['req', '-outform', 'DER'], { input: anotherRequest(d.device, `/serialNumber=${d.sn}`) }).toString('base64')), d.client, 'application/pkcs10');
    assert.equal(elsewhere.status, 403, elsewhere.body);
  });
});

/** A device maker's CA and the factory certificates it signs (serial as subject serialNumber), made by openssl. */
function manufacturer(name: string) {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwire-maker-'));
  const f = (file: string) => join(dir, file);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '30', '-subj', `/O=${name}/CN=${name} Factory CA`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign', '-keyout', f('ca.key'), '-out', f('ca.pem'));
  let n = 0;
  /** A certificate signed by the CA `by` (a file prefix: ca, or an intermediate's): its PEM and key file. */
  const issue = (by: string, subject: string, ext: string) => {
    const id = `d${++n}`;
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', subject, '-keyout', f(`${id}.key`), '-out', f(`${id}.csr`));
    writeFileSync(f(`${id}.ext`), ext);
    ssl('x509', '-req', '-in', f(`${id}.csr`), '-CA', f(`${by}.pem`), '-CAkey', f(`${by}.key`), '-CAcreateserial', '-days', '30', '-extfile', f(`${id}.ext`), '-out', f(`${id}.pem`));
    return { id, cert: readFileSync(f(`${id}.pem`), 'utf8'), keyFile: f(`${id}.key`) };
  };
  const factoryExt = 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n';
  return {
    ca: readFileSync(f('ca.pem'), 'utf8'),
    /** A factory certificate and its key (files), as the maker installs them in a device. */
    factory(serial: string): { cert: string; keyFile: string } {
      const { cert, keyFile } = issue('ca', `/serialNumber=${serial}/CN=widget`, factoryExt);
      return { cert, keyFile };
    },
    /** A factory certificate signed by an intermediate CA of the maker, sent with that intermediate after it. */
    factoryViaIntermediate(serial: string): { cert: string; keyFile: string } {
      const line = issue('ca', `/O=${name}/CN=${name} Line 7`, 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign\n');
      const { cert, keyFile } = issue(line.id, `/serialNumber=${serial}/CN=widget`, factoryExt);
      return { cert: cert + line.cert, keyFile };
    },
  };
}

describe('enrolment with a factory certificate of a manufacturer CA', () => {
  let t: TestPlatform;
  let base: string;
  const listener = certificateAuthority([]);
  const acme = manufacturer('Acme');
  let org: string;
  let token: string;
  let channel: string;
  let caId: string;

  const send = (method: string, path: string, body: string | Buffer | undefined, client: Client | undefined, type = 'application/json') => httpsSend(`${base}${path}`, method, listener.ca, body, client, type);
  const enrol = (factory: { cert: string; keyFile: string } | undefined, serial: string) => send('POST', '/enrol', JSON.stringify({ csr: deviceRequest(`/serialNumber=${serial}`).csr }), factory);
  const codeOf = (r: { body: string }) => JSON.parse(r.body).code as string;

  before(async () => {
    t = await startTestPlatform({ httpTlsCert: listener.serverCert, httpTlsKey: listener.serverKey });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    base = `https://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    token = (await t.user('maker@example.com')).token;
    org = (await t.request('POST', '/orgs', { token, body: { name: 'factory devices' } })).json().id;
    channel = (await t.request('POST', `/orgs/${org}/channels`, { token, body: { name: 'telemetry' } })).json().id;
    const made = await t.request('POST', `/orgs/${org}/manufacturer-cas`, { token, body: { name: 'Acme', certificate: acme.ca, serials: ['ACME-1*', 'ACME-200'], channel_ids: [channel] } });
    assert.equal(made.statusCode, 201, made.body);
    caId = made.json().id;
  });
  after(() => t.close());

  test('the factory certificate as TLS client certificate enrols the device with its new key: registered with the CA channels, then it publishes with the platform certificate', async () => {
    const factory = acme.factory('ACME-100');
    const operational = deviceRequest('/serialNumber=ACME-100');
    const res = await send('POST', '/enrol', JSON.stringify({ csr: operational.csr }), factory);
    assert.equal(res.status, 201, res.body);
    const enrolled = JSON.parse(res.body);
    assert.deepEqual(enrolled.channel_ids, [channel]);
    const registration = (await t.request('GET', `/orgs/${org}/registrations?serial=ACME-100`, { token })).json().registrations[0];
    assert.equal(registration.state, 'enrolled');
    assert.equal(registration.key_fingerprint, operational.fingerprint, 'the new key, not the factory one');
    const event = (await t.request('GET', `/orgs/${org}/identity-events?registration_id=${registration.id}&action=enrol`, { token })).json().events[0];
    assert.equal(event.actor, 'manufacturer');
    const published = await send('POST', `/channels/${channel}/messages`, JSON.stringify([{ n: 'v', v: 1 }]), { cert: enrolled.certificate, keyFile: operational.keyFile }, 'application/senml+json');
    assert.equal(published.status, 202, published.body);
  });

  test("a factory certificate signed by the maker's intermediate CA, sent with it, chains to the registered CA and enrols; without the intermediate it does not", async () => {
    const viaLine = acme.factoryViaIntermediate('ACME-110');
    const res = await enrol(viaLine, 'ACME-110');
    assert.equal(res.status, 201, res.body);
    const leafOnly = acme.factoryViaIntermediate('ACME-111');
    const alone = await enrol({ cert: leafOnly.cert.slice(0, leafOnly.cert.indexOf('-----END CERTIFICATE-----') + 26), keyFile: leafOnly.keyFile }, 'ACME-111');
    assert.deepEqual([alone.status, codeOf(alone)], [403, 'enrolment.factory_certificate_invalid']);
  });

  test('refused: a serial off the allow-list, another maker, no certificate at all; a registration of the serial is used as it is', async () => {
    const off = await enrol(acme.factory('ACME-300'), 'ACME-300');
    assert.deepEqual([off.status, codeOf(off)], [403, 'enrolment.factory_certificate_invalid']);
    const audited = (await t.request('GET', `/orgs/${org}/identity-events?outcome=refused&action=enrol`, { token })).json().events;
    assert.match(audited[0].detail, /ACME-300/, "the organization whose CA signed it sees the refusal in its audit trail");
    const other = manufacturer('Other');
    const foreign = await enrol(other.factory('ACME-101'), 'ACME-101');
    assert.deepEqual([foreign.status, codeOf(foreign)], [403, 'enrolment.factory_certificate_invalid']);
    assert.equal(codeOf(await enrol(undefined, 'ACME-102')), 'enrolment.not_registered');
    // a registration made by the operator (no channel) is the device's: the CA's channels are not added
    await t.request('POST', `/orgs/${org}/registrations`, { token, body: { serial: 'ACME-200' } });
    const registered = await enrol(acme.factory('ACME-200'), 'ACME-200');
    assert.equal(registered.status, 201, registered.body);
    assert.deepEqual(JSON.parse(registered.body).channel_ids, []);
    assert.equal((await t.request('GET', `/orgs/${org}/registrations?serial=ACME-300`, { token })).json().total, 0, 'a refusal registers nothing');
  });

  test('the same maker CA in two organizations: ambiguous without a label, enrolled with an EST label; removed, it enrols nothing', async () => {
    const second = (await t.request('POST', '/orgs', { token, body: { name: 'second buyer' } })).json().id;
    assert.equal((await t.request('POST', `/orgs/${second}/manufacturer-cas`, { token, body: { name: 'Acme', certificate: acme.ca, serials: ['ACME-1*'] } })).statusCode, 201);
    const factory = acme.factory('ACME-150');
    const ambiguous = await enrol(factory, 'ACME-150');
    assert.deepEqual([ambiguous.status, codeOf(ambiguous)], [403, 'enrolment.not_registered']);
    const der = execFileSync('openssl', ['req', '-outform', 'DER'], { input: deviceRequest('/serialNumber=ACME-150').csr });
    const est = await send('POST', `/.well-known/est/${second}/simpleenroll`, Buffer.from(der.toString('base64')), factory, 'application/pkcs10');
    assert.equal(est.status, 200, est.body);
    assert.equal((await t.request('GET', `/orgs/${second}/registrations?serial=ACME-150`, { token })).json().registrations[0].state, 'enrolled');

    assert.equal((await t.request('DELETE', `/orgs/${org}/manufacturer-cas/${caId}`, { token })).statusCode, 204);
    const gone = await enrol(acme.factory('ACME-160'), 'ACME-160');
    assert.equal(gone.status, 201, 'the second organization still allows it, alone now');
    assert.equal(JSON.parse(gone.body).org_id, second);
  });

  test('a certificate that is not a CA, or one registered twice, is refused; the allow-list can be changed', async () => {
    const leaf = acme.factory('ACME-LEAF').cert;
    const notCa = await t.request('POST', `/orgs/${org}/manufacturer-cas`, { token, body: { name: 'leaf', certificate: leaf, serials: ['*'] } });
    assert.deepEqual([notCa.statusCode, notCa.json().code], [400, 'manufacturer_ca.invalid']);
    const other = manufacturer('Twice');
    assert.equal((await t.request('POST', `/orgs/${org}/manufacturer-cas`, { token, body: { name: 'twice', certificate: other.ca, serials: ['T-*'] } })).statusCode, 201);
    const twice = await t.request('POST', `/orgs/${org}/manufacturer-cas`, { token, body: { name: 'twice', certificate: other.ca, serials: ['T-*'] } });
    assert.deepEqual([twice.statusCode, twice.json().code], [409, 'manufacturer_ca.exists']);
    const id = (await t.request('GET', `/orgs/${org}/manufacturer-cas`, { token })).json().manufacturer_cas.find((c: { name: string }) => c.name === 'twice').id;
    assert.equal(codeOf(await enrol(other.factory('U-1'), 'U-1')), 'enrolment.factory_certificate_invalid');
    const changed = await t.request('PATCH', `/orgs/${org}/manufacturer-cas/${id}`, { token, body: { serials: ['U-*'] } });
    assert.deepEqual(changed.json().serials, ['U-*']);
    assert.equal((await enrol(other.factory('U-2'), 'U-2')).status, 201);
  });
});
