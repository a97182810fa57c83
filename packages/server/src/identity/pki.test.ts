// test-database: none
// The certificate authority against the real openssl: what it issues must verify there, what it refuses
// must be refused for the right reason, and a TLS handshake must work with what it makes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import {
  CsrError,
  PkiError,
  createCsr,
  certificateFacts,
  certsOnly,
  createCrl,
  decryptPrivateKey,
  derToPem,
  encryptPrivateKey,
  generateIssuing,
  generateKeyPair,
  generateRoot,
  importRoot,
  issueDeviceCertificate,
  issueServerCertificate,
  loadCa,
  pemToDer,
  privateKeyPem,
  spkiOf,
  verifiedBy,
  verifyCsr,
  type CaKeyPair,
  type CsrRefusal,
} from './pki.js';

let dir: string;
let root: CaKeyPair;
let issuing: CaKeyPair;

/** Runs openssl in the temp folder; never throws, so a test can assert a failure too. */
function openssl(args: string[], input?: string): { ok: boolean; out: string } {
  const run = spawnSync('openssl', args, { cwd: dir, input, encoding: 'utf8' });
  return { ok: run.status === 0, out: `${run.stdout}${run.stderr}` };
}

function mustOpenssl(args: string[]): string {
  const run = openssl(args);
  assert.ok(run.ok, `openssl ${args.join(' ')} failed:\n${run.out}`);
  return run.out;
}

const flipBit = (bytes: Buffer, at: number) => bytes.writeUInt8(bytes.readUInt8(at) ^ 0x01, at);
const file = (name: string) => join(dir, name);
const write = (name: string, text: string | Uint8Array) => writeFileSync(file(name), text);

/** A CSR made by openssl with a new key; `newkey` and `pkeyopt` as openssl req takes them. */
function opensslCsr(name: string, newkey: string[], extra: string[] = []): string {
  mustOpenssl(['req', '-new', ...newkey, '-nodes', '-subj', '/CN=x', '-keyout', `${name}.key`, '-out', `${name}.csr`, ...extra]);
  return readFileSync(file(`${name}.csr`), 'utf8');
}
const p256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];

async function refusedWith(input: string | Uint8Array, code: CsrRefusal) {
  await assert.rejects(verifyCsr(input), (error: unknown) => {
    assert.ok(error instanceof CsrError, `not a CsrError: ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetwire-pki-'));
  root = await generateRoot({ commonName: 'Fleetwire Test Root' });
  issuing = await generateIssuing(root, { orgId: 'org-1', commonName: 'org-1 issuing CA' });
  write('root.pem', root.certificatePem);
  write('issuing.pem', issuing.certificatePem);
});

after(() => rmSync(dir, { recursive: true, force: true }));

describe('enrolment from an openssl CSR', () => {
  test('a P-256 CSR verifies, and the certificate issued from it chains to the root through the issuing CA', async () => {
    const csr = await verifyCsr(opensslCsr('device', p256));
    assert.equal(csr.subjectCommonName, 'x');
    assert.equal(csr.serialNumber, undefined);
    assert.equal(csr.fingerprint, createHash('sha256').update(csr.spki).digest('hex'));
    const openSslSpki = mustOpenssl(['pkey', '-in', 'device.key', '-pubout', '-outform', 'DER', '-out', 'device.spki']);
    assert.equal(openSslSpki, '');
    assert.deepEqual(Buffer.from(csr.spki), readFileSync(file('device.spki')), 'the SPKI is the key openssl made');

    const issued = await issueDeviceCertificate(issuing, csr.spki, { orgId: 'org-1', deviceId: 'dev-1' });
    write('device.pem', issued.pem);
    assert.match(mustOpenssl(['verify', '-CAfile', 'root.pem', '-untrusted', 'issuing.pem', '-purpose', 'sslclient', 'device.pem']), /device\.pem: OK/);

    const text = mustOpenssl(['x509', '-in', 'device.pem', '-noout', '-text', '-serial']);
    assert.match(text, /URI:urn:fleetwire:org:org-1:device:dev-1/);
    assert.match(text, /TLS Web Client Authentication/);
    assert.match(text, /Subject: O = org-1, CN = dev-1/);
    assert.match(text, /Issuer: O = org-1, CN = org-1 issuing CA/);
    assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature\n/);
    assert.match(text, /CA:FALSE/);
    assert.match(text, /X509v3 Authority Key Identifier/);
    assert.match(text, /X509v3 Subject Key Identifier/);
    assert.equal(/serial=([0-9A-F]+)/.exec(text)?.[1]?.toLowerCase(), issued.serial);

    const issuingText = mustOpenssl(['x509', '-in', 'issuing.pem', '-noout', '-text']);
    assert.match(issuingText, /CA:TRUE, pathlen:0/);
    assert.match(issuingText, /Certificate Sign, CRL Sign/);
    assert.match(issuingText, /Subject: O = org-1, CN = org-1 issuing CA/);
    assert.match(mustOpenssl(['verify', '-CAfile', 'root.pem', 'issuing.pem']), /issuing\.pem: OK/);
  });

  test('the issued certificate reads back with the device identity, its serial and the CSR key fingerprint', async () => {
    const csr = await verifyCsr(opensslCsr('facts', p256));
    const now = new Date('2026-03-01T12:00:00Z');
    const issued = await issueDeviceCertificate(issuing, csr.spki, { orgId: 'org-1', deviceId: 'dev-2', now });
    const facts = await certificateFacts(issued.pem);
    assert.deepEqual(facts, {
      serial: issued.serial,
      fingerprint: issued.fingerprint,
      subjectCommonName: 'dev-2',
      organization: 'org-1',
      sanUris: ['urn:fleetwire:org:org-1:device:dev-2'],
      issuerCommonName: 'org-1 issuing CA',
      notBefore: new Date('2026-03-01T11:55:00Z'),
      notAfter: new Date('2026-05-30T12:00:00Z'),
      isCa: false,
      spkiFingerprint: csr.fingerprint,
    });
    assert.deepEqual(facts, await certificateFacts(issued.der), 'DER reads the same as PEM');
    assert.equal(issued.fingerprint, createHash('sha256').update(issued.der).digest('hex'));
    assert.deepEqual(issued.notBefore, facts.notBefore);
    assert.deepEqual(issued.notAfter, facts.notAfter);
    assert.equal((await certificateFacts(issuing.certificatePem)).isCa, true);
  });

  test('serials are 32 hex digits of a positive 128-bit number, different each time', async () => {
    const { spki } = await verifyCsr(opensslCsr('serials', p256));
    const serials = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const issued = await issueDeviceCertificate(issuing, spki, { orgId: 'org-1', deviceId: `d${i}` });
      assert.match(issued.serial, /^[0-9a-f]{32}$/);
      assert.notEqual(issued.serial.slice(0, 2), '00');
      assert.equal((await certificateFacts(issued.der)).serial, issued.serial);
      serials.add(issued.serial);
    }
    assert.equal(serials.size, 50);
  });

  test('validity never outlasts the issuer: issuing CA within the root, device within the issuing CA', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const shortRoot = await generateRoot({ commonName: 'short root', validityDays: 30, now });
    const org = await generateIssuing(shortRoot, { orgId: 'o', commonName: 'o CA', now });
    const rootFacts = await certificateFacts(shortRoot.certificatePem);
    const orgFacts = await certificateFacts(org.certificatePem);
    assert.deepEqual(orgFacts.notAfter, rootFacts.notAfter);
    const { spki } = await verifyCsr(opensslCsr('capped', p256));
    const device = await issueDeviceCertificate(org, spki, { orgId: 'o', deviceId: 'd', validityDays: 365, now });
    assert.deepEqual(device.notAfter, orgFacts.notAfter);

    const defaultRoot = await certificateFacts(root.certificatePem);
    const years = (defaultRoot.notAfter.getTime() - defaultRoot.notBefore.getTime()) / (365.25 * 86_400_000);
    assert.ok(years > 19.9 && years < 20.1, `root lasts ${years} years`);
    const issuingFacts = await certificateFacts(issuing.certificatePem);
    const issuingYears = (issuingFacts.notAfter.getTime() - issuingFacts.notBefore.getTime()) / (365.25 * 86_400_000);
    assert.ok(issuingYears > 9.9 && issuingYears < 10.1, `issuing CA lasts ${issuingYears} years`);
  });

  test('certificates past 2049 use GeneralizedTime and openssl reads the dates alike', async () => {
    const now = new Date('2060-06-15T08:30:00Z');
    const later = await generateRoot({ commonName: 'later root', now, validityDays: 10 });
    write('later.pem', later.certificatePem);
    const text = mustOpenssl(['x509', '-in', 'later.pem', '-noout', '-dates']);
    assert.match(text, /notBefore=Jun 15 08:25:00 2060 GMT/);
    assert.match(text, /notAfter=Jun 25 08:30:00 2060 GMT/);
    assert.deepEqual((await certificateFacts(later.certificatePem)).notAfter, new Date('2060-06-25T08:30:00Z'));
  });

  test('EST bodies are accepted: base64 DER with line breaks, as text or bytes, and raw DER', async () => {
    const pem = opensslCsr('est', p256);
    const der = pemToDer(pem);
    const base64 = Buffer.from(der).toString('base64').replace(/(.{76})/g, '$1\r\n');
    const expected = (await verifyCsr(pem)).fingerprint;
    assert.equal((await verifyCsr(base64)).fingerprint, expected);
    assert.equal((await verifyCsr(Buffer.from(base64, 'latin1'))).fingerprint, expected);
    assert.equal((await verifyCsr(der)).fingerprint, expected);
  });

  test('the subject serialNumber attribute is read from the CSR', async () => {
    mustOpenssl(['req', '-new', ...p256, '-nodes', '-subj', '/CN=sensor/serialNumber=SN-0042', '-keyout', 'sn.key', '-out', 'sn.csr']);
    const csr = await verifyCsr(readFileSync(file('sn.csr'), 'utf8'));
    assert.equal(csr.subjectCommonName, 'sensor');
    assert.equal(csr.serialNumber, 'SN-0042');
  });
});

describe('CSR refusals', () => {
  test('an RSA key is refused as csr_key_type', async () => {
    await refusedWith(opensslCsr('rsa', ['-newkey', 'rsa:2048']), 'csr_key_type');
  });

  test('an Ed25519 key is refused as csr_key_type', async () => {
    await refusedWith(opensslCsr('ed', ['-newkey', 'ed25519']), 'csr_key_type');
  });

  test('a P-384 key is refused as csr_curve', async () => {
    await refusedWith(opensslCsr('p384', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384']), 'csr_curve');
  });

  test('a prime192v1 key is refused as csr_curve', async () => {
    await refusedWith(opensslCsr('p192', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime192v1']), 'csr_curve');
  });

  test('a P-256 key written with explicit curve parameters is refused as csr_curve', async () => {
    await refusedWith(opensslCsr('explicit', [...p256, '-pkeyopt', 'ec_param_enc:explicit']), 'csr_curve');
  });

  test('a CSR whose signature has one byte changed is refused as csr_signature', async () => {
    const der = Buffer.from(pemToDer(opensslCsr('tampered', p256)));
    await verifyCsr(der); // as made, it verifies
    flipBit(der, der.length - 1); // the last byte of s in the Ecdsa-Sig-Value
    await refusedWith(der, 'csr_signature');
  });

  test('a CSR whose subject was changed after signing is refused as csr_signature', async () => {
    const pem = opensslCsr('subject', p256);
    const der = Buffer.from(pemToDer(pem));
    const at = der.indexOf(Buffer.from('0603550403', 'hex')); // the CN attribute type
    der[at + 7] = 'y'.charCodeAt(0); // its one-letter value, 'x'
    await refusedWith(der, 'csr_signature');
  });

  test('garbage is refused as csr_malformed', async () => {
    await refusedWith('hello, this is not a certificate request', 'csr_malformed');
    await refusedWith(randomBytes(300), 'csr_malformed');
    await refusedWith(Buffer.of(0x30, 0x82, 0x01), 'csr_malformed');
    await refusedWith('', 'csr_malformed');
    await refusedWith(root.certificatePem, 'csr_malformed');
  });

  test('a 5 KiB CSR is refused as csr_too_large', async () => {
    const names = Array.from({ length: 300 }, (_, i) => `DNS:host-${i}.devices.example.com`).join(',');
    const pem = opensslCsr('large', p256, ['-addext', `subjectAltName=${names}`]);
    const size = pemToDer(pem).length;
    assert.ok(size > 5 * 1024 && size < 16 * 1024, `the CSR is ${size} bytes`);
    await refusedWith(pem, 'csr_too_large');
    await refusedWith(pemToDer(pem), 'csr_too_large');
    assert.equal((await verifyCsr(pem, { maxBytes: 16 * 1024 })).subjectCommonName, 'x', 'a larger limit lets it through');
    await refusedWith('A'.repeat(1_000_000), 'csr_too_large');
  });

  test('a CSR asking for basicConstraints CA:TRUE is refused as csr_ca_requested', async () => {
    await refusedWith(opensslCsr('ca', p256, ['-addext', 'basicConstraints=critical,CA:TRUE']), 'csr_ca_requested');
  });

  test('a CSR asking for keyCertSign or cRLSign is refused as csr_ca_requested', async () => {
    await refusedWith(opensslCsr('kcs', p256, ['-addext', 'keyUsage=keyCertSign']), 'csr_ca_requested');
    await refusedWith(opensslCsr('crls', p256, ['-addext', 'keyUsage=digitalSignature,cRLSign']), 'csr_ca_requested');
  });

  test('a CSR asking for harmless extensions is accepted, and they are not copied into the certificate', async () => {
    const csr = await verifyCsr(
      opensslCsr('harmless', p256, ['-addext', 'basicConstraints=CA:FALSE', '-addext', 'keyUsage=digitalSignature,keyEncipherment', '-addext', 'subjectAltName=DNS:evil.example.com']),
    );
    const issued = await issueDeviceCertificate(issuing, csr.spki, { orgId: 'org-1', deviceId: 'dev-h' });
    write('harmless.pem', issued.pem);
    const text = mustOpenssl(['x509', '-in', 'harmless.pem', '-noout', '-text']);
    assert.doesNotMatch(text, /evil\.example\.com/);
    assert.doesNotMatch(text, /Key Encipherment/);
  });
});

describe('revocation lists', () => {
  test('openssl verifies the CRL, lists its serials, and refuses only the revoked certificate', async () => {
    const { spki } = await verifyCsr(opensslCsr('crl', p256));
    const revoked = await issueDeviceCertificate(issuing, spki, { orgId: 'org-1', deviceId: 'revoked' });
    const superseded = await issueDeviceCertificate(issuing, spki, { orgId: 'org-1', deviceId: 'superseded' });
    const good = await issueDeviceCertificate(issuing, spki, { orgId: 'org-1', deviceId: 'good' });
    write('revoked.pem', revoked.pem);
    write('good.pem', good.pem);
    const crl = await createCrl(
      issuing,
      [
        { serial: revoked.serial, revokedAt: new Date(Date.now() - 60_000), reason: 'keyCompromise' },
        { serial: superseded.serial, revokedAt: new Date(Date.now() - 60_000), reason: 'superseded' },
      ],
      { crlNumber: 7 },
    );
    write('crl.pem', crl.pem);
    assert.deepEqual(Buffer.from(pemToDer(crl.pem)), Buffer.from(crl.der));

    const text = mustOpenssl(['crl', '-in', 'crl.pem', '-CAfile', 'issuing.pem', '-noout', '-text']);
    assert.match(text, /verify OK/);
    assert.match(text, new RegExp(`Serial Number: ${revoked.serial.toUpperCase()}`));
    assert.match(text, new RegExp(`Serial Number: ${superseded.serial.toUpperCase()}`));
    assert.doesNotMatch(text, new RegExp(good.serial.toUpperCase()));
    assert.match(text, /Key Compromise/);
    assert.match(text, /Superseded/);
    assert.match(text, /X509v3 CRL Number:\s+7/);
    assert.match(text, /X509v3 Authority Key Identifier/);
    assert.match(text, /Issuer: O = org-1, CN = org-1 issuing CA/);

    const check = (name: string) => openssl(['verify', '-crl_check', '-CAfile', 'root.pem', '-untrusted', 'issuing.pem', '-CRLfile', 'crl.pem', name]);
    const refused = check('revoked.pem');
    assert.equal(refused.ok, false, refused.out);
    assert.match(refused.out, /certificate revoked/);
    const accepted = check('good.pem');
    assert.ok(accepted.ok, accepted.out);
  });

  test('an empty CRL verifies, and its next update is the hours asked for', async () => {
    const now = new Date('2026-04-01T00:00:00Z');
    const crl = await createCrl(issuing, [], { crlNumber: 1, now, nextUpdateHours: 6 });
    write('empty.crl', crl.der);
    const text = mustOpenssl(['crl', '-inform', 'DER', '-in', 'empty.crl', '-CAfile', 'issuing.pem', '-noout', '-text']);
    assert.match(text, /verify OK/);
    assert.match(text, /No Revoked Certificates/);
    assert.match(text, /Last Update: Apr {2}1 00:00:00 2026 GMT/);
    assert.match(text, /Next Update: Apr {2}1 06:00:00 2026 GMT/);
  });

  test('a CRL signed by another organization does not verify against this issuing CA', async () => {
    const other = await generateIssuing(root, { orgId: 'org-2', commonName: 'org-2 issuing CA' });
    write('other.crl', (await createCrl(other, [], { crlNumber: 1 })).pem);
    const run = openssl(['crl', '-in', 'other.crl', '-CAfile', 'issuing.pem', '-noout']);
    assert.doesNotMatch(run.out, /verify OK/);
  });
});

test('certsOnly is a PKCS#7 openssl reads the certificates from, in order', async () => {
  const p7 = certsOnly([pemToDer(issuing.certificatePem), pemToDer(root.certificatePem)]);
  write('certs.p7', p7);
  const text = mustOpenssl(['pkcs7', '-inform', 'DER', '-in', 'certs.p7', '-print_certs', '-noout']);
  const subjects = [...text.matchAll(/subject=(.*)/g)].map((m) => m[1]);
  assert.deepEqual(subjects, ['O = org-1, CN = org-1 issuing CA', 'CN = Fleetwire Test Root']);
  write('certs.p7.pem', derToPem(p7, 'PKCS7'));
  assert.match(mustOpenssl(['pkcs7', '-in', 'certs.p7.pem', '-print_certs', '-noout']), /CN = Fleetwire Test Root/);
  assert.match(mustOpenssl(['cms', '-cmsout', '-print', '-inform', 'DER', '-in', 'certs.p7']), /contentType: pkcs7-signedData/);
});

describe('CA keys at rest', () => {
  const kek = randomBytes(32);

  test('an encrypted key decrypts to the same key, and the loaded CA issues certificates that chain', async () => {
    const text = await encryptPrivateKey(issuing.privateKey, kek);
    assert.notEqual(await encryptPrivateKey(issuing.privateKey, kek), text, 'a fresh nonce each time');
    const key = await decryptPrivateKey(text, kek);
    assert.equal(key.extractable, true);
    assert.deepEqual(Buffer.from(await crypto.subtle.exportKey('pkcs8', key)), Buffer.from(await crypto.subtle.exportKey('pkcs8', issuing.privateKey)));

    const loaded = await loadCa(issuing.certificatePem, text, kek);
    const { spki } = await verifyCsr(opensslCsr('loaded', p256));
    const issued = await issueDeviceCertificate(loaded, spki, { orgId: 'org-1', deviceId: 'from-loaded' });
    write('loaded.pem', issued.pem);
    assert.match(mustOpenssl(['verify', '-CAfile', 'root.pem', '-untrusted', 'issuing.pem', 'loaded.pem']), /OK/);
  });

  test('a wrong key-encryption key and a flipped byte are both refused', async () => {
    const text = await encryptPrivateKey(issuing.privateKey, kek);
    await assert.rejects(decryptPrivateKey(text, randomBytes(32)), (e: unknown) => e instanceof PkiError && e.code === 'key_decrypt');
    const blob = Buffer.from(text, 'base64');
    for (const at of [0, 5, 40, blob.length - 1]) {
      const flipped = Buffer.from(blob);
      flipBit(flipped, at);
      await assert.rejects(decryptPrivateKey(flipped.toString('base64'), kek), PkiError, `byte ${at}`);
    }
    await assert.rejects(decryptPrivateKey(text, randomBytes(16)), (e: unknown) => e instanceof PkiError && e.code === 'kek_size');
  });

  test('loading a CA with the key of another refuses', async () => {
    const other = await generateIssuing(root, { orgId: 'org-3', commonName: 'org-3 issuing CA' });
    const text = await encryptPrivateKey(other.privateKey, kek);
    await assert.rejects(loadCa(issuing.certificatePem, text, kek), (e: unknown) => e instanceof PkiError && e.code === 'key_mismatch');
  });
});

describe('operator roots', () => {
  test('an openssl EC root with its SEC1 or PKCS#8 key imports, and issues a chain openssl verifies', async () => {
    mustOpenssl(['ecparam', '-genkey', '-name', 'prime256v1', '-noout', '-out', 'op.key']);
    assert.match(readFileSync(file('op.key'), 'utf8'), /BEGIN EC PRIVATE KEY/);
    mustOpenssl(['pkcs8', '-topk8', '-nocrypt', '-in', 'op.key', '-out', 'op.p8']);
    mustOpenssl(['req', '-x509', '-new', '-key', 'op.key', '-subj', '/CN=Operator Root', '-days', '3650', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'op.pem']);
    const pem = readFileSync(file('op.pem'), 'utf8');
    for (const keyFile of ['op.key', 'op.p8']) {
      const operator = await importRoot(pem, readFileSync(file(keyFile), 'utf8'));
      const org = await generateIssuing(operator, { orgId: 'org-op', commonName: 'org-op issuing CA' });
      const { spki } = await verifyCsr(opensslCsr('op-device', p256));
      write('op-issuing.pem', org.certificatePem);
      write('op-device.pem', (await issueDeviceCertificate(org, spki, { orgId: 'org-op', deviceId: 'd1' })).pem);
      assert.match(mustOpenssl(['verify', '-CAfile', 'op.pem', '-untrusted', 'op-issuing.pem', 'op-device.pem']), /op-device\.pem: OK/, keyFile);
    }
  });

  test('a key that is not the certificate’s, a non-CA certificate and a non-P-256 key are refused', async () => {
    mustOpenssl(['ecparam', '-genkey', '-name', 'prime256v1', '-noout', '-out', 'op2.key']);
    mustOpenssl(['ecparam', '-genkey', '-name', 'prime256v1', '-noout', '-out', 'stranger.key']);
    mustOpenssl(['req', '-x509', '-new', '-key', 'op2.key', '-subj', '/CN=Operator Root 2', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-out', 'op2.pem']);
    mustOpenssl(['req', '-x509', '-new', '-key', 'op2.key', '-subj', '/CN=leaf', '-days', '30', '-addext', 'basicConstraints=critical,CA:FALSE', '-out', 'leaf.pem']);
    mustOpenssl(['req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-keyout', 'p384root.key', '-subj', '/CN=P-384 root', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-out', 'p384root.pem']);
    const read = (name: string) => readFileSync(file(name), 'utf8');
    const refusedAs = (code: string) => (e: unknown) => e instanceof PkiError && e.code === code;
    await importRoot(read('op2.pem'), read('op2.key'));
    await assert.rejects(importRoot(read('op2.pem'), read('stranger.key')), refusedAs('key_mismatch'));
    await assert.rejects(importRoot(read('leaf.pem'), read('op2.key')), refusedAs('not_a_ca'));
    await assert.rejects(importRoot(read('p384root.pem'), read('p384root.key')), refusedAs('key_type'));
    await assert.rejects(importRoot(read('op2.pem'), 'not a key'), refusedAs('key_unreadable'));
  });
});

describe('verifiedBy', () => {
  test('holds for the issuing CA within validity, not for another CA nor outside validity', async () => {
    const { spki } = await verifyCsr(opensslCsr('vb', p256));
    const now = new Date();
    const issued = await issueDeviceCertificate(issuing, spki, { orgId: 'org-1', deviceId: 'vb', validityDays: 1, now });
    const other = await generateIssuing(root, { orgId: 'org-4', commonName: 'org-4 issuing CA' });
    assert.equal(await verifiedBy(issued.pem, issuing.certificatePem, now), true);
    assert.equal(await verifiedBy(issued.der, pemToDer(issuing.certificatePem), now), true);
    assert.equal(await verifiedBy(issuing.certificatePem, root.certificatePem, now), true);
    assert.equal(await verifiedBy(issued.pem, other.certificatePem, now), false);
    assert.equal(await verifiedBy(issued.pem, root.certificatePem, now), false);
    assert.equal(await verifiedBy(issued.pem, issuing.certificatePem, new Date(now.getTime() + 2 * 86_400_000)), false);
    assert.equal(await verifiedBy(issued.pem, issuing.certificatePem, new Date(now.getTime() - 3_600_000)), false);
    const forged = Buffer.from(issued.der);
    flipBit(forged, forged.length - 1);
    assert.equal(await verifiedBy(forged, issuing.certificatePem, now), false);
  });
});

describe('listener certificates', () => {
  let server: tls.Server | undefined;
  after(() => server?.close());

  test('a server certificate verifies for sslserver and serves a TLS handshake openssl and node accept', async () => {
    const keys = await generateKeyPair();
    const issued = await issueServerCertificate(issuing, await spkiOf(keys.publicKey), { dnsNames: ['localhost', 'broker.test'], ipAddresses: ['127.0.0.1', '::1'] });
    write('server.pem', issued.pem);
    assert.match(mustOpenssl(['verify', '-purpose', 'sslserver', '-CAfile', 'root.pem', '-untrusted', 'issuing.pem', 'server.pem']), /server\.pem: OK/);
    const text = mustOpenssl(['x509', '-in', 'server.pem', '-noout', '-text']);
    assert.match(text, /DNS:localhost, DNS:broker\.test, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1/);
    assert.match(text, /TLS Web Server Authentication/);
    assert.match(text, /Subject: CN = localhost/);

    const device = await verifyCsr(opensslCsr('tls-device', p256));
    const deviceKey = readFileSync(file('tls-device.key'), 'utf8');
    const deviceCert = (await issueDeviceCertificate(issuing, device.spki, { orgId: 'org-1', deviceId: 'dev-tls' })).pem;
    server = tls.createServer({ key: await privateKeyPem(keys.privateKey), cert: issued.pem + issuing.certificatePem, ca: root.certificatePem, requestCert: true, rejectUnauthorized: false }, (socket) => {
      socket.end(socket.authorized ? `hello ${socket.getPeerCertificate().subject.CN}\n` : `anonymous\n`);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;

    const sClient = await new Promise<string>((resolve) => {
      const child = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', file('root.pem'), '-verify_return_error', '-verify_hostname', 'localhost', '-servername', 'localhost'], (_error, stdout, stderr) =>
        resolve(stdout + stderr),
      );
      child.stdin?.end();
    });
    assert.match(sClient, /Verify return code: 0 \(ok\)/);

    // by IP address, and with the device certificate as the client's: the broker's mTLS
    const socket = tls.connect({ host: '127.0.0.1', port, ca: root.certificatePem, key: deviceKey, cert: deviceCert + issuing.certificatePem });
    await once(socket, 'secureConnect');
    assert.equal(socket.authorized, true, String(socket.authorizationError));
    let reply = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (reply += chunk));
    await once(socket, 'end');
    socket.destroy();
    assert.equal(reply, 'hello dev-tls\n');
  });

  test('a listener certificate signed by the root verifies against the root alone, with EKU serverAuth and the SANs asked for', async () => {
    const keys = await generateKeyPair();
    const issued = await issueServerCertificate(root, await spkiOf(keys.publicKey), { dnsNames: ['localhost', 'fleet-host'], ipAddresses: ['127.0.0.1', '::1', '2001:db8::7'], validityDays: 397 });
    write('listener.pem', issued.pem);
    assert.match(mustOpenssl(['verify', '-purpose', 'sslserver', '-CAfile', 'root.pem', 'listener.pem']), /listener\.pem: OK/);
    assert.match(mustOpenssl(['verify', '-purpose', 'sslserver', '-CAfile', 'root.pem', '-verify_hostname', 'fleet-host', 'listener.pem']), /OK/);
    assert.match(mustOpenssl(['verify', '-purpose', 'sslserver', '-CAfile', 'root.pem', '-verify_ip', '::1', 'listener.pem']), /OK/);
    assert.equal(openssl(['verify', '-purpose', 'sslserver', '-CAfile', 'root.pem', '-verify_hostname', 'elsewhere.example', 'listener.pem']).ok, false, 'a name it is not for');
    assert.equal(openssl(['verify', '-purpose', 'sslclient', '-CAfile', 'root.pem', 'listener.pem']).ok, false, 'no client certificate: serverAuth only');
    const text = mustOpenssl(['x509', '-in', 'listener.pem', '-noout', '-text']);
    assert.match(text, /X509v3 Extended Key Usage: \n\s+TLS Web Server Authentication\n/);
    assert.match(text, /DNS:localhost, DNS:fleet-host, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1, IP Address:2001:DB8:0:0:0:0:0:7/);
    assert.match(text, /CA:FALSE/);
    assert.equal(Math.round((issued.notAfter.getTime() - issued.notBefore.getTime()) / 86_400_000), 397);
    await assert.rejects(issueServerCertificate(root, await spkiOf(keys.publicKey), { dnsNames: ['localhost'], validityDays: 398 }), (e: unknown) => e instanceof PkiError && e.code === 'invalid_argument');
  });

  test('a server certificate without any name is refused', async () => {
    const keys = await generateKeyPair();
    await assert.rejects(issueServerCertificate(issuing, await spkiOf(keys.publicKey), { dnsNames: [] }), PkiError);
  });
});

test('a public key that is not P-256 is not certified', async () => {
  const rsa = await crypto.subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign', 'verify']);
  const spki = new Uint8Array(await crypto.subtle.exportKey('spki', rsa.publicKey));
  await assert.rejects(issueDeviceCertificate(issuing, spki, { orgId: 'org-1', deviceId: 'rsa' }), (e: unknown) => e instanceof PkiError && e.code === 'key_type');
});

test('enrolment rate: verifyCsr + issueDeviceCertificate (a note, not a limit)', async (t) => {
  const pem = opensslCsr('rate', p256);
  const count = 500;
  const started = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    const { spki } = await verifyCsr(pem);
    await issueDeviceCertificate(issuing, spki, { orgId: 'org-1', deviceId: `rate-${i}` });
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  t.diagnostic(`${count} enrolments in ${seconds.toFixed(3)} s: ${Math.round(count / seconds)} per second on one core`);
});

test('mutated requests are refused as CSRs, never with another error, and none verifies', async () => {
  const good = pemToDer(opensslCsr('fuzz', p256));
  // a fixed seed: the same mutations every run
  let seed = 7;
  const next = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  for (let i = 0; i < 3000; i++) {
    const bytes = Buffer.from(good);
    const kind = next(3);
    let mutated: Buffer;
    if (kind === 0) {
      for (let k = 0; k <= next(3); k++) {
        const at = next(bytes.length);
        bytes[at] = bytes[at]! ^ (1 + next(255));
      }
      mutated = bytes;
    } else if (kind === 1) mutated = bytes.subarray(0, next(bytes.length));
    else {
      const at = next(bytes.length);
      mutated = Buffer.concat([bytes.subarray(0, at), Buffer.from([next(256)]), bytes.subarray(at)]);
    }
    await assert.rejects(verifyCsr(mutated), (e: unknown) => e instanceof CsrError, `mutation ${i} (${kind})`);
  }
});

test('createCsr makes a request openssl verifies and verifyCsr takes, with the subject given', async () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = createCsr(privateKey, { serialNumber: 'SN-7', commonName: 'meter' });
  write('made.csr', pem);
  const out = mustOpenssl(['req', '-in', 'made.csr', '-verify', '-noout', '-subject']);
  assert.match(out, /verify OK/i);
  assert.match(out, /serialNumber ?= ?SN-7/);
  const csr = await verifyCsr(pem);
  assert.deepEqual([csr.serialNumber, csr.subjectCommonName], ['SN-7', 'meter']);
  assert.equal(csr.fingerprint, createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex'));
  assert.throws(() => createCsr(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey, { commonName: 'x' }), PkiError);
});
