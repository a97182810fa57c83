// TLS out of the box (docs/identity.md, "TLS out of the box"): a `fleetwire start` given no
// certificate files serves MQTT over TLS and HTTPS with a certificate the platform issued itself,
// which the clients a device maker uses (openssl s_client, mosquitto_pub, curl) accept with the
// platform root alone; the same one after a restart and from a second process on the database;
// the operator's files in its place when given.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { announcedPort, call, cleanupCli, cliEnv, cliFleet, dataFolder, startCli, type Server } from './helpers/cli.js';
import { certificateAuthority, deviceRequest } from './helpers/tls.js';

const run = promisify(execFile);
const admin = { email: 'tls-admin@example.com', password: 'tls-password-not-secret' };

/** The settings of a platform with an admin and no certificate files; ports picked by the system. */
function settings(dir: string, more: Record<string, string> = {}): NodeJS.ProcessEnv {
  return cliEnv(dir, { FLEETWIRE_ADMIN_EMAIL: admin.email, FLEETWIRE_ADMIN_PASSWORD: admin.password, FLEETWIRE_MQTTS_PORT: '0', FLEETWIRE_HTTPS_PORT: '0', ...more });
}

/** The platform root as a device fetches it: EST cacerts (RFC 7030 §4.1), a certs-only PKCS#7 in base64. */
async function fetchRoot(server: Server, dir: string): Promise<string> {
  const file = join(dir, 'root.pem');
  const res = await fetch(`${server.api}/.well-known/est/cacerts`);
  assert.equal(res.status, 200);
  const der = Buffer.from(await res.text(), 'base64');
  writeFileSync(join(dir, 'cacerts.p7'), der);
  await run('openssl', ['pkcs7', '-inform', 'DER', '-in', join(dir, 'cacerts.p7'), '-print_certs', '-out', file]);
  return file;
}

/** openssl s_client's verdict on the listener at `port`, checking the name (or IP) given. */
async function sClient(port: number, caFile: string, name: { host?: string; ip?: string }): Promise<string> {
  const check = name.ip ? ['-verify_ip', name.ip] : ['-verify_hostname', name.host!, '-servername', name.host!];
  const running = run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', caFile, '-verify_return_error', ...check], { timeout: 10_000 });
  running.child.stdin?.end(); // no request to send: it closes once the handshake is done
  return running.then(
    (r) => r.stdout + r.stderr,
    (e: { stdout?: string; stderr?: string }) => `${e.stdout ?? ''}${e.stderr ?? ''}`,
  );
}

/** The SHA-256 fingerprint of the certificate the listener at `port` serves. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

describe('TLS out of the box', () => {
  after(cleanupCli);

  test('with no certificate files, MQTT over TLS and HTTPS serve a platform certificate openssl, mosquitto_pub and curl accept with the root', async () => {
    const dir = dataFolder();
    const server = await startCli(settings(dir));
    try {
      const mqtts = await announcedPort(server, 'MQTT over TLS listening');
      const https = await announcedPort(server, 'HTTPS listening');
      const rootFile = await fetchRoot(server, dir);

      for (const port of [mqtts, https]) {
        assert.match(await sClient(port, rootFile, { host: 'localhost' }), /Verify return code: 0 \(ok\)/, `port ${port} for localhost`);
        assert.match(await sClient(port, rootFile, { ip: '127.0.0.1' }), /Verify return code: 0 \(ok\)/, `port ${port} for 127.0.0.1`);
        // a name it is not for is refused: the check above is a real one
        assert.doesNotMatch(await sClient(port, rootFile, { host: 'not-this-platform.example' }), /Verify return code: 0 \(ok\)/);
      }

      // the enrolment answer's root_ca is the same root: what a device trusts after enrolling
      const fleet = await cliFleet(server.api, admin, { devices: 1 });
      const endpoints = await call<Record<string, string>>(server.api, 'GET', '/endpoints', { token: fleet.token });
      assert.equal(endpoints.body.mqtts, `mqtts://127.0.0.1:${mqtts}`);
      assert.equal(endpoints.body.https, `https://127.0.0.1:${https}`);
      const token = await call<{ token: string }>(server.api, 'POST', `/orgs/${fleet.org}/enrolment-tokens`, { token: fleet.token, body: {} });
      const device = deviceRequest('/serialNumber=SN-TLS-1');
      const body = join(device.dir, 'enrol.json');
      writeFileSync(body, JSON.stringify({ csr: device.csr, token: token.body.token }));
      const enrolled = JSON.parse((await run('curl', ['-sS', '--fail-with-body', '--cacert', rootFile, '-H', 'content-type: application/json', '--data-binary', `@${body}`, `https://localhost:${https}/enrol`])).stdout) as { root_ca: string };
      const rootCa = join(dir, 'root_ca.pem');
      writeFileSync(rootCa, enrolled.root_ca);
      assert.match(await sClient(mqtts, rootCa, { host: 'localhost' }), /Verify return code: 0 \(ok\)/);

      // a device with its secret publishes over TLS, trusting the root alone; the message is stored
      const topic = `channels/${fleet.channel}/messages/tls`;
      await run('mosquitto_pub', ['-h', 'localhost', '-p', String(mqtts), '--cafile', rootFile, '-u', fleet.device.id, '-P', fleet.device.secret, '-i', 'tls-pub', '-V', 'mqttv5', '-q', '1', '-t', topic, '-m', '[{"n":"t","v":21.5}]'], { timeout: 15_000 });
      const stored = await call<{ messages: { name: string; value: number; protocol: string }[] }>(server.api, 'GET', `/channels/${fleet.channel}/messages`, { token: fleet.token });
      assert.equal(stored.status, 200, JSON.stringify(stored.body));
      assert.deepEqual(stored.body.messages.map((m) => [m.name, m.value, m.protocol]), [['t', 21.5, 'mqtt']]);

      // with a CA it does not know, mosquitto_pub refuses the listener
      const stranger = certificateAuthority([]);
      await assert.rejects(run('mosquitto_pub', ['-h', 'localhost', '-p', String(mqtts), '--cafile', stranger.ca, '-u', fleet.device.id, '-P', fleet.device.secret, '-t', topic, '-m', 'x'], { timeout: 15_000 }));
      // the plain HTTP listener is where it was
      assert.equal((await fetch(`${server.api}/health`)).status, 200);
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });

  test('a restart, and a second process on the same database, serve the same certificate; another host list gets its own', async () => {
    const dir = dataFolder();
    const key = randomBytes(32).toString('hex');
    const first = await startCli(settings(dir, { FLEETWIRE_SECRET_KEY: key }));
    let second: Server | undefined;
    try {
      const served = await servedFingerprint(await announcedPort(first, 'MQTT over TLS listening'));
      second = await startCli(settings(dir, { FLEETWIRE_SECRET_KEY: key, FLEETWIRE_NODE_ID: 'second' }));
      assert.equal(await servedFingerprint(await announcedPort(second, 'MQTT over TLS listening')), served, 'the second process serves the first one\'s');
      assert.equal(await servedFingerprint(await announcedPort(second, 'HTTPS listening')), served, 'on HTTPS too');
      assert.equal(await first.stop(), 0);
      const again = await startCli(settings(dir, { FLEETWIRE_SECRET_KEY: key }));
      try {
        assert.equal(await servedFingerprint(await announcedPort(again, 'MQTT over TLS listening')), served, 'restarted, it serves the same');
      } finally {
        assert.equal(await again.stop(), 0);
      }
      assert.equal(await second.stop(), 0);
      second = undefined;

      const renamed = await startCli(settings(dir, { FLEETWIRE_SECRET_KEY: key, FLEETWIRE_TLS_HOSTS: 'iot.example.org, 127.0.0.1' }));
      try {
        const port = await announcedPort(renamed, 'MQTT over TLS listening');
        const other = await new Promise<X509Certificate>((resolve, reject) => {
          const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
            resolve(new X509Certificate(socket.getPeerX509Certificate()!.raw));
            socket.destroy();
          });
          socket.once('error', reject);
        });
        assert.notEqual(other.fingerprint256, served);
        assert.equal(other.subjectAltName, 'DNS:iot.example.org, IP Address:127.0.0.1');
      } finally {
        assert.equal(await renamed.stop(), 0);
      }
    } finally {
      await first.stop();
      await second?.stop();
    }
  });

  test('the operator\'s files replace the platform certificate on their listener, and FLEETWIRE_TLS_AUTO=false turns it off', async () => {
    const operator = certificateAuthority([]);
    const dir = dataFolder();
    const server = await startCli(settings(dir, { FLEETWIRE_MQTT_TLS_CERT: operator.serverCert, FLEETWIRE_MQTT_TLS_KEY: operator.serverKey }));
    try {
      const mqtts = await announcedPort(server, 'MQTT over TLS listening');
      assert.match(await sClient(mqtts, operator.ca, { host: 'localhost' }), /Verify return code: 0 \(ok\)/, 'MQTT over TLS serves the files');
      const rootFile = await fetchRoot(server, dir);
      assert.doesNotMatch(await sClient(mqtts, rootFile, { host: 'localhost' }), /Verify return code: 0 \(ok\)/);
      // HTTPS has no files of the operator: it serves the platform's
      assert.match(await sClient(await announcedPort(server, 'HTTPS listening'), rootFile, { host: 'localhost' }), /Verify return code: 0 \(ok\)/);
    } finally {
      assert.equal(await server.stop(), 0);
    }

    const off = await startCli(settings(dataFolder(), { FLEETWIRE_TLS_AUTO: 'false' }));
    try {
      await announcedPort(off, 'CoAP listening'); // the last listener to start
      assert.equal(off.logs.some((l) => l.msg === 'MQTT over TLS listening' || l.msg === 'HTTPS listening'), false, 'no TLS listener without files');
    } finally {
      assert.equal(await off.stop(), 0);
    }
  });
});
