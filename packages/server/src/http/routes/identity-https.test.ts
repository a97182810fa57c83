// A device presents its platform certificate to HTTPS instead of a secret: it publishes with
// POST …/messages and subscribes over WebSocket with no Authorization at all; revoking the
// certificate ends its WebSocket (4403) and refuses its next request. The HTTPS listener trusts an
// organization's issuing CA from the moment it is made (the device sends its certificate alone).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startTestPlatform, type TestPlatform } from '../../../test/helpers/platform.js';
import { eventually } from '../../../test/helpers/eventually.js';
import { certificateAuthority, deviceRequest } from '../../../test/helpers/tls.js';

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
  const send = (method: string, path: string, body: string | undefined, withCertificate: boolean): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const req = request(`${base}${path}`, { method, ca: readFileSync(listener.ca), ...(withCertificate ? { cert: readFileSync(certFile), key: readFileSync(device.keyFile) } : {}), headers: body ? { 'content-type': 'application/senml+json' } : {} }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      });
      req.on('error', reject);
      req.end(body);
    });

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
