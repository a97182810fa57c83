/**
 * A message that cannot be stored never blocks the others, one too deep is refused at the door on
 * every protocol, and a failing database makes the platform say so (/ready, 503, MQTT 5 0x97, 5.03)
 * instead of acknowledging messages that are not stored; when it comes back the backlog is stored.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { generate, parse, type ParsedPacket } from 'coap-packet';
import type { MqttClient } from 'mqtt';
import { startTestPlatform, type TestPlatform } from './helpers/platform.js';
import { eventually } from './helpers/eventually.js';
import { mqttClient } from './helpers/mqtt.js';
import { natsUrl, serviceAvailable } from './helpers/services.js';
import { uuidv7 } from '../src/core/ids.js';
import type { Envelope } from '../src/messaging/envelope.js';
import { NatsBus } from '../src/messaging/nats-bus.js';
import { writerConsumer } from '../src/storage/writer.js';
import { createMqtt, listenMqtt } from '../src/mqtt/index.js';
import { listenCoap } from '../src/coap/index.js';
import { option, uint } from '../src/coap/message.js';

/** An object holding 40,000 levels of arrays, 80 KB: under the size limit, past any recursive walk's stack. */
const deepJson = Buffer.from('{"a":' + '['.repeat(40_000) + ']'.repeat(40_000) + '}');

interface Tenant {
  org: string;
  channel: string;
  device: { id: string; secret: string };
  token: string;
}

async function tenant(t: TestPlatform, name: string): Promise<Tenant> {
  const owner = await t.user(`${name}-owner@example.com`);
  const org = (await t.request('POST', '/orgs', { token: owner.token, body: { name } })).json().id as string;
  const device = (await t.request('POST', `/orgs/${org}/devices`, { token: owner.token, body: { name: 'd' } })).json() as Tenant['device'];
  const channel = (await t.request('POST', `/orgs/${org}/channels`, { token: owner.token, body: { name: 'c' } })).json().id as string;
  await t.request('POST', `/orgs/${org}/connections`, { token: owner.token, body: { device_ids: [device.id], channel_ids: [channel], types: ['publish'] } });
  return { org, channel, device, token: owner.token };
}

const publish = (t: TestPlatform, x: Tenant, payload: string | Buffer, contentType = 'application/senml+json') =>
  t.app.inject({ method: 'POST', url: `/channels/${x.channel}/messages`, payload, headers: { authorization: `Device ${x.device.secret}`, 'content-type': contentType } });

/** Messages stored on a tenant's channel: SenML records (one per message here) and JSON documents. */
async function storedCount(t: TestPlatform, x: Tenant): Promise<number> {
  const senml = (await t.request('GET', `/channels/${x.channel}/messages?total=true&limit=1`, { token: x.token })).json();
  const json = (await t.request('GET', `/channels/${x.channel}/messages?total=true&type=json&limit=1`, { token: x.token })).json();
  return senml.total + json.total;
}

async function metric(t: TestPlatform, name: string): Promise<number> {
  const text = await t.platform.metrics.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

/** An envelope as an older node, or a bug past the door, would put it on the bus: not validated. */
function unvalidated(x: Tenant, payload: Buffer, contentType: string): Envelope {
  const now = Date.now();
  return { id: uuidv7(now), org: x.org, channel: x.channel, subtopic: 'poison', publisher: x.device.id, protocol: 'http', contentType, payload, receivedAt: now };
}

/**
 * Good messages of two organizations with poison ones among them, all in the writer's first batch
 * (the writer is not running yet). Their 202s come only once they are stored: `answered` resolves
 * when every one came, after the caller started the writer.
 */
async function poisonAmongGood(t: TestPlatform, poisons: Envelope[] | ((a: Tenant) => Envelope[])): Promise<{ a: Tenant; b: Tenant; poison: Envelope[]; answered: Promise<void> }> {
  const a = await tenant(t, 'a');
  const b = await tenant(t, 'b');
  const poison = typeof poisons === 'function' ? poisons(a) : poisons;
  const answers: Promise<number>[] = [];
  for (let i = 0; i < 10; i++) {
    for (const x of [a, b]) answers.push(publish(t, x, JSON.stringify([{ n: 'temp', v: i }])).then((r) => r.statusCode));
    if (i === 4) for (const p of poison) await t.platform.bus.publish(p);
  }
  answers.push(publish(t, b, '{"doc":"no numbers"}', 'application/json').then((r) => r.statusCode));
  const queued = answers.length + poison.length;
  if (t.platform.bus.kind === 'memory') await eventually(() => assert.equal(t.platform.bus.stats().pending[writerConsumer], queued), 5000, 10);
  const answered = Promise.all(answers).then((codes) => assert.deepEqual(codes, codes.map(() => 202)));
  answered.catch(() => {}); // awaited by the caller once the writer runs
  return { a, b, poison, answered };
}

async function assertSetAside(t: TestPlatform, a: Tenant, b: Tenant, poison: Envelope[], error: RegExp): Promise<void> {
  await eventually(async () => {
    assert.equal(await storedCount(t, a), 10);
    assert.equal(await storedCount(t, b), 11);
  }, 15_000, 50);
  const list = (await t.request('GET', `/orgs/${a.org}/dead-letters`, { token: a.token })).json();
  assert.equal(list.total, poison.length);
  assert.deepEqual(list.dead_letters.map((d: { id: string }) => d.id), poison.map((p) => p.id).sort());
  const first = list.dead_letters[0];
  assert.equal(first.channel, a.channel);
  assert.equal(first.publisher, a.device.id);
  assert.equal(first.subtopic, 'poison');
  assert.match(first.error, error);
  const one = (await t.request('GET', `/orgs/${a.org}/dead-letters/${first.id}`, { token: a.token })).json();
  assert.deepEqual(Buffer.from(one.payload, 'base64'), poison.find((p) => p.id === first.id)!.payload);
  assert.equal((await t.request('GET', `/orgs/${b.org}/dead-letters`, { token: b.token })).json().total, 0, "the other organization's list is empty");
  assert.equal(await metric(t, 'fleetwire_messages_dead_lettered_total'), poison.length);
  // acknowledged: not delivered again, so not set aside again
  await eventually(() => assert.equal(t.platform.bus.stats().pending[writerConsumer] ?? 0, 0), 5000, 50);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(await metric(t, 'fleetwire_messages_dead_lettered_total'), poison.length);
  assert.deepEqual(t.platform.writer.health(), { ok: true });
}

/** Poison among good messages in the writer's first batch: the writer starts, sets the poison aside and stores the rest. */
async function setAsideWhileOthersAreStored(t: TestPlatform, poisons: (a: Tenant) => Envelope[], error: RegExp): Promise<void> {
  const { a, b, poison, answered } = await poisonAmongGood(t, poisons);
  await t.platform.writer.start();
  await answered;
  await assertSetAside(t, a, b, poison, error);
}

const nats = await serviceAvailable('NATS with JetStream', natsUrl);

describe('a message that cannot be stored', () => {
  test('is set aside in the dead letters, and every other message of both organizations is stored (in-process bus)', async () => {
    const t = await startTestPlatform({}, { writer: false });
    try {
      await setAsideWhileOthersAreStored(t, (a) => [unvalidated(a, deepJson, 'application/json')], /call stack/);
    } finally {
      await t.close();
    }
  });

  test('several in one batch are each set aside alone', async () => {
    const t = await startTestPlatform({}, { writer: false });
    try {
      // documents too deep to store, and one holding U+0000, which PostgreSQL's jsonb refuses and the writer's parse too
      const { a, b, poison, answered } = await poisonAmongGood(t, (a) => [
        unvalidated(a, deepJson, 'application/json'),
        unvalidated(a, Buffer.from('{"a":1,"b":' + '['.repeat(30_000) + ']'.repeat(30_000) + '}'), 'application/json'),
        unvalidated(a, Buffer.from('{"a":"\\u0000"}'), 'application/json'),
      ]);
      await t.platform.writer.start();
      await answered;
      await assertSetAside(t, a, b, poison, /call stack|\\u0000/);
    } finally {
      await t.close();
    }
  });

  test('can be deleted one by one and all at once, by the organization only', async () => {
    const t = await startTestPlatform({}, { writer: false });
    try {
      const { a, b, poison, answered } = await poisonAmongGood(t, (a) => [unvalidated(a, deepJson, 'application/json'), unvalidated(a, deepJson, 'application/json'), unvalidated(a, deepJson, 'application/json')]);
      await t.platform.writer.start();
      await answered;
      await assertSetAside(t, a, b, poison, /call stack/);
      const [first, ...rest] = poison.map((p) => p.id).sort();
      assert.equal((await t.request('DELETE', `/orgs/${b.org}/dead-letters/${first}`, { token: b.token })).statusCode, 404, "another organization's id is not found");
      assert.equal((await t.request('DELETE', `/orgs/${b.org}/dead-letters`, { token: b.token })).json().deleted, 0);
      assert.equal((await t.request('DELETE', `/orgs/${a.org}/dead-letters/${first}`, { token: a.token })).statusCode, 204);
      const gone = await t.request('GET', `/orgs/${a.org}/dead-letters/${first}`, { token: a.token });
      assert.equal(gone.statusCode, 404);
      assert.equal(gone.json().code, 'dead_letter.not_found');
      const page = (await t.request('GET', `/orgs/${a.org}/dead-letters?offset=1&limit=1`, { token: a.token })).json();
      assert.deepEqual({ total: page.total, offset: page.offset, limit: page.limit, ids: page.dead_letters.map((d: { id: string }) => d.id) }, { total: 2, offset: 1, limit: 1, ids: [rest[1]] });
      assert.deepEqual((await t.request('DELETE', `/orgs/${a.org}/dead-letters`, { token: a.token })).json(), { deleted: 2 });
      assert.equal((await t.request('GET', `/orgs/${a.org}/dead-letters`, { token: a.token })).json().total, 0);
    } finally {
      await t.close();
    }
  });

  const streams: string[] = [];
  after(async () => {
    if (streams.length === 0) return;
    const nc = await connect({ servers: natsUrl });
    const jsm = await jetstreamManager(nc);
    for (const s of streams) await jsm.streams.delete(s).catch(() => {});
    await nc.close();
  });

  test('on NATS is set aside and no longer redelivered, and the others are stored', { skip: nats === true ? false : nats }, async () => {
    const tag = randomBytes(4).toString('hex');
    const names = { stream: `FW_TEST_POISON_${tag}`, subjectPrefix: `fwpoison${tag}.msg`, controlPrefix: `fwpoison${tag}.ctl` };
    streams.push(names.stream);
    const bus = await NatsBus.connect({ url: natsUrl, ...names, durable: [writerConsumer], retryDelayMs: 100 });
    const t = await startTestPlatform({}, { bus, writer: false });
    try {
      await setAsideWhileOthersAreStored(t, (a) => [unvalidated(a, deepJson, 'application/json')], /call stack/);
    } finally {
      await t.close();
      await bus.close();
    }
  });
});

/** Sends one CoAP request and resolves with its reply. */
async function coapRequest(port: number, path: string, query: string[], contentFormat: number, payload: Buffer): Promise<ParsedPacket> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  try {
    const token = randomBytes(4);
    const options = [...path.split('/').map((seg) => ({ name: String(option.uriPath), value: Buffer.from(seg) })), ...query.map((q) => ({ name: String(option.uriQuery), value: Buffer.from(q) })), { name: String(option.contentFormat), value: uint(contentFormat) }];
    const reply = new Promise<ParsedPacket>((resolve) => socket.on('message', (m) => {
      const p = parse(m);
      if (p.token.equals(token) && !p.code.startsWith('0.')) resolve(p);
    }));
    socket.send(generate({ code: 'POST', confirmable: true, messageId: 1, token, options, payload }, 70_000), port, '127.0.0.1');
    return await reply;
  } finally {
    socket.close();
  }
}

describe('the door and the store, on every protocol', () => {
  test('a payload nested too deeply is refused: HTTP 400, MQTT 5 0x99, CoAP 4.00; nothing is set aside', async () => {
    const t = await startTestPlatform({ mqttPort: 0, coapPort: 0 });
    const mqttServers = await listenMqtt(t.platform, createMqtt(t.platform));
    const coap = await listenCoap(t.platform);
    const clients: MqttClient[] = [];
    try {
      const a = await tenant(t, 'a');
      const http = await publish(t, a, deepJson, 'application/json');
      assert.equal(http.statusCode, 400);
      assert.equal(http.json().code, 'message.invalid_payload');
      assert.match(http.json().detail, /nested deeper than 32 levels/);
      assert.equal((await publish(t, a, deepJson, 'application/senml+json')).statusCode, 400);

      const mqtt = await mqttClient(`mqtt://127.0.0.1:${mqttServers.addresses.mqtt}`, { protocolVersion: 5, username: a.device.id, password: a.device.secret }, clients);
      await assert.rejects(mqtt.publishAsync(`channels/${a.channel}/messages`, deepJson, { qos: 1, properties: { contentType: 'application/json' } }), (e: Error & { code?: number }) => e.code === 0x99);

      // small enough for one datagram, one level too deep
      const reply = await coapRequest(coap.address.port, `channels/${a.channel}/messages`, [`auth=${a.device.secret}`], 50, Buffer.from('['.repeat(33) + ']'.repeat(33)));
      assert.equal(reply.code, '4.00');
      assert.match(reply.payload.toString(), /^message\.invalid_payload: the payload is nested deeper than 32 levels/);

      // the publishers are still served
      assert.equal((await publish(t, a, '[{"n":"t","v":1}]')).statusCode, 202);
      await mqtt.publishAsync(`channels/${a.channel}/messages`, '[{"n":"t","v":2}]', { qos: 1 });
      await eventually(async () => assert.equal(await storedCount(t, a), 2));
      assert.equal((await t.request('GET', `/orgs/${a.org}/dead-letters`, { token: a.token })).json().total, 0);
    } finally {
      for (const c of clients) c.end(true);
      await coap.close();
      await mqttServers.close();
      await t.close();
    }
  });

  test('a failing database makes /ready fail and publishes get 503, 0x97 and 5.03; once it is back the backlog is stored', async () => {
    // a store timeout longer than the outage: what was published when it began is answered once stored
    const t = await startTestPlatform({ mqttPort: 0, coapPort: 0, storeTimeout: 60_000 });
    const mqttServers = await listenMqtt(t.platform, createMqtt(t.platform));
    const coap = await listenCoap(t.platform);
    const clients: MqttClient[] = [];
    try {
      const a = await tenant(t, 'a');
      const senml = (v: number) => JSON.stringify([{ n: 'temp', v }]);
      for (let i = 0; i < 5; i++) assert.equal((await publish(t, a, senml(i))).statusCode, 202);
      await eventually(async () => assert.equal(await storedCount(t, a), 5));
      assert.equal((await t.request('GET', '/ready')).statusCode, 200);

      // the table every batch writes first is gone: every write fails, the probe's too
      await t.platform.db.exec('ALTER TABLE message_ids RENAME TO message_ids_away');
      // taken before the writer finds out, but not acknowledged: they are not stored
      let answeredEarly = false;
      const during = Promise.all([5, 6, 7].map((i) => publish(t, a, senml(i)).then((r) => ((answeredEarly = true), r))));
      const notReady = await eventually(async () => {
        const r = await t.request('GET', '/ready');
        assert.equal(r.statusCode, 503);
        return r.json();
      }, 10_000, 50);
      assert.equal(notReady.code, 'service.unavailable');
      assert.match(notReady.detail, /^the message store is failing: .*message_ids/);

      const refused = await publish(t, a, senml(100));
      assert.equal(refused.statusCode, 503);
      assert.equal(refused.json().code, 'message.overloaded');
      const mqtt = await mqttClient(`mqtt://127.0.0.1:${mqttServers.addresses.mqtt}`, { protocolVersion: 5, username: a.device.id, password: a.device.secret }, clients);
      await assert.rejects(mqtt.publishAsync(`channels/${a.channel}/messages`, senml(101), { qos: 1 }), (e: Error & { code?: number }) => e.code === 0x97);
      const reply = await coapRequest(coap.address.port, `channels/${a.channel}/messages`, [`auth=${a.device.secret}`], 110, Buffer.from(senml(102)));
      assert.equal(reply.code, '5.03');
      assert.match(reply.payload.toString(), /^message\.overloaded: /);
      // a failing database is not the messages' fault: none is set aside
      assert.equal((await t.request('GET', `/orgs/${a.org}/dead-letters`, { token: a.token })).json().total, 0);

      assert.equal(answeredEarly, false, 'no 202 while the database fails');
      await t.platform.db.exec('ALTER TABLE message_ids_away RENAME TO message_ids');
      assert.deepEqual((await during).map((r) => r.statusCode), [202, 202, 202], 'answered once stored');
      const accepted = 3;
      await eventually(async () => assert.equal((await t.request('GET', '/ready')).statusCode, 200), 15_000, 50);
      assert.equal((await publish(t, a, senml(8))).statusCode, 202);
      await mqtt.publishAsync(`channels/${a.channel}/messages`, senml(9), { qos: 1 });
      // those accepted while the database failed, and the two after it came back
      await eventually(async () => assert.equal(await storedCount(t, a), 5 + accepted + 2), 10_000, 50);
      assert.equal((await t.request('GET', `/orgs/${a.org}/dead-letters`, { token: a.token })).json().total, 0);
      assert.equal(await metric(t, 'fleetwire_messages_dead_lettered_total'), 0);
    } finally {
      for (const c of clients) c.end(true);
      await coap.close();
      await mqttServers.close();
      await t.close();
    }
  });
});
