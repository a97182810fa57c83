// Certificate identity in the SDK against a real Fleetwire with HTTPS and MQTT over TLS: enrolment
// with a token and with a registered key, refusals with the platform's codes, the key store's
// modes and a key that never leaves it, renewal (POST /renew, by hand and on its own), a re-enrolment
// after an operator reset, and the `fleetwire-device` command as a child process.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectEnrolled, enrol, enrolledDevice, ensureDeviceKey, PlatformRefusedError, readCertificate, renew, type DeviceMessage, type FleetwireDevice, type StoredIdentity } from '../src/index.js';
import { eventually, TestPlatform, type Fleet } from './platform.js';

const deviceRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

describe('certificate identity against a platform with TLS listeners', () => {
  let platform: TestPlatform;
  let fleet: Fleet;
  const folders: string[] = [];
  const devices: FleetwireDevice[] = [];
  const servers: Server[] = [];

  /** A new key store folder (not yet made: the SDK makes it), removed after the tests. */
  const storeDir = () => {
    const parent = mkdtempSync(join(tmpdir(), 'fleetwire-identity-'));
    folders.push(parent);
    return join(parent, 'store');
  };
  const caFile = () => {
    const file = join(mkdtempSync(join(tmpdir(), 'fleetwire-ca-')), 'listener-ca.pem');
    folders.push(dirname(file));
    writeFileSync(file, platform.listenerCa);
    return file;
  };
  const token = async (pattern: string) => (await platform.call<{ token: string }>('POST', `/orgs/${fleet.org}/enrolment-tokens`, { token: fleet.token, body: { serial_pattern: pattern }, expect: 201 })).token;
  const register = (serial: string, extra: Record<string, unknown> = {}) =>
    platform.call<{ id: string }>('POST', `/orgs/${fleet.org}/registrations`, { token: fleet.token, body: { serial, model: 'sdk-test', channel_ids: [fleet.channel], ...extra }, expect: 201 });
  const storedBy = async (deviceId: string, query = '') => (await platform.call<{ total: number }>('GET', `/channels/${fleet.channel}/messages?total=true&publisher=${deviceId}${query}`, { token: fleet.token, expect: 200 })).total;
  const certificateStatus = async (serial: string) => platform.call<{ status: string; revocation_reason: string | null }>('GET', `/orgs/${fleet.org}/certificates/${serial}`, { token: fleet.token, expect: 200 });
  const identityOf = (dir: string) => JSON.parse(readFileSync(join(dir, 'identity.json'), 'utf8')) as StoredIdentity;
  const connected = async (dir: string, options: Parameters<typeof connectEnrolled>[0] = {}) => {
    const d = await connectEnrolled({ dir, renewal: false, reconnect: { minDelayMs: 50, maxDelayMs: 500 }, ...options });
    devices.push(d);
    return d;
  };

  /** `fleetwire-device …` from the sources, as a child process. */
  const cli = (args: string[]) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: deviceRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    return new Promise<{ code: number | null; stdout: string; stderr: string; lines: { msg: string; [k: string]: unknown }[] }>((resolve) =>
      child.once('close', (code) => resolve({ code, stdout, stderr, lines: stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string }) })),
    );
  };

  before(async () => {
    platform = await TestPlatform.start({ tls: true });
    fleet = await platform.fleet(1);
  });

  after(async () => {
    await Promise.all(devices.map((d) => d.close()));
    for (const s of servers) s.close();
    await platform?.stop();
    for (const f of folders) rmSync(f, { recursive: true, force: true });
  });

  test('a device enrolled with a token connects over MQTT with TLS by its certificate alone, publishes, and reads its message back', async () => {
    await register('SN-T1');
    const dir = storeDir();
    const identity = await enrol({ url: platform.api, token: await token('SN-T*'), serial: 'SN-T1', dir, ca: platform.listenerCa });
    assert.deepEqual(identity.channel_ids, [fleet.channel]);
    assert.equal(identity.serial, 'SN-T1');
    assert.equal(identity.endpoints.mqtts, `mqtts://127.0.0.1:${platform.mqttsPort}`);
    // the certificate names the device, and the store holds what identity.json says
    assert.equal(readCertificate(readFileSync(join(dir, 'device.pem'), 'utf8')).subjectCn, identity.device_id);
    assert.deepEqual(identityOf(dir).device_id, identity.device_id);
    assert.equal(readFileSync(join(dir, 'chain.pem'), 'utf8').match(/BEGIN CERTIFICATE/g)?.length, 2);

    const d = await connected(dir);
    const received: DeviceMessage[] = [];
    await d.subscribe(fleet.channel, { subtopic: 'tls' }, (m) => void received.push(m));
    await d.publishSenml(fleet.channel, { n: 'energy', u: 'Wh', v: 42 }, { subtopic: 'tls' });
    await eventually(() => assert.deepEqual(received[0]?.senml, [{ n: 'energy', u: 'Wh', v: 42 }]));
    assert.equal(await storedBy(identity.device_id), 1);
  });

  test('a device whose public key the operator registered enrols without a token', async () => {
    const dir = storeDir();
    const { created, publicKey } = await ensureDeviceKey(dir);
    assert.equal(created, true);
    assert.equal((await ensureDeviceKey(dir)).publicKey, publicKey, 'the key is kept');
    await register('SN-K1', { public_key: publicKey });
    const identity = await enrol({ url: platform.api, serial: 'SN-K1', dir, ca: platform.listenerCa });
    const d = await connected(dir);
    await d.publishSenml(fleet.channel, { n: 'registered-key', v: 1 });
    assert.equal(await storedBy(identity.device_id), 1);
  });

  test('a refused enrolment carries the platform code and leaves no certificate in the store', async () => {
    const used = await token('SN-U*');
    await enrol({ url: platform.api, token: used, serial: 'SN-U1', dir: storeDir(), ca: platform.listenerCa });

    const dir = storeDir();
    const error = await enrol({ url: platform.api, token: used, serial: 'SN-U2', dir, ca: platform.listenerCa }).then(() => assert.fail('enrolled with a used token'), (e: unknown) => e);
    assert.ok(error instanceof PlatformRefusedError, String(error));
    assert.equal(error.code, 'enrolment.token_used');
    assert.equal(error.status, 401);
    assert.equal(existsSync(join(dir, 'device.pem')), false);
    assert.equal(existsSync(join(dir, 'device.key')), true, 'the key made for it is kept for the next try');

    // no token, and no registration holds the key
    await assert.rejects(enrol({ url: platform.api, serial: 'SN-U3', dir: storeDir(), ca: platform.listenerCa }), { code: 'enrolment.not_registered', status: 403 });
    // a serial the token's pattern does not cover
    await assert.rejects(enrol({ url: platform.api, token: await token('SN-ONLY-*'), serial: 'SN-U4', dir: storeDir(), ca: platform.listenerCa }), { code: 'enrolment.serial_not_allowed' });
  });

  test('the key file is 0600 in a 0700 folder, and no request body holds the private key', async () => {
    // a plain-HTTP relay in front of the HTTPS API that keeps every request body
    const bodies: string[] = [];
    const relay = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        bodies.push(body.toString());
        const upstream = httpsRequest(`${platform.api}${req.url}`, { method: req.method, headers: { ...req.headers, host: new URL(platform.api).host }, ca: platform.listenerCa }, (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        });
        upstream.on('error', () => res.destroy());
        upstream.end(body);
      });
    });
    servers.push(relay);
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const dir = storeDir();
    await register('SN-P1');
    await enrol({ url: `http://127.0.0.1:${(relay.address() as AddressInfo).port}`, token: await token('SN-P*'), serial: 'SN-P1', dir, ca: platform.listenerCa });

    assert.equal(statSync(join(dir, 'device.key')).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(readdirSync(dir).sort().join(' '), 'ca.pem chain.pem device.key device.pem identity.json', 'no temporary file is left');
    const keyPem = readFileSync(join(dir, 'device.key'), 'utf8');
    const d = createPrivateKey(keyPem).export({ format: 'jwk' }).d!;
    const pkcs8 = keyPem.replace(/-----[^-]+-----|\s/g, '');
    assert.equal(bodies.length, 1);
    assert.match(bodies[0]!, /BEGIN CERTIFICATE REQUEST/);
    for (const secret of [d, Buffer.from(d, 'base64url').toString('hex'), Buffer.from(d, 'base64url').toString('base64'), pkcs8.slice(0, 40), 'PRIVATE KEY']) {
      assert.equal(bodies[0]!.includes(secret), false, `the request body holds ${secret}`);
    }
  });

  test('renew: POST /renew with the current certificate gives a new one of the same key, the device connects with it and the old one is superseded', async () => {
    await register('SN-N1');
    const dir = storeDir();
    const first = await enrol({ url: platform.api, token: await token('SN-N*'), serial: 'SN-N1', dir, ca: platform.listenerCa });
    const key = readFileSync(join(dir, 'device.key'), 'utf8');

    const renewed = await renew({ dir });
    assert.notEqual(renewed.certificate_serial, first.certificate_serial);
    assert.equal(renewed.device_id, first.device_id);
    assert.equal(readFileSync(join(dir, 'device.key'), 'utf8'), key, 'the same key');
    assert.equal(readCertificate(readFileSync(join(dir, 'device.pem'), 'utf8')).serial, renewed.certificate_serial);

    const d = await connected(dir);
    await d.publishSenml(fleet.channel, { n: 'after-renewal', v: 1 });
    assert.equal(await storedBy(first.device_id), 1);
    await eventually(async () => assert.deepEqual(await certificateStatus(first.certificate_serial), { ...(await certificateStatus(first.certificate_serial)), status: 'revoked', revocation_reason: 'superseded' }));
  });

  test('a connected device renews on its own at the set share of the lifetime and reconnects with the new certificate', async () => {
    await register('SN-A1');
    const dir = storeDir();
    const first = await enrol({ url: platform.api, token: await token('SN-A*'), serial: 'SN-A1', dir, ca: platform.listenerCa });
    const { notBefore, notAfter } = readCertificate(readFileSync(join(dir, 'device.pem'), 'utf8'));
    // due a second from now
    const at = (Date.now() + 1000 - notBefore.getTime()) / (notAfter.getTime() - notBefore.getTime());
    const d = await enrolledDevice({ dir, renewal: { at } });
    devices.push(d);
    const reconnected = new Promise<void>((resolve) => d.on('connected', (i) => i.reconnected && resolve()));
    // the first renewal, or the first failure
    const renewed = new Promise<{ certificateSerial: string }>((resolve, reject) => {
      d.once('renewed', resolve);
      d.once('renewal-error', reject);
    });
    await d.connect();
    const info = await renewed;
    assert.notEqual(info.certificateSerial, first.certificate_serial);
    assert.equal(identityOf(dir).certificate_serial, info.certificateSerial);
    await reconnected;
    await d.publishSenml(fleet.channel, { n: 'auto-renewed', v: 1 });
    assert.equal(await storedBy(first.device_id, '&name=auto-renewed'), 1);
  });

  test('a failed renewal is reported and retried with backoff while the device stays connected', async () => {
    await register('SN-E1');
    const dir = storeDir();
    await enrol({ url: platform.api, token: await token('SN-E*'), serial: 'SN-E1', dir, ca: platform.listenerCa });
    // an address nobody listens on: the port of a server that was closed
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const before = readFileSync(join(dir, 'device.pem'), 'utf8');

    // due at once: listened to before the client is made to connect
    const d = await enrolledDevice({ dir, renewal: { at: 0, url: `https://127.0.0.1:${port}`, retry: { minDelayMs: 100, maxDelayMs: 200, jitter: 0 } } });
    devices.push(d);
    const failures: { code: unknown; attempt: number; retryInMs: number; at: number }[] = [];
    d.on('renewal-error', (e, i) => failures.push({ code: (e as { code?: unknown }).code, ...i, at: Date.now() }));
    await d.connect();
    await eventually(() => assert.ok(failures.length >= 3, `${failures.length} failures so far`));
    assert.deepEqual(failures.slice(0, 3).map((f) => [f.code, f.attempt, f.retryInMs]), [['platform_unreachable', 1, 100], ['platform_unreachable', 2, 200], ['platform_unreachable', 3, 200]]);
    assert.ok(failures[1]!.at - failures[0]!.at >= 90, `retried ${failures[1]!.at - failures[0]!.at} ms after the first failure`);
    assert.equal(d.connected, true);
    assert.equal(readFileSync(join(dir, 'device.pem'), 'utf8'), before);
  });

  test('useCertificate: a connected device swaps to another certificate at once and keeps its subscriptions', async () => {
    await register('SN-S1');
    const dir = storeDir();
    const first = await enrol({ url: platform.api, token: await token('SN-S*'), serial: 'SN-S1', dir, ca: platform.listenerCa });
    const d = await connected(dir);
    const received: DeviceMessage[] = [];
    await d.subscribe(fleet.channel, { subtopic: 'swap' }, (m) => void received.push(m));
    // enrolled again with the same key (the registration holds it): a second certificate of the device
    const second = await enrol({ url: platform.api, serial: 'SN-S1', dir });
    assert.notEqual(second.certificate_serial, first.certificate_serial);
    const reconnected = new Promise<void>((resolve) => d.on('connected', (i) => i.reconnected && resolve()));
    d.useCertificate({ cert: readFileSync(join(dir, 'device.pem'), 'utf8') + readFileSync(join(dir, 'chain.pem'), 'utf8'), key: readFileSync(join(dir, 'device.key'), 'utf8') });
    await reconnected;
    // the session is on the second certificate: revoking the first leaves it up
    const disconnects: unknown[] = [];
    d.on('disconnected', (i) => disconnects.push(i));
    await platform.call('POST', `/orgs/${fleet.org}/certificates/${first.certificate_serial}/revoke`, { token: fleet.token, body: { reason: 'superseded' }, expect: 200 });
    await d.publishSenml(fleet.channel, { n: 'swapped', v: 1 }, { subtopic: 'swap' });
    await eventually(() => assert.deepEqual(received[0]?.senml, [{ n: 'swapped', v: 1 }]));
    assert.deepEqual(disconnects, []);
    assert.equal(d.connected, true);
  });

  test('after an operator reset the device enrols again with a new token, keeping its key', async () => {
    const registration = await register('SN-R1');
    const dir = storeDir();
    const first = await enrol({ url: platform.api, token: await token('SN-R*'), serial: 'SN-R1', dir, ca: platform.listenerCa });
    const key = readFileSync(join(dir, 'device.key'), 'utf8');
    await platform.call('POST', `/orgs/${fleet.org}/registrations/${registration.id}/reset`, { token: fleet.token, expect: 200 });
    assert.equal((await certificateStatus(first.certificate_serial)).status, 'revoked');

    const again = await enrol({ url: platform.api, token: await token('SN-R*'), serial: 'SN-R1', dir });
    assert.equal(readFileSync(join(dir, 'device.key'), 'utf8'), key);
    assert.notEqual(again.certificate_serial, first.certificate_serial);
    const d = await connected(dir);
    await d.publishSenml(fleet.channel, { n: 'after-reset', v: 1 });
    assert.equal(await storedBy(again.device_id, '&name=after-reset'), 1);

    // with newKey, a key of its own replaces the old one
    await platform.call('POST', `/orgs/${fleet.org}/registrations/${registration.id}/reset`, { token: fleet.token, expect: 200 });
    await enrol({ url: platform.api, token: await token('SN-R*'), serial: 'SN-R1', dir, newKey: true });
    assert.notEqual(readFileSync(join(dir, 'device.key'), 'utf8'), key);
  });

  test('fleetwire-device enrol, then run, as child processes; usage mistakes exit 2 and refusals 1', async () => {
    await register('SN-C1');
    const dir = storeDir();
    const ca = caFile();
    const enrolToken = await token('SN-C*');
    const enrolled = await cli(['enrol', '--url', platform.api, '--token', enrolToken, '--serial', 'SN-C1', '--dir', dir, '--ca', ca]);
    assert.equal(enrolled.code, 0, enrolled.stderr);
    const line = enrolled.lines.find((l) => l.msg === 'enrolled');
    assert.ok(line, enrolled.stdout);
    const deviceId = line.device_id as string;
    assert.equal(identityOf(dir).device_id, deviceId);

    const ran = await cli(['run', '--dir', dir, '--interval', '0.2', '--count', '3']);
    assert.equal(ran.code, 0, ran.stderr);
    assert.deepEqual(ran.lines.filter((l) => l.msg === 'published').map((l) => l.sent), [1, 2, 3]);
    assert.ok(ran.lines.some((l) => l.msg === 'connected'), ran.stdout);
    assert.equal(await storedBy(deviceId, '&name=SN-C1:temperature'), 3);

    const refused = await cli(['enrol', '--url', platform.api, '--token', enrolToken, '--serial', 'SN-C2', '--dir', storeDir(), '--ca', ca]);
    assert.equal(refused.code, 1);
    assert.equal((JSON.parse(refused.stderr) as { code: string }).code, 'enrolment.token_used');
    const usage = await cli(['enrol', '--url', platform.api]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--serial is required/);
    assert.equal((await cli(['launch'])).code, 2);
    const notEnrolled = await cli(['run', '--dir', storeDir()]);
    assert.equal(notEnrolled.code, 1);
    assert.match(notEnrolled.stderr, /not_enrolled/);
  });

  test('fleetwire-device simulate --count 3: each device its own key and certificate, all publishing', async () => {
    const dir = storeDir();
    const simulated = await cli(['simulate', '--count', '3', '--url', platform.api, '--access-token', fleet.token, '--org', fleet.org, '--channel', fleet.channel, '--serial-prefix', 'SIM-', '--dir', dir, '--interval', '0.2', '--messages', '2', '--ca', caFile()]);
    assert.equal(simulated.code, 0, simulated.stderr);
    assert.deepEqual(readdirSync(dir).sort(), ['SIM-1', 'SIM-2', 'SIM-3']);
    const keys = new Set(readdirSync(dir).map((s) => readFileSync(join(dir, s, 'device.key'), 'utf8')));
    assert.equal(keys.size, 3);
    const ids = readdirSync(dir).map((serial) => ({ serial, id: identityOf(join(dir, serial)).device_id }));
    assert.equal(new Set(ids.map((d) => d.id)).size, 3);
    // two messages each (a message is two SenML records: temperature and uptime)
    for (const { serial, id } of ids) assert.equal(await storedBy(id, `&name=${serial}:temperature`), 2, serial);
  });
});

describe('certificate identity against a platform out of the box (its own listener certificate)', () => {
  let platform: TestPlatform;
  let fleet: Fleet;
  let parent: string;
  const devices: FleetwireDevice[] = [];

  before(async () => {
    platform = await TestPlatform.start();
    fleet = await platform.fleet(1);
    parent = mkdtempSync(join(tmpdir(), 'fleetwire-identity-auto-'));
  });
  after(async () => {
    await Promise.all(devices.map((d) => d.close()));
    await platform?.stop();
    rmSync(parent, { recursive: true, force: true });
  });

  test('enrolled over plain HTTP with a token, the device trusts the platform root for MQTT over TLS and renews on the HTTPS listener, no CA given anywhere', async () => {
    await platform.call('POST', `/orgs/${fleet.org}/registrations`, { token: fleet.token, body: { serial: 'SN-AUTO', channel_ids: [fleet.channel] }, expect: 201 });
    const token = (await platform.call<{ token: string }>('POST', `/orgs/${fleet.org}/enrolment-tokens`, { token: fleet.token, body: {}, expect: 201 })).token;
    const dir = join(parent, 'store');
    const first = await enrol({ url: platform.api, token, serial: 'SN-AUTO', dir });
    assert.match(platform.api, /^http:/);
    const d = await connectEnrolled({ dir, renewal: false });
    devices.push(d);
    await d.publishSenml(fleet.channel, { n: 'auto-tls', v: 1 });
    const renewed = await renew({ dir });
    assert.notEqual(renewed.certificate_serial, first.certificate_serial);
  });
});

