// Enrolment and renewal over MQTT (mqtt/enrolment.ts): a device with only a one-time token, or a
// registered key, enrols on enrolment/request and gets its certificate on enrolment/accepted; a
// device connected with its certificate renews on enrolment/renew. Replies reach the requesting
// connection only, and an enrolling connection can do nothing else.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { MqttClient } from 'mqtt';
import { startTestPlatform, type TestPlatform } from '../../test/helpers/platform.js';
import { anotherRequest, certificateAuthority, deviceRequest } from '../../test/helpers/tls.js';
import { eventually } from '../../test/helpers/eventually.js';
import { mqttClient, refusal, type TestClient } from '../../test/helpers/mqtt.js';
import { createMqtt, listenMqtt, type MqttServers } from './index.js';

type Reply = { result: 'accepted' | 'rejected'; code?: string; certificate?: string; serial?: string; device_id?: string; channel_ids?: string[]; client_token?: string; message?: string };

describe('enrolment and renewal over MQTT', () => {
  let t: TestPlatform;
  let servers: MqttServers;
  let url: string;
  let tlsUrl: string;
  const listener = certificateAuthority([]);
  let org: string;
  let token: string;
  let channel: string;
  const clients: MqttClient[] = [];

  const enrolmentToken = async (pattern?: string) => (await t.request('POST', `/orgs/${org}/enrolment-tokens`, { token, body: pattern ? { serial_pattern: pattern } : {} })).json().token as string;
  /** An enrolling connection, subscribed to its replies. */
  const enrolling = async (password: string | undefined, protocolVersion: 4 | 5 = 5) => {
    const c = await mqttClient(url, { protocolVersion, username: 'enrolment', ...(password !== undefined ? { password } : {}) }, clients);
    await c.subscribeAsync('enrolment/+', { qos: 1 });
    return c;
  };
  const nextReply = async (c: TestClient, count = 1): Promise<Reply> => {
    await eventually(() => assert.ok(c.received.length >= count, 'a reply'));
    return JSON.parse(c.received[count - 1]!.payload.toString()) as Reply;
  };

  before(async () => {
    t = await startTestPlatform({ mqttPort: 0, mqttsPort: 0, mqttTlsCert: listener.serverCert, mqttTlsKey: listener.serverKey });
    servers = await listenMqtt(t.platform, createMqtt(t.platform));
    url = `mqtt://127.0.0.1:${servers.addresses.mqtt}`;
    tlsUrl = `mqtts://127.0.0.1:${servers.addresses.mqtts}`;
    token = (await t.user('mqtt-enrol@example.com')).token;
    org = (await t.request('POST', '/orgs', { token, body: { name: 'mqtt enrolment' } })).json().id;
    channel = (await t.request('POST', `/orgs/${org}/channels`, { token, body: { name: 'telemetry' } })).json().id;
  });
  after(async () => {
    for (const c of clients) c.end(true);
    await servers.close();
    await t.close();
  });

  test('with a token: the CSR on enrolment/request, the certificate on enrolment/accepted; then the device connects over TLS with it and publishes', async () => {
    await t.request('POST', `/orgs/${org}/registrations`, { token, body: { serial: 'MQ-1', channel_ids: [channel] } });
    const device = deviceRequest('/serialNumber=MQ-1');
    const c = await enrolling(await enrolmentToken('MQ-*'));
    await c.publishAsync('enrolment/request', JSON.stringify({ csr: device.csr }), { qos: 1 });
    const reply = await nextReply(c);
    assert.equal(reply.result, 'accepted', JSON.stringify(reply));
    assert.equal(c.received[0]!.topic, 'enrolment/accepted');
    assert.deepEqual(reply.channel_ids, [channel]);
    const registration = (await t.request('GET', `/orgs/${org}/registrations?serial=MQ-1`, { token })).json().registrations[0];
    assert.equal(registration.state, 'enrolled');
    const events = (await t.request('GET', `/orgs/${org}/identity-events?registration_id=${registration.id}&action=enrol`, { token })).json().events;
    assert.equal(events[0].outcome, 'ok');

    const withCert = await mqttClient(tlsUrl, { protocolVersion: 5, ca: readFileSync(listener.ca), cert: reply.certificate!, key: readFileSync(device.keyFile) }, clients);
    await withCert.publishAsync(`channels/${channel}/messages`, JSON.stringify([{ n: 'v', v: 1 }]), { qos: 1 });
    await eventually(async () => assert.equal((await t.request('GET', `/channels/${channel}/messages?publisher=${reply.device_id}&total=true`, { token })).json().total, 1));
  });

  test('with a registered key and MQTT 3.1.1: no token, the client token echoed; a second request with the same CSR is rejected as replayed', async () => {
    const device = deviceRequest('/serialNumber=MQ-2');
    await t.request('POST', `/orgs/${org}/registrations`, { token, body: { serial: 'MQ-2', public_key: device.publicKey } });
    const c = await enrolling(undefined, 4);
    await c.publishAsync('enrolment/request', JSON.stringify({ csr: device.csr, client_token: 'req-1' }), { qos: 1 });
    const first = await nextReply(c);
    assert.equal(first.result, 'accepted', JSON.stringify(first));
    assert.equal(first.client_token, 'req-1');
    await c.publishAsync('enrolment/request', JSON.stringify({ csr: device.csr, client_token: 'req-2' }), { qos: 1 });
    const second = await nextReply(c, 2);
    assert.equal(c.received[1]!.topic, 'enrolment/rejected');
    assert.deepEqual([second.result, second.code, second.client_token], ['rejected', 'enrolment.request_replayed', 'req-2']);
  });

  test('MQTT 5 request/response: the reply goes to the response topic with the correlation data', async () => {
    const device = deviceRequest('/serialNumber=MQ-3');
    const c = await mqttClient(url, { protocolVersion: 5, username: 'enrolment', password: await enrolmentToken() }, clients);
    await c.subscribeAsync('enrolment/#', { qos: 1 });
    await c.publishAsync('enrolment/request', JSON.stringify({ csr: device.csr }), { qos: 1, properties: { responseTopic: 'enrolment/reply/mine', correlationData: Buffer.from('c-42') } });
    const reply = await nextReply(c);
    assert.equal(c.received[0]!.topic, 'enrolment/reply/mine');
    assert.equal(c.received[0]!.packet.properties?.correlationData?.toString(), 'c-42');
    assert.equal(reply.result, 'accepted');
  });

  test('refusals come as replies with the stable codes, and change nothing', async () => {
    const used = await enrolmentToken();
    const device = deviceRequest('/serialNumber=MQ-4');
    const c = await enrolling(used);
    await c.publishAsync('enrolment/request', 'not json', { qos: 1 });
    assert.deepEqual([(await nextReply(c)).result, (await nextReply(c)).code], ['rejected', 'request.invalid']);
    await c.publishAsync('enrolment/request', JSON.stringify({ csr: device.csr }), { qos: 1 });
    assert.equal((await nextReply(c, 2)).result, 'accepted');
    const again = await enrolling(used);
    await again.publishAsync('enrolment/request', JSON.stringify({ csr: deviceRequest('/serialNumber=MQ-5').csr }), { qos: 1 });
    assert.equal((await nextReply(again)).code, 'enrolment.token_used');
    const nobody = await enrolling('fwe_unknown');
    await nobody.publishAsync('enrolment/request', JSON.stringify({ csr: deviceRequest('/serialNumber=MQ-6').csr }), { qos: 1 });
    assert.equal((await nextReply(nobody)).code, 'enrolment.token_invalid');
    assert.equal((await t.request('GET', `/orgs/${org}/registrations?serial=MQ-5`, { token })).json().total, 0, 'nothing registered by a refusal');
  });

  test('an enrolling connection can do nothing else: no channel, no other topic, no session kept', async () => {
    const c = await enrolling(await enrolmentToken());
    await assert.rejects(c.publishAsync(`channels/${channel}/messages`, '[{"n":"x","v":1}]', { qos: 1 }), /Not authorized|135/i);
    await assert.rejects(c.subscribeAsync(`channels/${channel}/messages`, { qos: 1 }), /Not authorized/);
    await assert.rejects(c.publishAsync('enrolment/renew', '{}', { qos: 1 }), /Not authorized|135/i);
    assert.equal(await refusal(url, { protocolVersion: 5, username: 'enrolment', clean: false, clientId: 'keeps-session', properties: { sessionExpiryInterval: 60 } }), 0x87);
  });

  test('replies are private: two enrolling connections each get only their own', async () => {
    const a = await enrolling(await enrolmentToken());
    const b = await enrolling(await enrolmentToken());
    await a.publishAsync('enrolment/request', JSON.stringify({ csr: deviceRequest('/serialNumber=MQ-A').csr }), { qos: 1 });
    await nextReply(a);
    await b.publishAsync('enrolment/request', JSON.stringify({ csr: deviceRequest('/serialNumber=MQ-B').csr }), { qos: 1 });
    await nextReply(b);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(a.received.length, 1);
    assert.equal(b.received.length, 1);
    assert.notEqual((await nextReply(a)).serial, (await nextReply(b)).serial);
  });

  test('a device connected with its certificate renews on enrolment/renew; connecting with the new one retires the old', async () => {
    const device = deviceRequest('/serialNumber=MQ-R');
    await t.request('POST', `/orgs/${org}/registrations`, { token, body: { serial: 'MQ-R', public_key: device.publicKey, channel_ids: [channel] } });
    const enrolled = (await t.request('POST', '/enrol', { body: { csr: device.csr } })).json();
    const tlsOptions = { ca: readFileSync(listener.ca), key: readFileSync(device.keyFile) };
    const c = await mqttClient(tlsUrl, { protocolVersion: 5, ...tlsOptions, cert: enrolled.certificate }, clients);
    await c.subscribeAsync('enrolment/+', { qos: 1 });
    await c.publishAsync('enrolment/renew', JSON.stringify({ csr: anotherRequest(device, '/serialNumber=MQ-R') }), { qos: 1 });
    const renewed = await nextReply(c);
    assert.equal(renewed.result, 'accepted', JSON.stringify(renewed));
    assert.notEqual(renewed.serial, enrolled.serial);
    c.end(true);
    const next = await mqttClient(tlsUrl, { protocolVersion: 5, ...tlsOptions, cert: renewed.certificate! }, clients);
    await next.publishAsync(`channels/${channel}/messages`, JSON.stringify([{ n: 'v', v: 2 }]), { qos: 1 });
    await eventually(async () => assert.equal((await t.request('GET', `/orgs/${org}/certificates/${enrolled.serial}`, { token })).json().revocation_reason, 'superseded'));
    assert.ok(await refusal(tlsUrl, { protocolVersion: 5, ...tlsOptions, cert: enrolled.certificate }) > 0, 'the old certificate connects no more');

    // with a secret there is nothing to renew
    const plain = (await t.request('POST', `/orgs/${org}/devices`, { token, body: { name: 'secret device' } })).json();
    const s = await mqttClient(url, { protocolVersion: 5, username: plain.id, password: plain.secret }, clients);
    await assert.rejects(s.publishAsync('enrolment/renew', JSON.stringify({ csr: anotherRequest(device, '/serialNumber=MQ-R') }), { qos: 1 }), /Not authorized|135/i);
  });
});
