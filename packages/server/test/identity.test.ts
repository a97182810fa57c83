// Device identity end to end, with the clients a device maker would use: `openssl req` makes the
// device's key pair and CSR (its key never leaves it), `curl` enrols it with a one-time token
// against a `fleetwire start` process, and `mosquitto_pub` / `mosquitto_sub` connect to MQTT over
// TLS with the certificate they got: no password anywhere. Revoking the certificate ends the live
// session at once and a reconnect is refused.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { announcedPort, call, cleanupCli, cliEnv, cliFleet, dataFolder, startCli } from './helpers/cli.js';
import { certificateAuthority, deviceRequest } from './helpers/tls.js';
import { eventually } from './helpers/eventually.js';

const run = promisify(execFile);
const admin = { email: 'identity-admin@example.com', password: 'identity-password-not-secret' };

/** `fleetwire start` with MQTT over TLS on a listener certificate from a CA the MQTT clients are given (the device CAs are the platform's). */
async function startWithTls() {
  const listener = certificateAuthority([]);
  const server = await startCli(cliEnv(dataFolder(), {
    FLEETWIRE_ADMIN_EMAIL: admin.email,
    FLEETWIRE_ADMIN_PASSWORD: admin.password,
    FLEETWIRE_PASSWORD_HASH_COST: '10',
    FLEETWIRE_MQTT_TLS_CERT: listener.serverCert,
    FLEETWIRE_MQTT_TLS_KEY: listener.serverKey,
    FLEETWIRE_MQTTS_PORT: '0',
  }));
  return { listener, server };
}

describe('a device enrols with openssl and curl, connects with its certificate, and is cut off by revocation', () => {
  after(cleanupCli);

  test('openssl req + curl enrol; mosquitto_pub and mosquitto_sub over TLS with the certificate; revoked: disconnected and refused', async () => {
    const { listener, server } = await startWithTls();
    const port = await announcedPort(server, 'MQTT over TLS listening');
    const fleet = await cliFleet(server.api, admin, { devices: 1 });
    const registration = await call<{ id: string }>(server.api, 'POST', `/orgs/${fleet.org}/registrations`, { token: fleet.token, body: { serial: 'SN-42', model: 'meter', channel_ids: [fleet.channel] } });
    assert.equal(registration.status, 201, JSON.stringify(registration.body));
    const token = await call<{ token: string }>(server.api, 'POST', `/orgs/${fleet.org}/enrolment-tokens`, { token: fleet.token, body: { serial_pattern: 'SN-*' } });
    assert.equal(token.status, 201);

    // the device: its own key and CSR (serial as subject serialNumber), then the enrolment by curl
    const device = deviceRequest('/serialNumber=SN-42/CN=meter');
    const body = join(device.dir, 'enrol.json');
    writeFileSync(body, JSON.stringify({ csr: device.csr, token: token.body.token }));
    const enrolled = await run('curl', ['-sS', '--fail-with-body', '-H', 'content-type: application/json', '--data-binary', `@${body}`, `${server.api}/enrol`]);
    const e = JSON.parse(enrolled.stdout) as { certificate: string; chain: string[]; device_id: string; serial: string; channel_ids: string[]; endpoints: Record<string, string> };
    assert.deepEqual(e.channel_ids, [fleet.channel]);
    assert.ok(e.endpoints.mqtts?.endsWith(`:${port}`), JSON.stringify(e.endpoints));
    // the client sends its certificate with the issuing CA (mosquitto reads a chain from --cert)
    const certFile = join(device.dir, 'device.pem');
    writeFileSync(certFile, e.certificate + e.chain[0]);

    const topic = `channels/${fleet.channel}/messages/meter`;
    const tlsArgs = ['-h', '127.0.0.1', '-p', String(port), '--cafile', listener.ca, '--cert', certFile, '--key', device.keyFile, '-V', 'mqttv5'];
    const sub = spawn('mosquitto_sub', [...tlsArgs, '-t', topic, '-i', 'meter-sub', '-v']);
    let received = '';
    let subErr = '';
    sub.stdout.on('data', (d: Buffer) => (received += d.toString()));
    sub.stderr.on('data', (d: Buffer) => (subErr += d.toString()));
    const exited = new Promise<number | null>((resolve) => sub.once('exit', resolve));
    try {
      // published by the device itself, over TLS with its certificate, until its subscription has it
      await eventually(async () => {
        await run('mosquitto_pub', [...tlsArgs, '-t', topic, '-i', 'meter-pub', '-m', '[{"n":"energy","v":42}]', '-q', '1']);
        assert.match(received, /"n":"energy","v":42/, subErr);
      }, 15_000);
      const stored = await call<{ total: number }>(server.api, 'GET', `/channels/${fleet.channel}/messages?publisher=${e.device_id}&total=true`, { token: fleet.token });
      assert.ok(stored.body.total >= 1);

      // revoked: the live session ends at once, and the certificate connects no more
      const revokedAt = Date.now();
      const revoked = await call<{ status: string }>(server.api, 'POST', `/orgs/${fleet.org}/certificates/${e.serial}/revoke`, { token: fleet.token, body: { reason: 'keyCompromise' } });
      assert.equal(revoked.body.status, 'revoked');
      const code = await Promise.race([exited, new Promise((r) => setTimeout(r, 5000, 'still connected'))]);
      assert.notEqual(code, 'still connected', 'mosquitto_sub was disconnected');
      assert.ok(Date.now() - revokedAt < 2000, `disconnected ${Date.now() - revokedAt} ms after the revocation`);
      const again = await run('mosquitto_pub', [...tlsArgs, '-t', topic, '-i', 'meter-pub', '-m', 'x', '-q', '1']).then(() => 'published', (err: { stderr: string }) => err.stderr);
      assert.match(again, /not authori[sz]ed|bad user name or password|refused/i);
    } finally {
      sub.kill();
      await server.stop();
    }
  });

  test('mosquitto_rr enrols over MQTT with a token (no HTTP at all), and mosquitto_pub then publishes over TLS with the certificate', async () => {
    const { listener, server } = await startWithTls();
    try {
      const mqttPort = await announcedPort(server, 'MQTT listening');
      const tlsPort = await announcedPort(server, 'MQTT over TLS listening');
      const fleet = await cliFleet(server.api, admin, { devices: 1 });
      await call(server.api, 'POST', `/orgs/${fleet.org}/registrations`, { token: fleet.token, body: { serial: 'SN-RR', channel_ids: [fleet.channel] } });
      const token = await call<{ token: string }>(server.api, 'POST', `/orgs/${fleet.org}/enrolment-tokens`, { token: fleet.token, body: {} });
      const device = deviceRequest('/serialNumber=SN-RR');
      // the commands of docs/identity.md as written (MQTT 5 request/response: the response topic is the
      // reply topic, to this connection alone), on this platform's port
      const doc = readFileSync(new URL('../../../docs/identity.md', import.meta.url), 'utf8');
      const section = doc.slice(doc.indexOf('## Over MQTT')).split(/\n## /)[0]!;
      const commands = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]).join('\n').replaceAll('-p 1883', `-p ${mqttPort}`);
      assert.match(commands, /mosquitto_rr/);
      await run('bash', ['-euo', 'pipefail', '-c', commands], { cwd: device.dir, env: { ...process.env, ENROLMENT_TOKEN: token.body.token }, timeout: 20_000 });
      const reply = JSON.parse(readFileSync(join(device.dir, 'enrolled.json'), 'utf8')) as { result: string; device_id: string };
      assert.equal(reply.result, 'accepted', JSON.stringify(reply));
      const certFile = join(device.dir, 'device.pem'); // the certificate and its issuing CA, as the commands wrote it
      await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(tlsPort), '--cafile', listener.ca, '--cert', certFile, '--key', device.keyFile, '-V', 'mqttv5', '-t', `channels/${fleet.channel}/messages`, '-m', '[{"n":"rr","v":1}]', '-q', '1']);
      await eventually(async () => {
        const stored = await call<{ total: number }>(server.api, 'GET', `/channels/${fleet.channel}/messages?publisher=${reply.device_id}&total=true`, { token: fleet.token });
        assert.equal(stored.body.total, 1);
      });
    } finally {
      await server.stop();
    }
  });
});
