// The platform-issued listener certificate over a real database: one per host list however many
// processes start at once, kept across restarts, its key stored encrypted, renewed at two thirds of
// its lifetime by one process and taken up by the others, and swapped into running TLS listeners.
import { after, afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { get as httpsGet } from 'node:https';
import { startTestPlatform, type TestPlatform } from '../../test/helpers/platform.js';
import { eventually } from '../../test/helpers/eventually.js';
import { createMqtt, listenMqtt, type MqttServers } from '../mqtt/index.js';
import { httpsBeside } from '../http/app.js';
import { loadConfig } from '../core/config.js';
import { ListenerCertificates, hostsKey, tlsHostsOf, type TlsHosts } from './listener.js';
import { verifiedBy } from './pki.js';

const day = 86_400_000;
const hosts: TlsHosts = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] };

const started: { stop(): void }[] = [];
const platforms: TestPlatform[] = [];

async function platform(sharing?: TestPlatform): Promise<TestPlatform> {
  const t = await startTestPlatform({ mqttPort: -1, mqttsPort: 0 }, {}, sharing ? { sharing } : {});
  platforms.push(t);
  return t;
}

function certificates(t: TestPlatform, options: Partial<ConstructorParameters<typeof ListenerCertificates>[6]> = {}): ListenerCertificates {
  const c = new ListenerCertificates(t.platform.db, t.platform.keys, () => t.platform.identity.root(), t.clock, t.platform.log, t.platform.bus, { hosts, ...options });
  started.push(c);
  return c;
}

function served(port: number): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(new X509Certificate(socket.getPeerX509Certificate()!.raw));
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

afterEach(() => {
  for (const c of started.splice(0)) c.stop();
});
after(async () => {
  for (const t of platforms.splice(0).reverse()) await t.close();
});

describe('the listener certificate', () => {
  test('two processes starting at once on one database keep one certificate, signed by the root, its key encrypted', async () => {
    const a = await platform();
    const b = await platform(a);
    const [first, second] = await Promise.all([certificates(a).start(), certificates(b).start()]);
    assert.equal(first.fingerprint, second.fingerprint);
    assert.equal(first.key, second.key);
    const root = await a.platform.identity.root();
    assert.equal(await verifiedBy(first.cert, root.certificatePem, new Date(a.clock.now())), true);
    const rows = await a.platform.db.kysely.selectFrom('listener_certificates').selectAll().execute();
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.hosts, '127.0.0.1,::1,localhost');
    assert.doesNotMatch(rows[0]!.private_key, /PRIVATE KEY/, 'the key is stored encrypted');
    // a restart: the same again
    assert.equal((await certificates(a).start()).fingerprint, first.fingerprint);
  });

  test('renewed once two thirds of its lifetime are gone, by one process; the other takes that one', async () => {
    const a = await platform();
    const b = await platform(a);
    const onA = certificates(a, { validityDays: 30 });
    const onB = certificates(b, { validityDays: 30 });
    const first = await onA.start();
    assert.equal((await onB.start()).fingerprint, first.fingerprint);
    const heard: string[] = [];
    onB.onChange((c) => heard.push(c.fingerprint));

    a.clock.advance(19 * day); // under two thirds of 30 days: kept
    assert.equal((await onA.refresh()).fingerprint, first.fingerprint);
    a.clock.advance(2 * day);
    b.clock.advance(21 * day);
    const renewed = await onA.refresh();
    assert.notEqual(renewed.fingerprint, first.fingerprint);
    assert.ok(renewed.notAfter.getTime() > first.notAfter.getTime());
    assert.equal((await onB.refresh()).fingerprint, renewed.fingerprint, 'B adopts the renewal instead of making its own');
    assert.deepEqual(heard, [renewed.fingerprint]);
    assert.equal((await a.platform.db.kysely.selectFrom('listener_certificates').selectAll().execute()).length, 1);
  });

  test('another host list gets a certificate of its own with those names', async () => {
    const a = await platform();
    const local = await certificates(a).start();
    const named = await certificates(a, { hosts: { dnsNames: ['iot.example.org'], ipAddresses: ['192.0.2.7'] } }).start();
    assert.notEqual(named.fingerprint, local.fingerprint);
    const x509 = new X509Certificate(named.cert);
    assert.equal(x509.subjectAltName, 'DNS:iot.example.org, IP Address:192.0.2.7');
    assert.equal(x509.subject, 'CN=iot.example.org');
  });

  test('MQTT over TLS and HTTPS take a renewed certificate without a restart', async () => {
    const t = await platform();
    const certs = certificates(t, { validityDays: 30 });
    const first = await certs.start();
    const brokers = createMqtt(t.platform);
    const mqtt: MqttServers = await listenMqtt(t.platform, brokers, certs);
    const https = httpsBeside(t.app, t.platform, certs);
    await new Promise<void>((resolve) => https.server.listen(0, '127.0.0.1', resolve));
    try {
      const httpsPort = (https.server.address() as AddressInfo).port;
      assert.equal(mqtt.tlsCertificate, 'platform');
      assert.equal((await served(mqtt.addresses.mqtts!)).fingerprint256, new X509Certificate(first.cert).fingerprint256);
      assert.equal((await served(httpsPort)).fingerprint256, new X509Certificate(first.cert).fingerprint256);
      // the app answers on the HTTPS listener too, to a client trusting the root alone
      const ca = (await t.platform.identity.root()).certificatePem;
      const health = await new Promise<string>((resolve, reject) => {
        httpsGet({ host: '127.0.0.1', port: httpsPort, path: '/health', ca, servername: 'localhost' }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve(`${res.statusCode} ${body}`));
        }).once('error', reject);
      });
      assert.match(health, /^200 \{"status":"ok"/);

      t.clock.advance(21 * day);
      const renewed = new X509Certificate((await certs.refresh()).cert).fingerprint256;
      assert.notEqual(renewed, new X509Certificate(first.cert).fingerprint256);
      await eventually(async () => assert.equal((await served(mqtt.addresses.mqtts!)).fingerprint256, renewed));
      assert.equal((await served(httpsPort)).fingerprint256, renewed);
    } finally {
      https.stop();
      https.server.closeAllConnections();
      await new Promise((r) => https.server.close(r));
      await mqtt.close();
    }
  });
});

describe('the names it is for', () => {
  test('by default localhost, the loopback addresses, the host name, a specific FLEETWIRE_HOST and the public URL\'s host', () => {
    const config = loadConfig({}, { host: '10.1.2.3', publicUrl: 'https://IoT.Example.org/fleet' });
    assert.deepEqual(tlsHostsOf(config, 'gateway-7'), { dnsNames: ['localhost', 'gateway-7', 'iot.example.org'], ipAddresses: ['127.0.0.1', '::1', '10.1.2.3'] });
    assert.deepEqual(tlsHostsOf(loadConfig({}, { host: '0.0.0.0' }), 'bad host name!'), { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] });
  });

  test('FLEETWIRE_TLS_HOSTS replaces them; the key of a list does not depend on its order', () => {
    const config = loadConfig({ FLEETWIRE_TLS_HOSTS: 'b.example, 192.0.2.1, [2001:db8::1], A.example.' });
    const given = tlsHostsOf(config, 'ignored');
    assert.deepEqual(given, { dnsNames: ['b.example', 'a.example'], ipAddresses: ['192.0.2.1', '2001:db8::1'] });
    assert.equal(hostsKey(given), hostsKey({ dnsNames: ['a.example', 'b.example'], ipAddresses: ['2001:db8::1', '192.0.2.1'] }));
  });
});
