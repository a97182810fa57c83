// Device certificates an attacker (or a broken device) brings to MQTT over TLS: expired, not yet
// valid, of a CA the platform does not know, of another organization, revoked and reconnecting in
// a loop. Each is refused with the protocol's answer, and the platform keeps serving the others.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { MqttClient } from 'mqtt';
import { startTestPlatform, type TestPlatform } from '../../test/helpers/platform.js';
import { certificateAuthority, deviceRequest } from '../../test/helpers/tls.js';
import { mqttClient, refusal } from '../../test/helpers/mqtt.js';
import { createMqtt, listenMqtt, type MqttServers } from './index.js';

const dayMs = 86_400_000;

describe('device certificates refused at MQTT over TLS', () => {
  let t: TestPlatform;
  let servers: MqttServers;
  let tlsUrl: string;
  const listener = certificateAuthority([]);
  let token: string;
  const clients: MqttClient[] = [];
  const orgs: { id: string; channel: string }[] = [];

  /** A device of organization `org` registered with its key: its CSR and key file. */
  const registered = async (org: { id: string; channel: string }, serial: string) => {
    const device = deviceRequest(`/serialNumber=${serial}`);
    const res = await t.request('POST', `/orgs/${org.id}/registrations`, { token, body: { serial, public_key: device.publicKey, channel_ids: [org.channel] } });
    assert.equal(res.statusCode, 201, res.body);
    return device;
  };
  /** The registered device enrolled at the platform's clock (no user token involved): its key and certificate. */
  const enrol = async (device: ReturnType<typeof deviceRequest>) => {
    const res = await t.request('POST', '/enrol', { body: { csr: device.csr } });
    assert.equal(res.statusCode, 201, res.body);
    return { key: readFileSync(device.keyFile), cert: res.json().certificate as string, serial: res.json().serial as string, deviceId: res.json().device_id as string };
  };
  const enrolled = async (org: { id: string; channel: string }, serial: string) => enrol(await registered(org, serial));
  const tls = (d: { key: Buffer; cert: string }) => ({ protocolVersion: 5 as const, ca: readFileSync(listener.ca), cert: d.cert, key: d.key });

  before(async () => {
    t = await startTestPlatform({ mqttPort: -1, mqttsPort: 0, mqttTlsCert: listener.serverCert, mqttTlsKey: listener.serverKey });
    servers = await listenMqtt(t.platform, createMqtt(t.platform));
    tlsUrl = `mqtts://127.0.0.1:${servers.addresses.mqtts}`;
    token = (await t.user('refusals@example.com')).token;
    for (const name of ['refusals a', 'refusals b']) {
      const id = (await t.request('POST', '/orgs', { token, body: { name } })).json().id;
      orgs.push({ id, channel: (await t.request('POST', `/orgs/${id}/channels`, { token, body: { name: 'telemetry' } })).json().id });
    }
  });
  after(async () => {
    for (const c of clients) c.end(true);
    await servers.close();
    await t.close();
  });

  test('an expired certificate and one not valid yet are refused at the handshake’s check, as no credentials (0x86)', async () => {
    const [old, young] = [await registered(orgs[0]!, 'OLD-1'), await registered(orgs[0]!, 'NEW-1')];
    t.clock.advance(-100 * dayMs); // issued 100 days ago: its 90 days are over
    const expired = await enrol(old).finally(() => t.clock.advance(100 * dayMs));
    t.clock.advance(2 * dayMs); // issued with a notBefore in two days
    const early = await enrol(young).finally(() => t.clock.advance(-2 * dayMs));
    assert.equal(await refusal(tlsUrl, tls(expired)), 0x86);
    assert.equal(await refusal(tlsUrl, tls(early)), 0x86);
  });

  test("a certificate of another CA naming a device's id as its CN is refused (0x86)", async () => {
    const genuine = await enrolled(orgs[0]!, 'REAL-1');
    const forger = certificateAuthority([genuine.deviceId]);
    const forged = forger.clients[genuine.deviceId]!;
    assert.equal(await refusal(tlsUrl, { protocolVersion: 5, ca: readFileSync(listener.ca), cert: readFileSync(forged.cert), key: readFileSync(forged.key) }), 0x86);
  });

  test("organization A's device may not publish nor subscribe on organization B's channel (0x87)", async () => {
    const d = await enrolled(orgs[0]!, 'A-DEV');
    const c = await mqttClient(tlsUrl, tls(d), clients);
    await assert.rejects(c.publishAsync(`channels/${orgs[1]!.channel}/messages`, '[{"n":"x","v":1}]', { qos: 1 }), /Not authorized/);
    await assert.rejects(c.subscribeAsync(`channels/${orgs[1]!.channel}/messages`, { qos: 1 }), /Not authorized/);
    await c.publishAsync(`channels/${orgs[0]!.channel}/messages`, '[{"n":"x","v":1}]', { qos: 1 });
  });

  test('a revoked device reconnecting in a loop is refused each time, answered from the cache, while another device keeps publishing', async () => {
    const revoked = await enrolled(orgs[0]!, 'LOOP-1');
    const other = await enrolled(orgs[0]!, 'LOOP-2');
    await t.request('POST', `/orgs/${orgs[0]!.id}/certificates/${revoked.serial}/revoke`, { token, body: { reason: 'keyCompromise' } });
    const steady = await mqttClient(tlsUrl, tls(other), clients);
    assert.equal(await refusal(tlsUrl, tls(revoked)), 0x86); // the first attempt reads the database
    const before = t.platform.authorizer.getStats().misses;
    for (let i = 0; i < 30; i++) assert.equal(await refusal(tlsUrl, tls(revoked)), 0x86);
    assert.equal(t.platform.authorizer.getStats().misses - before, 0, 'no database lookup for the attempts after the first');
    await steady.publishAsync(`channels/${orgs[0]!.channel}/messages`, '[{"n":"still","v":1}]', { qos: 1 });
  });
});
