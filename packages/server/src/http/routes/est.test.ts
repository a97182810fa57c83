// EST (RFC 7030) against real openssl: the requests are made by `openssl req`, the answers read by
// `openssl base64 -d | openssl pkcs7 -print_certs` and checked by `openssl verify`, as a device
// maker would do by hand. The last test runs the documented commands, curl included, word for word.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import type { LightMyRequestResponse } from 'fastify';
import { startTestPlatform, type TestPlatform } from '../../../test/helpers/platform.js';
import { assertProblem } from '../../../test/helpers/problem.js';
import { estBodyLimit } from './est.js';

const shell = promisify(execFile);

type TestUser = Awaited<ReturnType<TestPlatform['user']>>;

/** The documented commands: the EST section's sh blocks. */
const snippetFile = new URL('../../../../../docs/identity.md', import.meta.url);
const snippetSection = '## EST';

const folders: string[] = [];
function folder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwire-est-'));
  folders.push(dir);
  return dir;
}

const openssl = (args: string[], opts: { input?: string | Buffer; cwd?: string } = {}) => execFileSync('openssl', args, { ...opts, stdio: ['pipe', 'pipe', 'pipe'] });

/** A new key and its certificate request as EST sends it: DER, base64 by openssl. */
function newRequest(subject: string, dir = folder()): { dir: string; base64: string; der: Buffer } {
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'device.key', '-subj', subject, '-outform', 'DER', '-out', 'device.der'], { cwd: dir });
  const der = readFileSync(join(dir, 'device.der'));
  return { dir, der, base64: openssl(['base64', '-in', 'device.der'], { cwd: dir }).toString('latin1') };
}

/** Another request of the key in `dir`. */
function againRequest(dir: string, subject: string): Buffer {
  return openssl(['req', '-new', '-key', 'device.key', '-subj', subject, '-outform', 'DER'], { cwd: dir });
}

/** The certificates (PEM) of a base64 certs-only PKCS#7, as openssl reads them. */
function certificatesOf(base64: string): string[] {
  const der = openssl(['base64', '-d'], { input: base64 });
  const text = openssl(['pkcs7', '-inform', 'DER', '-print_certs'], { input: der }).toString('latin1');
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? [];
}

const subjectOf = (pem: string) => openssl(['x509', '-noout', '-subject'], { input: pem }).toString().trim();
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

function assertCertsOnly(res: LightMyRequestResponse): void {
  assert.equal(res.statusCode, 200, res.body);
  assert.equal(res.headers['content-type'], 'application/pkcs7-mime; smime-type=certs-only');
  assert.equal(res.headers['content-transfer-encoding'], 'base64');
}

describe('EST (RFC 7030): enrolment with openssl bodies', () => {
  let t: TestPlatform;
  let alice: TestUser;
  let org: string;

  const api = (method: 'GET' | 'POST', path: string, body?: unknown) => t.request(method, `/orgs/${org}${path}`, { token: alice.token, ...(body !== undefined ? { body } : {}) });
  const newToken = async () => (await api('POST', '/enrolment-tokens', {})).json().token as string;
  const enrol = (path: string, body: string | Buffer, headers: Record<string, string> = {}) =>
    t.request('POST', `/.well-known/est/${path}`, { body, headers: { 'content-type': 'application/pkcs10', 'content-transfer-encoding': 'base64', ...headers } });
  const certificates = async () => (await api('GET', '/certificates?limit=1000')).json().total as number;

  before(async () => {
    t = await startTestPlatform();
    alice = await t.user('alice@example.com');
    org = (await t.request('POST', '/orgs', { token: alice.token, body: { name: 'fleet' } })).json().id;
  });
  after(async () => {
    await t.close();
    for (const dir of folders) rmSync(dir, { recursive: true, force: true });
  });

  test('cacerts is the platform root, a certs-only PKCS#7 in base64 that openssl reads', async () => {
    const res = await t.request('GET', '/.well-known/est/cacerts');
    assertCertsOnly(res);
    const certs = certificatesOf(res.body);
    assert.equal(certs.length, 1);
    assert.equal(certs[0], (await t.platform.identity.root()).certificatePem);
  });

  test("an organization's cacerts is its issuing CA then the root, once it has one; 404 before, and for a made-up or malformed label", async () => {
    const other = (await t.request('POST', '/orgs', { token: alice.token, body: { name: 'new' } })).json().id as string;
    assertProblem(await t.request('GET', `/.well-known/est/${other}/cacerts`), 404, 'org.not_found');
    assertProblem(await t.request('GET', `/.well-known/est/${randomUUID()}/cacerts`), 404, 'org.not_found');
    assertProblem(await t.request('GET', '/.well-known/est/not-an-org/cacerts'), 404, 'org.not_found');
    const ca = (await t.request('GET', `/orgs/${other}/ca`, { token: alice.token })).json();
    const res = await t.request('GET', `/.well-known/est/${other}/cacerts`);
    assertCertsOnly(res);
    assert.deepEqual(certificatesOf(res.body), [ca.issuing, ca.root]);
  });

  test('a device enrols with a base64 DER request and the token as the Basic password: openssl verifies the certificate against cacerts; the token is spent', async () => {
    const token = await newToken();
    const device = newRequest('/CN=EST-1');
    const res = await enrol('simpleenroll', device.base64, { authorization: basic('EST-1', token) });
    assertCertsOnly(res);
    const certs = certificatesOf(res.body);
    assert.equal(certs.length, 1, 'the issued certificate only (RFC 7030 §4.2.3)');
    const chain = certificatesOf((await t.request('GET', `/.well-known/est/${org}/cacerts`)).body);
    writeFileSync(join(device.dir, 'device.pem'), certs[0]!);
    writeFileSync(join(device.dir, 'issuing.pem'), chain[0]!);
    writeFileSync(join(device.dir, 'root.pem'), chain[1]!);
    const verify = spawnSync('openssl', ['verify', '-purpose', 'sslclient', '-CAfile', 'root.pem', '-untrusted', 'issuing.pem', 'device.pem'], { cwd: device.dir, encoding: 'utf8' });
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
    // the certificate is of the device's own key
    assert.equal(openssl(['x509', '-in', 'device.pem', '-noout', '-pubkey'], { cwd: device.dir }).toString(), openssl(['pkey', '-in', 'device.key', '-pubout'], { cwd: device.dir }).toString());
    const registration = (await api('GET', '/registrations?serial=EST-1')).json().registrations[0];
    assert.equal(registration.state, 'enrolled');
    assert.match(subjectOf(certs[0]!), new RegExp(registration.device_id));
    const events = (await api('GET', '/identity-events?outcome=ok&limit=1000')).json().events as { action: string; registration_id: string }[];
    assert.ok(events.some((e) => e.action === 'enrol' && e.registration_id === registration.id));

    // the token again, for another device: spent
    const before = await certificates();
    const replayed = await enrol('simpleenroll', newRequest('/CN=EST-2').base64, { authorization: basic('EST-2', token) });
    assertProblem(replayed, 401, 'enrolment.token_used');
    assert.equal(replayed.headers['www-authenticate'], 'Basic realm="fleetwire est"');
    const unknown = await enrol('simpleenroll', newRequest('/CN=EST-2').base64, { authorization: basic('', 'fwe_not-a-token') });
    assertProblem(unknown, 401, 'enrolment.token_invalid');
    assert.equal(unknown.headers['www-authenticate'], 'Basic realm="fleetwire est"');
    assert.equal(await certificates(), before, 'refusals issue nothing');
  });

  test("under another organization's label a token or a registered key is unknown, and stays unspent", async () => {
    const other = (await t.request('POST', '/orgs', { token: alice.token, body: { name: 'elsewhere' } })).json().id as string;
    const token = await newToken();
    const device = newRequest('/CN=EST-LABEL');
    assertProblem(await enrol(`${other}/simpleenroll`, device.base64, { authorization: basic('', token) }), 401, 'enrolment.token_invalid');
    assertCertsOnly(await enrol(`${org}/simpleenroll`, device.base64, { authorization: basic('', token) }));
    // a registered key of this organization, under the other's label
    const keyed = newRequest('/CN=EST-KEYED');
    const publicKey = openssl(['pkey', '-in', 'device.key', '-pubout'], { cwd: keyed.dir }).toString();
    assert.equal((await api('POST', '/registrations', { serial: 'EST-KEYED', public_key: publicKey })).statusCode, 201);
    assertProblem(await enrol(`${other}/simpleenroll`, keyed.base64), 403, 'enrolment.not_registered');
    assertCertsOnly(await enrol(`${org}/simpleenroll`, keyed.base64));
  });

  test('without credentials an unregistered key is refused (403); a registered key enrols without any, in DER too, and again by simplereenroll', async () => {
    const device = newRequest('/CN=EST-10');
    const refused = await enrol('simpleenroll', device.base64);
    assertProblem(refused, 403, 'enrolment.not_registered');
    assert.equal(refused.headers['www-authenticate'], undefined, 'a 403 is no challenge');

    const publicKey = openssl(['pkey', '-in', 'device.key', '-pubout'], { cwd: device.dir }).toString();
    assert.equal((await api('POST', '/registrations', { serial: 'EST-10', public_key: publicKey })).statusCode, 201);
    const first = await enrol('simpleenroll', device.base64);
    assertCertsOnly(first);
    const [cert] = certificatesOf(first.body);
    // RFC 8951 §3.2 asks servers to take what clients send: the DER itself, here under a label
    const again = await enrol(`${org}/simplereenroll`, againRequest(device.dir, '/CN=EST-10'), { 'content-transfer-encoding': 'binary' });
    assertCertsOnly(again);
    const [renewed] = certificatesOf(again.body);
    assert.notEqual(renewed, cert, 'a new certificate');
    assert.equal(subjectOf(renewed!), subjectOf(cert!), 'of the same device');
    const { device_id: deviceId } = (await api('GET', '/registrations?serial=EST-10')).json().registrations[0];
    const issued = (await api('GET', `/certificates?device_id=${deviceId}`)).json().certificates as { status: string }[];
    assert.deepEqual(issued.map((c) => c.status), ['active', 'active']);
  });

  test('a body that is no PKCS#10 is 400, another content type 415, over 16 KiB 413, and a credential other than Basic 401: the token still enrols afterwards', async () => {
    const token = await newToken();
    const auth = { authorization: basic('EST-20', token) };
    const garbage = await enrol('simpleenroll', Buffer.from('not a request').toString('base64'), auth);
    assertProblem(garbage, 400, 'enrolment.csr_invalid');
    assert.equal(garbage.json().reason, 'csr_malformed');
    assertProblem(await enrol('simpleenroll', '', auth), 400, 'enrolment.csr_invalid');
    const device = newRequest('/CN=EST-20');
    assertProblem(await enrol('simpleenroll', JSON.stringify({ csr: device.base64 }), { ...auth, 'content-type': 'application/json' }), 415, 'request.unsupported_media_type');
    assertProblem(await enrol('simpleenroll', 'A'.repeat(estBodyLimit + 1), auth), 413, 'request.too_large');
    const bearer = await enrol('simpleenroll', device.base64, { authorization: `Bearer ${token}` });
    assertProblem(bearer, 401, 'auth.invalid_credentials');
    assert.equal(bearer.headers['www-authenticate'], 'Basic realm="fleetwire est"');
    assertProblem(await enrol('not-an-org/simpleenroll', device.base64, auth), 404, 'org.not_found');
    assertCertsOnly(await enrol('simpleenroll', device.base64, auth));
  });

  test('csrattrs names an ecPublicKey on P-256 and ecdsa-with-SHA256, as openssl asn1parse reads it', async () => {
    for (const path of ['/.well-known/est/csrattrs', `/.well-known/est/${org}/csrattrs`]) {
      const res = await t.request('GET', path);
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.headers['content-type'], 'application/csrattrs');
      const parsed = openssl(['asn1parse', '-inform', 'DER'], { input: openssl(['base64', '-d'], { input: res.body }) }).toString();
      const objects = [...parsed.matchAll(/OBJECT\s+:(\S+)/g)].map((m) => m[1]);
      assert.deepEqual(objects, ['ecdsa-with-SHA256', 'id-ecPublicKey', 'prime256v1']);
    }
  });

  test('the documented openssl and curl commands enrol and re-enrol a device against a listening platform', async () => {
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = t.app.server.address() as { port: number };
    const doc = readFileSync(snippetFile, 'utf8');
    const section = doc.slice(doc.indexOf(snippetSection)).split(/\n## /)[0]!;
    const commands = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]).join('\n');
    assert.match(commands, /simpleenroll/);
    const dir = folder();
    const env = { ...process.env, FLEETWIRE: `http://127.0.0.1:${port}`, ORG: org, TOKEN: await newToken(), SERIAL: 'EST-30' };
    // asynchronously: the platform answering curl runs in this process
    const run = await shell('bash', ['-euo', 'pipefail', '-c', commands], { cwd: dir, env, timeout: 30_000 }).catch((e: Error & { stdout: string; stderr: string }) => assert.fail(`${e.message}\n${e.stdout}\n${e.stderr}`));
    assert.match(run.stdout, /device\.pem: OK/);
    const registration = (await api('GET', '/registrations?serial=EST-30')).json().registrations[0];
    assert.equal(registration.state, 'enrolled');
    assert.equal((await api('GET', `/certificates?device_id=${registration.device_id}`)).json().total, 2, 'enrolled, then enrolled again');
    assert.match(subjectOf(readFileSync(join(dir, 'device.pem'), 'utf8')), new RegExp(registration.device_id));
  });
});
