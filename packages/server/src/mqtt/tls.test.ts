import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { startTestPlatform } from '../../test/helpers/platform.js';
import { certificateAuthority } from '../../test/helpers/tls.js';
import { eventually } from '../../test/helpers/eventually.js';
import { createMqtt, listenMqtt } from './index.js';

const run = promisify(execFile);

test('over TLS a device authenticates with a client certificate (CN = device id) or with its secret; mosquitto_pub and mosquitto_sub', async () => {
  const t = await startTestPlatform();
  const owner = await t.user('tls-owner@example.com');
  const org = (await t.request('POST', '/orgs', { token: owner.token, body: { name: 'tls' } })).json().id;
  const device = (await t.request('POST', `/orgs/${org}/devices`, { token: owner.token, body: { name: 'tls-device' } })).json();
  const channel = (await t.request('POST', `/orgs/${org}/channels`, { token: owner.token, body: { name: 'c' } })).json().id;
  await t.request('POST', `/orgs/${org}/connections`, { token: owner.token, body: { device_ids: [device.id], channel_ids: [channel], types: ['publish', 'subscribe'] } });
  const pki = certificateAuthority([device.id, '0195f0c8-0000-7000-8000-00000000dead']);
  // a platform of its own whose config has the TLS files
  const tlsPlatform = { ...t.platform, config: { ...t.platform.config, mqttPort: -1, mqttsPort: 0, mqttTlsCert: pki.serverCert, mqttTlsKey: pki.serverKey, mqttTlsCa: pki.ca } };
  const brokers = createMqtt(tlsPlatform);
  const servers = await listenMqtt(tlsPlatform, brokers);
  try {
    const port = String(servers.addresses.mqtts);
    const topic = `channels/${channel}/messages/tls`;
    const common = ['-h', '127.0.0.1', '-p', port, '--cafile', pki.ca];
    const sub = execFile('mosquitto_sub', [...common, '--cert', pki.clients[device.id]!.cert, '--key', pki.clients[device.id]!.key, '-t', topic, '-C', '2', '-W', '15', '-i', 'tls-sub']);
    let out = '';
    sub.stdout!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => sub.once('close', (code) => r(code)));
    await eventually(() => assert.equal(brokers.broker.sessions.get('tls-sub')?.subscriptions.size, 1, 'mosquitto_sub has subscribed'), 10_000);
    // by certificate
    await run('mosquitto_pub', [...common, '--cert', pki.clients[device.id]!.cert, '--key', pki.clients[device.id]!.key, '-t', topic, '-q', '1', '-m', '[{"n":"by-cert","v":1}]']);
    // by secret, no certificate
    await run('mosquitto_pub', [...common, '-u', device.id, '-P', device.secret, '-t', topic, '-q', '1', '-m', '[{"n":"by-secret","v":2}]']);
    assert.equal(await exited, 0);
    assert.deepEqual(out.trim().split('\n'), ['[{"n":"by-cert","v":1}]', '[{"n":"by-secret","v":2}]']);
    // a certificate for an id that is no device is refused
    const unknown = pki.clients['0195f0c8-0000-7000-8000-00000000dead']!;
    const refused = await run('mosquitto_pub', [...common, '--cert', unknown.cert, '--key', unknown.key, '-t', topic, '-m', 'x']).then(() => 0, (e: { code: number }) => e.code);
    assert.notEqual(refused, 0);
    await eventually(async () => {
      const r = (await t.request('GET', `/channels/${channel}/messages?total=true&subtopic=tls`, { token: owner.token })).json();
      assert.equal(r.total, 2);
    });
  } finally {
    await servers.close();
    await t.close();
    rmSync(pki.dir, { recursive: true, force: true });
  }
});
