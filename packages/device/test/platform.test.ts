// The SDK against a real Fleetwire process: credentials, publishing SenML and JSON that the HTTP
// readers give back, subscriptions, refusals, and a platform killed and started again.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connectDevice, ConnectionRefusedError, FleetwireDevice, PublishRefusedError, SubscribeRefusedError, type DeviceMessage, type DeviceOptions } from '../src/index.js';
import { eventually, TestPlatform, type Fleet } from './platform.js';

interface SenmlRow {
  name: string;
  value?: number;
  string_value?: string;
  unit?: string;
  subtopic?: string;
  publisher: string;
  protocol: string;
}

describe('the device SDK against a running platform', () => {
  let platform: TestPlatform;
  let fleet: Fleet;
  const devices: FleetwireDevice[] = [];
  let clients = 0;

  /** A connected client for device `k` of the fleet, with a client id of its own; closed after the tests. */
  const device = async (k: number, options: Partial<DeviceOptions> = {}) => {
    const d = await connectDevice({ url: platform.mqttUrl, deviceId: fleet.devices[k]!.id, secret: fleet.devices[k]!.secret, clientId: `sdk-${k}-${++clients}`, ...options });
    devices.push(d);
    return d;
  };

  /** Collects the messages a handler is given; `next(n)` waits for the n-th. */
  const inbox = () => {
    const messages: DeviceMessage[] = [];
    return {
      messages,
      handler: (m: DeviceMessage) => void messages.push(m),
      next: (n: number) => eventually(() => messages[n - 1] ?? assert.fail(`${messages.length} messages so far, waiting for ${n}`)),
    };
  };

  const records = (query: string) => platform.call<{ total: number; messages: SenmlRow[] }>('GET', `/channels/${fleet.channel}/messages?total=true&${query}`, { token: fleet.token, expect: 200 });

  before(async () => {
    platform = await TestPlatform.start();
    fleet = await platform.fleet(3);
  });

  after(async () => {
    await Promise.all(devices.map((d) => d.close()));
    await platform?.stop();
  });

  test('SenML and JSON published by the device are stored and read back over HTTP', async () => {
    const d = await device(0);
    // QoS 1: resolved on the PUBACK, which the platform sends once the message is stored
    await d.publishSenml(fleet.channel, [{ bn: 'sdk-1:', n: 'temp', u: 'Cel', v: 21.5 }, { n: 'label', vs: 'lab' }], { subtopic: 'lab/floor-2' });
    await d.publishJson(fleet.channel, { temp: 22.5, status: 'ok' }, { subtopic: 'json' });

    const temp = await records('name=sdk-1:temp');
    assert.equal(temp.total, 1);
    const { name, value, unit, subtopic, protocol } = temp.messages[0]!;
    assert.deepEqual({ name, value, unit, subtopic, protocol }, { name: 'sdk-1:temp', value: 21.5, unit: 'Cel', subtopic: 'lab/floor-2', protocol: 'mqtt' });
    assert.equal((await records('name=sdk-1:label')).messages[0]?.string_value, 'lab');

    const json = await platform.call<{ total: number; messages: { document?: unknown; protocol?: string }[] }>('GET', `/channels/${fleet.channel}/messages?total=true&type=json&subtopic=json`, { token: fleet.token, expect: 200 });
    assert.equal(json.total, 1);
    assert.deepEqual(json.messages[0]?.document, { temp: 22.5, status: 'ok' });
  });

  test('a subscription receives messages from MQTT and HTTP publishers, decoded by content type', async () => {
    const listener = await device(1);
    const all = inbox();
    const lab = inbox();
    await listener.subscribe(fleet.channel, all.handler);
    await listener.subscribe(fleet.channel, { subtopic: 'lab/+' }, lab.handler);

    const publisher = await device(0);
    await publisher.publishSenml(fleet.channel, { n: 'humidity', u: '%RH', v: 40 }, { subtopic: 'lab/1' });
    await publisher.publishJson(fleet.channel, { door: 'open' });
    await platform.call('POST', `/channels/${fleet.channel}/messages/http`, { authorization: `Device ${fleet.devices[0]!.secret}`, body: 'plain bytes', contentType: 'application/octet-stream', expect: 202 });

    const senml = await all.next(1);
    assert.equal(senml.contentType, 'application/senml+json');
    assert.equal(senml.subtopic, 'lab/1');
    assert.deepEqual(senml.senml, [{ n: 'humidity', u: '%RH', v: 40 }]);
    const json = await all.next(2);
    assert.equal(json.contentType, 'application/json');
    assert.equal(json.subtopic, '');
    assert.deepEqual(json.json, { door: 'open' });
    assert.equal(json.senml, undefined);
    const bytes = await all.next(3);
    assert.equal(bytes.contentType, 'application/octet-stream');
    assert.equal(bytes.payload.toString(), 'plain bytes');
    assert.equal(bytes.json, undefined);

    // the narrower filter saw only the lab message
    assert.equal((await lab.next(1)).subtopic, 'lab/1');
    assert.equal(lab.messages.length, 1);
  });

  test('a handler that throws is reported as an error event and does not stop the other handlers', async () => {
    const d = await device(1);
    const delivered = inbox();
    await d.subscribe(fleet.channel, { subtopic: 'throws' }, () => {
      throw new Error('handler failed');
    });
    await d.subscribe(fleet.channel, { subtopic: 'throws' }, async () => Promise.reject(new Error('async handler failed')));
    await d.subscribe(fleet.channel, { subtopic: '#' }, delivered.handler);
    const errors: string[] = [];
    d.on('error', (e) => errors.push(e.message));
    await (await device(0)).publishSenml(fleet.channel, { n: 'x', v: 1 }, { subtopic: 'throws' });
    assert.equal((await delivered.next(1)).subtopic, 'throws');
    await eventually(() => assert.deepEqual(errors.sort(), ['async handler failed', 'handler failed']));
    assert.equal(d.connected, true);
  });

  test('a killed and restarted platform: the client reconnects, restores its subscription and sends what it queued meanwhile', async () => {
    const d = await device(1, { reconnect: { minDelayMs: 50, maxDelayMs: 500 } });
    const received = inbox();
    await d.subscribe(fleet.channel, { subtopic: 'restart' }, received.handler);
    const events: string[] = [];
    for (const name of ['connected', 'disconnected', 'reconnecting'] as const) d.on(name, () => events.push(name));

    const disconnected = once(d, 'disconnected');
    await platform.kill();
    await disconnected;
    assert.equal(d.connected, false);
    // made while the platform is down: kept in the outbox, sent after the reconnection
    const queued = d.publishSenml(fleet.channel, { n: 'offline', v: 1 }, { subtopic: 'queued' });
    assert.equal(d.outboxSize, 1);
    await assert.rejects(d.publishSenml(fleet.channel, { n: 'offline', v: 2 }, { qos: 0 }), { code: 'not_connected' });

    const reconnected = once(d, 'connected');
    await platform.restart();
    const [info] = (await reconnected) as [{ reconnected: boolean; sessionPresent: boolean }];
    assert.equal(info.reconnected, true);
    await queued;
    assert.equal(d.outboxSize, 0);
    assert.equal((await records('name=offline')).total, 1);
    assert.ok(events.includes('reconnecting'), events.join(', '));

    // the restored subscription delivers again, also what another protocol publishes
    await platform.call('POST', `/channels/${fleet.channel}/messages/restart`, { authorization: `Device ${fleet.devices[0]!.secret}`, body: [{ n: 'after', v: 2 }], contentType: 'application/senml+json', expect: 202 });
    assert.deepEqual((await received.next(1)).senml, [{ n: 'after', v: 2 }]);
  });

  test('a persistent session (clean: false) keeps what was published while the device was away', async () => {
    const options = { url: platform.mqttUrl, deviceId: fleet.devices[1]!.id, secret: fleet.devices[1]!.secret, clientId: 'sdk-persistent', clean: false };
    const first = await connectDevice(options);
    await first.subscribe(fleet.channel, { subtopic: 'away' }, () => {});
    await first.close();
    await platform.call('POST', `/channels/${fleet.channel}/messages/away`, { authorization: `Device ${fleet.devices[0]!.secret}`, body: [{ n: 'while-away', v: 3 }], contentType: 'application/senml+json', expect: 202 });

    // the handler is in place before the connection: the queued message comes right after the CONNACK
    const again = new FleetwireDevice(options);
    devices.push(again);
    const received = inbox();
    await again.subscribe(fleet.channel, { subtopic: 'away' }, received.handler);
    const connected = new Promise<{ sessionPresent: boolean }>((resolve) => again.once('connected', resolve));
    await again.connect();
    assert.equal((await connected).sessionPresent, true);
    assert.deepEqual((await received.next(1)).senml, [{ n: 'while-away', v: 3 }]);
  });

  test('a wrong secret is refused with what the platform said, and not retried', async () => {
    for (const protocolVersion of [5, 4] as const) {
      const d = new FleetwireDevice({ url: platform.mqttUrl, deviceId: fleet.devices[0]!.id, secret: 'not-the-secret', protocolVersion, reconnect: { minDelayMs: 10 } });
      let attempts = 0;
      d.on('reconnecting', () => attempts++);
      const closed = new Promise((resolve) => d.once('close', resolve));
      const error = await d.connect().then(
        () => assert.fail('connected with a wrong secret'),
        (e: unknown) => e,
      );
      assert.ok(error instanceof ConnectionRefusedError, String(error));
      assert.equal(error.reasonCode, protocolVersion === 5 ? 0x86 : 4);
      assert.equal(error.retryable, false);
      assert.match(error.message, protocolVersion === 5 ? /0x86 bad user name or password/ : /return code 4 bad user name or password/);
      await closed;
      assert.equal(d.state, 'closed');
      assert.equal(attempts, 0);
    }
  });

  test('publishing or subscribing where the device has no connection is refused with the reason code', async () => {
    const d = await device(0);
    const elsewhere = '0190a3c4-0000-7000-8000-000000000000';
    await assert.rejects(d.publishSenml(elsewhere, { n: 'x', v: 1 }), (e: unknown) => e instanceof PublishRefusedError && e.reasonCode === 0x87);
    await assert.rejects(d.subscribe(elsewhere, () => {}), (e: unknown) => e instanceof SubscribeRefusedError && e.reasonCode === 0x87);
    // the connection is still good
    await d.publishSenml(fleet.channel, { n: 'still-connected', v: 1 });
    assert.equal((await records('name=still-connected')).total, 1);
  });

  test('when an operator withdraws a subscribe connection, the client reconnects and reports the subscription it lost', async () => {
    const other = (await platform.call<{ id: string }>('POST', `/orgs/${fleet.org}/channels`, { token: fleet.token, body: { name: 'sdk-withdrawn' }, expect: 201 })).id;
    const access = { device_ids: [fleet.devices[1]!.id], channel_ids: [other], types: ['subscribe'] };
    await platform.call('POST', `/orgs/${fleet.org}/connections`, { token: fleet.token, body: access, expect: 204 });
    const d = await device(1, { reconnect: { minDelayMs: 20 } });
    const kept = inbox();
    await d.subscribe(fleet.channel, { subtopic: 'kept' }, kept.handler);
    await d.subscribe(other, () => {});
    const lost = new Promise<Error>((resolve) => d.once('error', resolve));
    const disconnected = new Promise<{ reasonCode?: number }>((resolve) => d.once('disconnected', resolve));

    await platform.call('DELETE', `/orgs/${fleet.org}/connections`, { token: fleet.token, body: access, expect: 204 });
    assert.equal((await disconnected).reasonCode, 0x98); // administrative action
    const error = await lost;
    assert.ok(error instanceof SubscribeRefusedError, String(error));
    assert.equal(error.filter, `channels/${other}/messages/#`);
    // still connected, and the other subscription delivers
    await eventually(() => assert.equal(d.connected, true));
    await platform.call('POST', `/channels/${fleet.channel}/messages/kept`, { authorization: `Device ${fleet.devices[0]!.secret}`, body: [{ n: 'kept', v: 1 }], contentType: 'application/senml+json', expect: 202 });
    assert.deepEqual((await kept.next(1)).senml, [{ n: 'kept', v: 1 }]);
  });

  test('a rotated secret ends the session and the client stops with the refusal instead of retrying', async () => {
    const d = await device(2, { reconnect: { minDelayMs: 20 } });
    const closed = new Promise<{ error?: Error }>((resolve) => d.once('close', resolve));
    await platform.call('POST', `/orgs/${fleet.org}/devices/${fleet.devices[2]!.id}/secret`, { token: fleet.token, expect: 200 });
    const { error } = await closed;
    assert.ok(error instanceof ConnectionRefusedError, String(error));
    assert.equal(error.reasonCode, 0x86);
    assert.equal(d.state, 'closed');
  });

  test('MQTT over WebSocket, and MQTT 3.1.1 with SenML (its default content type)', async () => {
    const ws = await device(0, { url: platform.wsUrl });
    await ws.publishSenml(fleet.channel, { n: 'over-ws', v: 1 });
    const v311 = await device(1, { protocolVersion: 4 });
    await v311.publishSenml(fleet.channel, { n: 'over-311', v: 1 });
    await assert.rejects(v311.publishJson(fleet.channel, { a: 1 }), { code: 'content_type_needs_mqtt5' });
    assert.equal((await records('name=over-ws')).total, 1);
    assert.equal((await records('name=over-311')).total, 1);
  });
});
