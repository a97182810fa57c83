import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestPlatform, type TestPlatform } from '../../../test/helpers/platform.js';
import { assertProblem } from '../../../test/helpers/problem.js';
import type { LightMyRequestResponse } from 'fastify';

/** The problem's body, once it is the one expected. */
function problem(res: LightMyRequestResponse, status: number, code: string): Record<string, unknown> {
  assertProblem(res, status, code);
  return res.json();
}
import { anotherRequest, deviceRequest } from '../../../test/helpers/tls.js';
import { anotherHandle } from '../../../test/helpers/database.js';
import { randomBytes } from 'node:crypto';
import { createPlatform } from '../../platform.js';
import { ConfigError } from '../../core/config.js';
import { createLogger } from '../../core/logger.js';

type TestUser = Awaited<ReturnType<TestPlatform['user']>>;

describe('device identity over HTTP: registrations, tokens, enrolment, revocation', () => {
  let t: TestPlatform;
  let alice: TestUser;
  let org: string;
  let channel: string;
  let group: string;

  const api = (method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown) => t.request(method, `/orgs/${org}${path}`, { token: alice.token, ...(body !== undefined ? { body } : {}) });
  const enrol = (body: Record<string, unknown>) => t.request('POST', '/enrol', { body });
  const events = async (outcome: 'ok' | 'refused') => (await api('GET', `/identity-events?outcome=${outcome}&limit=1000`)).json().events as { action: string; code: string | null; registration_id: string | null }[];
  const certificates = async () => (await api('GET', '/certificates?limit=1000')).json().total as number;
  /** Whether the platform takes this device's certificate as its credential now (what every protocol asks). */
  const accepted = async (deviceId: string, serial: string) => (await t.platform.authorizer.identify({ kind: 'certificate', deviceId, serial })).ok;

  before(async () => {
    t = await startTestPlatform();
    alice = await t.user('alice@example.com');
    org = (await t.request('POST', '/orgs', { token: alice.token, body: { name: 'fleet' } })).json().id;
    channel = (await api('POST', '/channels', { name: 'telemetry' })).json().id;
    group = (await api('POST', '/groups', { name: 'line 1' })).json().id;
  });
  after(() => t.close());

  test('a device registered with its key enrols with a CSR of that key: its certificate chains to the platform root, its device joins its channels and groups', async () => {
    const device = deviceRequest('/CN=SN-1001');
    const reg = await api('POST', '/registrations', { serial: 'SN-1001', model: 'sensor-x', public_key: device.publicKey, channel_ids: [channel], group_ids: [group] });
    assert.equal(reg.statusCode, 201, reg.body);
    assert.equal(reg.json().state, 'pending');
    assert.equal(reg.json().key_fingerprint, device.fingerprint);

    const res = await enrol({ csr: device.csr });
    assert.equal(res.statusCode, 201, res.body);
    const e = res.json();
    assert.equal(e.org_id, org);
    assert.equal(e.registration_id, reg.json().id);
    assert.equal(e.chain.length, 2);
    assert.ok(typeof e.endpoints.http === 'string');
    // openssl, independently: the chain verifies for a TLS client, and the certificate names the device
    writeFileSync(join(device.dir, 'cert.pem'), e.certificate);
    writeFileSync(join(device.dir, 'issuing.pem'), e.chain[0]);
    writeFileSync(join(device.dir, 'root.pem'), e.chain[1]);
    const verify = spawnSync('openssl', ['verify', '-purpose', 'sslclient', '-CAfile', 'root.pem', '-untrusted', 'issuing.pem', 'cert.pem'], { cwd: device.dir, encoding: 'utf8' });
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
    const text = execFileSync('openssl', ['x509', '-in', 'cert.pem', '-noout', '-subject', '-ext', 'subjectAltName'], { cwd: device.dir, encoding: 'utf8' });
    assert.match(text, new RegExp(`CN ?= ?${e.device_id}`));
    assert.match(text, new RegExp(`URI:urn:fleetwire:org:${org}:device:${e.device_id}`));

    const enrolled = (await api('GET', `/registrations/${reg.json().id}`)).json();
    assert.deepEqual([enrolled.state, enrolled.device_id], ['enrolled', e.device_id]);
    const dev = (await api('GET', `/devices/${e.device_id}`)).json();
    assert.equal(dev.name, 'sensor-x SN-1001');
    assert.deepEqual((await api('GET', `/devices/${e.device_id}/channels`)).json().channels.map((c: { channel_id: string }) => c.channel_id), [channel]);
    assert.deepEqual((await api('GET', `/groups/${group}/devices`)).json().devices.map((d: { id: string }) => d.id), [e.device_id]);
    const cert = (await api('GET', `/certificates/${e.serial}`)).json();
    assert.deepEqual([cert.status, cert.device_id, cert.key_fingerprint], ['active', e.device_id, device.fingerprint]);
    assert.equal(await accepted(e.device_id, e.serial), true);
    assert.ok((await events('ok')).some((ev) => ev.action === 'enrol' && ev.registration_id === reg.json().id));
    const scrape = await t.platform.metrics.metrics();
    assert.match(scrape, /fleetwire_identity_enrolments_total\{outcome="issued",code=""\} 1/);
    assert.match(scrape, /fleetwire_identity_certificates\{status="active"\} 1/);
    assert.match(scrape, /fleetwire_identity_certificates_expiring\{within="30d"\} 0/);
  });

  test('a one-time token enrols one device once: its serial is registered then, a second use, an expired token and a serial outside its pattern are refused', async () => {
    const made = await api('POST', '/enrolment-tokens', { serial_pattern: 'GW-*' });
    assert.equal(made.statusCode, 201, made.body);
    const { token, id } = made.json();
    assert.match(token, /^fwe_/);
    // listed without the token itself
    const listed = (await api('GET', '/enrolment-tokens')).json().tokens.find((x: { id: string }) => x.id === id);
    assert.equal(listed.token, undefined);

    const outside = deviceRequest('/CN=SN-9');
    assertProblem(await enrol({ csr: outside.csr, token }), 403, 'enrolment.serial_not_allowed');
    const gw = deviceRequest('/serialNumber=GW-7/CN=gateway');
    const res = await enrol({ csr: gw.csr, token });
    assert.equal(res.statusCode, 201, res.body);
    const reg = (await api('GET', '/registrations?serial=GW-7')).json().registrations[0];
    assert.deepEqual([reg.state, reg.device_id, reg.key_fingerprint], ['enrolled', res.json().device_id, gw.fingerprint]);
    assert.equal((await api('GET', '/enrolment-tokens')).json().tokens.find((x: { id: string }) => x.id === id).registration_id, reg.id);

    const before = await certificates();
    assertProblem(await enrol({ csr: deviceRequest('/CN=GW-8').csr, token }), 401, 'enrolment.token_used');
    const short = (await api('POST', '/enrolment-tokens', { expires_in: 60 })).json().token;
    t.clock.advance(61_000);
    assertProblem(await enrol({ csr: deviceRequest('/CN=GW-9').csr, token: short }), 401, 'enrolment.token_expired');
    assertProblem(await enrol({ csr: deviceRequest('/CN=GW-9').csr, token: 'fwe_not-a-token' }), 401, 'enrolment.token_invalid');
    assert.equal(await certificates(), before, 'refusals issue nothing');
    assert.match(await t.platform.metrics.metrics(), /fleetwire_identity_enrolments_total\{outcome="refused",code="enrolment.token_used"\} 1/);
    // 90-day certificates: within 30 days of expiry 61 days on
    t.clock.advance(61 * 86_400_000);
    assert.match(await t.platform.metrics.metrics(), /fleetwire_identity_certificates_expiring\{within="30d"\} [1-9]/);
    t.clock.advance(-61 * 86_400_000);
    const enrolFailures = (await api('GET', '/identity-events?outcome=refused&action=enrol&limit=1000')).json().events as { action: string }[];
    assert.ok(enrolFailures.length >= 3 && enrolFailures.every((e) => e.action === 'enrol'));
    const codes = (await events('refused')).map((e) => e.code);
    for (const c of ['enrolment.serial_not_allowed', 'enrolment.token_used', 'enrolment.token_expired']) assert.ok(codes.includes(c), `${c} is in the audit trail`);
  });

  test('bad requests and wrong keys are refused with the code of the step that failed, and change nothing', async () => {
    const registered = deviceRequest('/CN=SN-2001');
    await api('POST', '/registrations', { serial: 'SN-2001', public_key: registered.fingerprint });
    const before = await certificates();
    const rsa = problem(await enrol({ csr: deviceRequest('/CN=SN-2001', 'rsa').csr }), 400, 'enrolment.csr_invalid');
    assert.equal(rsa.reason, 'csr_key_type');
    const garbage = problem(await enrol({ csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n' }), 400, 'enrolment.csr_invalid');
    assert.equal(garbage.reason, 'csr_malformed');
    // a key nobody registered, without a token
    assertProblem(await enrol({ csr: deviceRequest('/CN=SN-2001').csr }), 403, 'enrolment.not_registered');
    // with a token, but the serial's registration holds another key
    const token = (await api('POST', '/enrolment-tokens', {})).json().token;
    assertProblem(await enrol({ csr: deviceRequest('/CN=SN-2001').csr, token }), 403, 'enrolment.key_mismatch');
    assert.equal(await certificates(), before);
    assert.equal((await api('GET', '/registrations?serial=SN-2001')).json().registrations[0].state, 'pending');

    // the registered key enrols; the same request again is a replay
    const first = await enrol({ csr: registered.csr });
    assert.equal(first.statusCode, 201, first.body);
    assertProblem(await enrol({ csr: registered.csr }), 409, 'enrolment.request_replayed');
    // an enrolled device enrols again with a new request of its key (a factory reset keeps the key)
    const again = await enrol({ csr: anotherRequest(registered, '/CN=SN-2001') });
    assert.equal(again.statusCode, 201, again.body);
    assert.equal(again.json().device_id, first.json().device_id);
    // another key for the enrolled serial, even with a token: only after an operator resets it
    const token2 = (await api('POST', '/enrolment-tokens', {})).json().token;
    assertProblem(await enrol({ csr: deviceRequest('/CN=SN-2001').csr, token: token2 }), 403, 'enrolment.key_mismatch');
  });

  test('suspend, resume, reset and revoke: the device is refused at once, certificates are revoked, and a reset device enrols again', async () => {
    const device = deviceRequest('/CN=SN-3001');
    const reg = (await api('POST', '/registrations', { serial: 'SN-3001', public_key: device.publicKey })).json();
    const e = (await enrol({ csr: device.csr })).json();
    assert.equal(await accepted(e.device_id, e.serial), true);

    assert.equal((await api('POST', `/registrations/${reg.id}/suspend`)).json().state, 'suspended');
    assert.equal(await accepted(e.device_id, e.serial), false, 'a suspended device is refused');
    // its secret-based access too: suspension is the device's
    assert.equal((await t.platform.authorizer.identify({ kind: 'certificate', deviceId: e.device_id })).ok, false);
    assertProblem(await enrol({ csr: anotherRequest(device, '/CN=SN-3001') }), 403, 'enrolment.registration_blocked');
    assertProblem(await api('POST', `/registrations/${reg.id}/suspend`), 409, 'registration.state');
    assert.equal((await api('POST', `/registrations/${reg.id}/resume`)).json().state, 'enrolled');
    assert.equal(await accepted(e.device_id, e.serial), true);

    // one certificate revoked: that certificate is refused, the CRL lists it
    const revoked = await api('POST', `/certificates/${e.serial}/revoke`, { reason: 'keyCompromise' });
    assert.deepEqual([revoked.json().status, revoked.json().revocation_reason], ['revoked', 'keyCompromise']);
    assert.equal(await accepted(e.device_id, e.serial), false);
    const crl = await t.request('GET', `/pki/orgs/${org}/crl`);
    assert.equal(crl.statusCode, 200);
    assert.equal(crl.headers['content-type'], 'application/pkix-crl');
    writeFileSync(join(device.dir, 'crl.der'), crl.rawPayload);
    writeFileSync(join(device.dir, 'issuing.pem'), e.chain[0]);
    const listed = spawnSync('openssl', ['crl', '-inform', 'DER', '-in', 'crl.der', '-CAfile', 'issuing.pem', '-noout', '-text'], { cwd: device.dir, encoding: 'utf8' });
    assert.equal(listed.status, 0, listed.stderr);
    assert.match(listed.stdout + listed.stderr, /verify OK/);
    assert.match(listed.stdout.toLowerCase(), new RegExp(e.serial.replace(/^0+/, '')));

    // reset: pending again, every certificate revoked, the key forgotten; a new key enrols with a token
    const renewed = (await enrol({ csr: anotherRequest(device, '/CN=SN-3001') })).json();
    assert.equal(await accepted(e.device_id, renewed.serial), true);
    assert.equal((await api('POST', `/registrations/${reg.id}/reset`)).json().state, 'pending');
    assert.equal(await accepted(e.device_id, renewed.serial), false);
    assert.equal((await api('GET', `/certificates/${renewed.serial}`)).json().revocation_reason, 'superseded');
    assertProblem(await enrol({ csr: anotherRequest(device, '/CN=SN-3001') }), 403, 'enrolment.not_registered');
    const replacement = deviceRequest('/CN=SN-3001');
    const token = (await api('POST', '/enrolment-tokens', {})).json().token;
    const reEnrolled = await enrol({ csr: replacement.csr, token });
    assert.equal(reEnrolled.statusCode, 201, reEnrolled.body);
    assert.equal(reEnrolled.json().device_id, e.device_id, 'the same device, with a new key');
    assert.equal((await api('GET', `/registrations/${reg.id}`)).json().key_fingerprint, replacement.fingerprint);

    // revoke for good: refused, and it cannot enrol again
    assert.equal((await api('POST', `/registrations/${reg.id}/revoke`)).json().state, 'revoked');
    assertProblem(await api('POST', `/registrations/${reg.id}/reset`), 409, 'registration.state');
    assertProblem(await enrol({ csr: anotherRequest(replacement, '/CN=SN-3001') }), 403, 'enrolment.registration_blocked');
    assertProblem(await api('DELETE', `/registrations/${(await api('GET', '/registrations?state=enrolled')).json().registrations[0].id}`), 409, 'registration.state');
    assert.equal((await api('DELETE', `/registrations/${reg.id}`)).statusCode, 204);
    assertProblem(await api('GET', `/registrations/${reg.id}`), 404, 'registration.not_found');
  });

  test('bulk registration is all or nothing: a serial taken or given twice is named', async () => {
    const ok = await api('POST', '/registrations/bulk', { registrations: [{ serial: 'B-1' }, { serial: 'B-2', model: 'm' }] });
    assert.equal(ok.statusCode, 201, ok.body);
    assert.equal(ok.json().registrations.length, 2);
    const twice = problem(await api('POST', '/registrations/bulk', { registrations: [{ serial: 'B-3' }, { serial: 'B-3' }] }), 409, 'registration.serial_taken');
    assert.deepEqual(twice.serials, ['B-3']);
    const taken = problem(await api('POST', '/registrations/bulk', { registrations: [{ serial: 'B-4' }, { serial: 'B-1' }] }), 409, 'registration.serial_taken');
    assert.deepEqual(taken.serials, ['B-1']);
    assert.equal((await api('GET', '/registrations?serial=B-4')).json().total, 0);
    assertProblem(await api('POST', '/registrations', { serial: 'has space' }), 400, 'request.invalid');
    assertProblem(await api('POST', '/registrations', { serial: 'B-9', public_key: 'not a key' }), 400, 'request.invalid');
    assertProblem(await api('POST', '/registrations', { serial: 'B-9', channel_ids: ['0195f0c8-0000-7000-8000-00000000dead'] }), 404, 'channel.not_found');
  });

  test('a flood of enrolment attempts from one address is refused with 429 and Retry-After, before any work; another address is not', async () => {
    const flood = await startTestPlatform({ enrolmentMaxPerAddress: 3 });
    try {
      const csr = deviceRequest('/CN=flood').csr;
      const from = (ip: string) => flood.app.inject({ method: 'POST', url: '/enrol', payload: { csr }, remoteAddress: ip });
      for (let i = 0; i < 3; i++) assertProblem(await from('10.0.0.1'), 403, 'enrolment.not_registered');
      const limited = await from('10.0.0.1');
      assertProblem(limited, 429, 'enrolment.rate_limited');
      assert.ok(Number(limited.headers['retry-after']) > 0 && Number(limited.headers['retry-after']) <= 60);
      assertProblem(await from('10.0.0.2'), 403, 'enrolment.not_registered');
      flood.clock.advance(60_000);
      assertProblem(await from('10.0.0.1'), 403, 'enrolment.not_registered');
    } finally {
      await flood.close();
    }
  });

  test('a key registered twice (another organization may know a public key) does not enrol without a token', async () => {
    const device = deviceRequest('/CN=SN-5001');
    await api('POST', '/registrations', { serial: 'SN-5001', public_key: device.publicKey });
    const other = (await t.request('POST', '/orgs', { token: alice.token, body: { name: 'other' } })).json().id;
    await t.request('POST', `/orgs/${other}/registrations`, { token: alice.token, body: { serial: 'SN-5001', public_key: device.fingerprint } });
    assertProblem(await enrol({ csr: device.csr }), 403, 'enrolment.not_registered');
    const token = (await api('POST', '/enrolment-tokens', {})).json().token;
    const res = await enrol({ csr: anotherRequest(device, '/CN=SN-5001'), token });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json().org_id, org);
  });

  test('a platform started on the database with another server key refuses to start, naming the setting: the CA key is stored under the first', async () => {
    const handle = await anotherHandle(t.platform.db);
    try {
      await assert.rejects(createPlatform(t.platform.config, { db: handle, clock: t.clock, log: createLogger('silent'), key: randomBytes(32) }), (e: unknown) => e instanceof ConfigError && e.setting === 'FLEETWIRE_SECRET_KEY');
    } finally {
      await handle.close();
    }
  });

  test('the CRL of an organization that issued nothing, or of none, is not found; the CA is the organization\u2019s', async () => {
    assertProblem(await t.request('GET', '/pki/orgs/0195f0c8-0000-7000-8000-00000000dead/crl'), 404, 'org.not_found');
    const ca = (await api('GET', '/ca')).json();
    assert.match(ca.issuing, /BEGIN CERTIFICATE/);
    assert.notEqual(ca.issuing, ca.root);
  });
});

describe('the OCSP responder, asked by openssl ocsp', () => {
  let t: TestPlatform;
  let token: string;
  let org: string;
  let url: string;

  before(async () => {
    t = await startTestPlatform();
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(t.app.server.address() as { port: number }).port}`;
    token = (await t.user('ocsp@example.com')).token;
    org = (await t.request('POST', '/orgs', { token, body: { name: 'ocsp' } })).json().id;
  });
  after(() => t.close());

  /** A device enrolled with a token: its folder holds device.pem, issuing.pem and root.pem. */
  const enrolled = async (serial: string) => {
    const device = deviceRequest(`/serialNumber=${serial}`);
    const enrolment = (await t.request('POST', `/orgs/${org}/enrolment-tokens`, { token, body: {} })).json().token;
    const e = (await t.request('POST', '/enrol', { body: { csr: device.csr, token: enrolment } })).json();
    writeFileSync(join(device.dir, 'device.pem'), e.certificate);
    writeFileSync(join(device.dir, 'issuing.pem'), e.chain[0]);
    writeFileSync(join(device.dir, 'root.pem'), e.chain[1]);
    return { dir: device.dir, serial: e.serial as string };
  };
  /**
   * What openssl ocsp says of the certificate (it checks the answer's signature against the root,
   * and the nonce). Asynchronously: the platform answering it runs in this process.
   */
  const ask = (dir: string, extra: string[] = [], orgId = org) =>
    promisify(execFile)('openssl', ['ocsp', '-issuer', 'issuing.pem', '-cert', 'device.pem', '-CAfile', 'root.pem', '-url', `${url}/pki/orgs/${orgId}/ocsp`, ...extra], { cwd: dir, encoding: 'utf8', timeout: 15_000 });

  test('good, then revoked with its reason and time; the answer is signed by the issuing CA and carries the nonce', async () => {
    const d = await enrolled('OC-1');
    const good = await ask(d.dir);
    assert.match(good.stdout, /device\.pem: good/);
    assert.match(good.stderr, /Response verify OK/);
    assert.doesNotMatch(good.stderr + good.stdout, /WARNING: no nonce/);
    await t.request('POST', `/orgs/${org}/certificates/${d.serial}/revoke`, { token, body: { reason: 'keyCompromise' } });
    const revoked = await ask(d.dir);
    assert.match(revoked.stdout, /device\.pem: revoked/);
    assert.match(revoked.stdout, /Reason: keyCompromise/);
    assert.match(revoked.stdout, /Revocation Time:/);
  });

  test('the GET form, a serial it never issued (unknown), another organization, and a malformed request', async () => {
    const d = await enrolled('OC-2');
    // the GET form: openssl builds the request, curl-like fetch sends it base64 in the path
    execFileSync('openssl', ['ocsp', '-issuer', 'issuing.pem', '-cert', 'device.pem', '-no_nonce', '-reqout', 'req.der'], { cwd: d.dir, stdio: 'ignore' });
    const der = readFileSync(join(d.dir, 'req.der'));
    const got = await fetch(`${url}/pki/orgs/${org}/ocsp/${encodeURIComponent(der.toString('base64'))}`);
    assert.equal(got.headers.get('content-type'), 'application/ocsp-response');
    writeFileSync(join(d.dir, 'resp.der'), Buffer.from(await got.arrayBuffer()));
    const read = spawnSync('openssl', ['ocsp', '-respin', 'resp.der', '-issuer', 'issuing.pem', '-cert', 'device.pem', '-CAfile', 'root.pem'], { cwd: d.dir, encoding: 'utf8' });
    assert.match(read.stdout, /device\.pem: good/, read.stderr);

    const unknown = await ask(d.dir, ['-serial', '0x0123456789abcdef']);
    assert.match(unknown.stdout, /0x0123456789ABCDEF: unknown/i, unknown.stderr);

    const other = (await t.request('POST', '/orgs', { token, body: { name: 'other' } })).json().id;
    await enrolledIn(other);
    // another organization's responder does not answer for it: unknown, signed by a CA that did not issue it (openssl trusts it only told not to verify)
    const elsewhere = await ask(d.dir, ['-noverify'], other);
    assert.match(elsewhere.stdout, /device\.pem: unknown/);
    await assert.rejects(ask(d.dir, [], other), /Command failed/, 'and openssl does not take its signature for the issuer\'s');

    const bad = await t.request('POST', `/pki/orgs/${org}/ocsp`, { body: Buffer.from('not der'), headers: { 'content-type': 'application/ocsp-request' } });
    assert.equal(bad.statusCode, 200);
    assert.deepEqual([...bad.rawPayload], [0x30, 0x03, 0x0a, 0x01, 0x01], 'OCSPResponse malformedRequest');
    assertProblem(await t.request('POST', '/pki/orgs/0195f0c8-0000-7000-8000-00000000dead/ocsp', { body: der, headers: { 'content-type': 'application/ocsp-request' } }), 404, 'org.not_found');
  });

  /** Makes the organization's issuing CA, by enrolling one device there. */
  const enrolledIn = async (orgId: string) => {
    const device = deviceRequest('/serialNumber=OC-OTHER');
    const enrolment = (await t.request('POST', `/orgs/${orgId}/enrolment-tokens`, { token, body: {} })).json().token;
    assert.equal((await t.request('POST', '/enrol', { body: { csr: device.csr, token: enrolment } })).statusCode, 201);
  };
});
