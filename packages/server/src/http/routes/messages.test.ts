import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encode as cborEncode } from 'cbor-x';
import { startTestPlatform, type TestPlatform } from '../../../test/helpers/platform.js';
import { addMember } from '../../../test/helpers/members.js';
import { MemoryBus } from '../../messaging/memory-bus.js';
import { writerConsumer } from '../../storage/writer.js';
import { eventually } from '../../../test/helpers/eventually.js';

interface Fixture {
  org: string;
  channel: string;
  other: string;
  device: { id: string; secret: string };
  reader: { id: string; secret: string };
  stranger: { id: string; secret: string };
  ownerToken: string;
  viewerToken: string;
  outsiderToken: string;
}

async function fixture(t: TestPlatform): Promise<Fixture> {
  const owner = await t.user('owner@example.com');
  const viewer = await t.user('viewer@example.com');
  const outsider = await t.user('outsider@example.com');
  const org = (await t.request('POST', '/orgs', { token: owner.token, body: { name: 'Org' } })).json().id as string;
  await addMember(t, org, owner.token, viewer, 'viewer');
  const mk = async (name: string) => (await t.request('POST', `/orgs/${org}/devices`, { token: owner.token, body: { name } })).json() as { id: string; secret: string };
  const device = await mk('publisher');
  const reader = await mk('reader');
  const stranger = await mk('stranger');
  const channel = (await t.request('POST', `/orgs/${org}/channels`, { token: owner.token, body: { name: 'c' } })).json().id as string;
  const other = (await t.request('POST', `/orgs/${org}/channels`, { token: owner.token, body: { name: 'other' } })).json().id as string;
  await t.request('POST', `/orgs/${org}/connections`, { token: owner.token, body: { device_ids: [device.id], channel_ids: [channel], types: ['publish'] } });
  await t.request('POST', `/orgs/${org}/connections`, { token: owner.token, body: { device_ids: [reader.id], channel_ids: [channel], types: ['subscribe'] } });
  return { org, channel, other, device, reader, stranger, ownerToken: owner.token, viewerToken: viewer.token, outsiderToken: outsider.token };
}

function assertFormatRawNeedsBinary(res: { statusCode: number; json(): { code: string } }): void {
  assert.equal(res.statusCode, 400);
  assert.equal(res.json().code, 'message.invalid_query');
}

describe('HTTP publish and the readers API', () => {
  let t: TestPlatform;
  let f: Fixture;
  before(async () => {
    t = await startTestPlatform({ messageMaxSize: 4096 });
    f = await fixture(t);
  });
  after(() => t.close());

  const publish = (path: string, body: string | Buffer, contentType: string, auth: string) =>
    t.app.inject({ method: 'POST', url: path, payload: body, headers: { 'content-type': contentType, authorization: auth } });
  const read = (query: string, auth = `Device ${f.reader.secret}`) => t.app.inject({ method: 'GET', url: `/channels/${f.channel}/messages?total=true&${query}`, headers: { authorization: auth } });

  test('SenML JSON published over HTTP is stored one row per record and read back', async () => {
    const pack = [{ bn: 'room1:', bt: 1700000000, bu: 'Cel', n: 'temp', v: 21.5 }, { n: 'temp', t: 10, v: 22 }, { n: 'door', vb: true }, { n: 'label', vs: 'hello, "world"' }];
    const res = await publish(`/channels/${f.channel}/messages/lab/bench`, JSON.stringify(pack), 'application/senml+json', `Device ${f.device.secret}`);
    assert.equal(res.statusCode, 202);
    assert.match(String(res.headers['x-message-id']), /^[0-9a-f-]{36}$/);
    const body = await eventually(async () => {
      const r = (await read('subtopic=lab/bench&dir=asc')).json();
      assert.equal(r.total, 4);
      return r;
    });
    assert.deepEqual(body.messages[0], { channel: f.channel, subtopic: 'lab/bench', publisher: f.device.id, protocol: 'http', name: 'room1:temp', unit: 'Cel', time: 1700000000, value: 21.5 });
    // oldest first; records of one time keep their order in the pack
    assert.deepEqual(body.messages.map((m: { name: string; time: number }) => [m.name, m.time]), [['room1:temp', 1700000000], ['room1:door', 1700000000], ['room1:label', 1700000000], ['room1:temp', 1700000010]]);
    const door = body.messages.find((m: { name: string }) => m.name === 'room1:door');
    assert.equal(door.bool_value, true);
    const label = body.messages.find((m: { name: string }) => m.name === 'room1:label');
    assert.equal(label.string_value, 'hello, "world"');
  });

  test('SenML CBOR with integer labels round-trips', async () => {
    const pack = [new Map<number, unknown>([[-2, 'cbor:'], [0, 'v'], [2, 7.25], [6, 1700000100]])];
    const res = await publish(`/channels/${f.channel}/messages/cbor`, cborEncode(pack), 'application/senml+cbor', `Thing ${f.device.secret}`);
    assert.equal(res.statusCode, 202);
    await eventually(async () => {
      const r = (await read('subtopic=cbor')).json();
      assert.deepEqual(r.messages, [{ channel: f.channel, subtopic: 'cbor', publisher: f.device.id, protocol: 'http', name: 'cbor:v', time: 1700000100, value: 7.25 }]);
    });
  });

  test('JSON objects are stored as documents with their numeric fields queryable', async () => {
    const res = await publish(`/channels/${f.channel}/messages/json`, JSON.stringify([{ temp: 20, status: 'ok' }, { temp: 30, hum: 0.5 }]), 'application/json', `Basic ${Buffer.from(`${f.device.id}:${f.device.secret}`).toString('base64')}`);
    assert.equal(res.statusCode, 202);
    await eventually(async () => {
      const docs = (await read('type=json&subtopic=json&dir=asc')).json();
      assert.deepEqual(docs.messages.map((d: { document: unknown }) => d.document), [{ temp: 20, status: 'ok' }, { temp: 30, hum: 0.5 }]);
      const hot = (await read('subtopic=json&name=temp&v=25&comparator=gt')).json();
      assert.equal(hot.total, 1);
      assert.equal(hot.messages[0].value, 30);
    });
  });

  test('other content types are stored as opaque bytes, exactly', async () => {
    const bytes = Buffer.from([0, 1, 2, 250, 255, 10, 13]);
    const res = await publish(`/channels/${f.channel}/messages/raw`, bytes, 'application/octet-stream', `Device ${f.device.secret}`);
    assert.equal(res.statusCode, 202);
    await eventually(async () => {
      const r = (await read('type=binary&subtopic=raw')).json();
      assert.equal(r.total, 1);
      assert.equal(r.messages[0].content_type, 'application/octet-stream');
      assert.deepEqual(Buffer.from(r.messages[0].payload, 'base64'), bytes);
      assert.equal(r.messages[0].truncated, false);
    });
  });

  test("a payload without Content-Type is taken as the channel's content type; format=raw gives an opaque one back as it came", async () => {
    const owner = { token: f.ownerToken };
    const opaque = (await t.request('POST', `/orgs/${f.org}/channels`, { ...owner, body: { name: 'opaque', content_type: 'application/octet-stream' } })).json().id as string;
    await t.request('POST', `/orgs/${f.org}/connections`, { ...owner, body: { device_ids: [f.device.id, f.reader.id], channel_ids: [opaque], types: ['publish', 'subscribe'] } });
    const bare = (channel: string, body: string | Buffer) => t.app.inject({ method: 'POST', url: `/channels/${channel}/messages/bare`, payload: body, headers: { authorization: `Device ${f.device.secret}` } });
    const readRaw = (channel: string, query = '') => t.app.inject({ method: 'GET', url: `/channels/${channel}/messages?type=binary&format=raw${query}`, headers: { authorization: `Device ${f.reader.secret}` } });

    // the fixture's channel is SenML JSON, as every channel is unless told otherwise
    const refused = await bare(f.channel, 'hello');
    assert.equal(refused.statusCode, 400, refused.body);
    assert.equal(refused.json().code, 'message.invalid_payload');
    assert.match(refused.json().detail, /takes payloads without a content type as application\/senml\+json/);
    assert.equal((await bare(f.channel, '[{"n":"bare","v":1}]')).statusCode, 202);

    assert.equal((await readRaw(opaque)).statusCode, 204, 'nothing stored yet');
    const bytes = Buffer.from([104, 105, 0, 255]);
    const accepted = await bare(opaque, bytes);
    assert.equal(accepted.statusCode, 202, accepted.body);
    const raw = await eventually(async () => {
      const r = await readRaw(opaque);
      assert.equal(r.statusCode, 200);
      return r;
    });
    assert.deepEqual(raw.rawPayload, bytes);
    assert.equal(raw.headers['content-type'], 'application/octet-stream');
    assert.equal(raw.headers['x-message-id'], accepted.headers['x-message-id']);
    assert.equal(raw.headers['x-payload-truncated'], 'false');
    assert.equal(raw.headers['x-content-type-options'], 'nosniff');
    const listed = (await t.app.inject({ method: 'GET', url: `/channels/${opaque}/messages?type=binary&total=true`, headers: { authorization: `Device ${f.reader.secret}` } })).json();
    assert.equal(listed.messages[0].payload, bytes.toString('base64'));
    assert.equal(listed.messages[0].content_type, 'application/octet-stream');

    // an explicit type wins over the channel's, and keeps its own name
    assert.equal((await publish(`/channels/${opaque}/messages/typed`, 'plain words', 'text/plain; charset=utf-8', `Device ${f.device.secret}`)).statusCode, 202);
    const typed = await eventually(async () => {
      const r = await readRaw(opaque, '&subtopic=typed');
      assert.equal(r.statusCode, 200);
      return r;
    });
    assert.equal(typed.payload, 'plain words');
    assert.equal(typed.headers['content-type'], 'text/plain; charset=utf-8');
    const json = await publish(`/channels/${opaque}/messages/typed`, '{"temp":3}', 'application/json', `Device ${f.device.secret}`);
    assert.equal(json.statusCode, 202);
    await eventually(async () => {
      const docs = (await t.app.inject({ method: 'GET', url: `/channels/${opaque}/messages?total=true&type=json&subtopic=typed`, headers: { authorization: `Device ${f.reader.secret}` } })).json();
      assert.deepEqual(docs.messages.map((d: { document: unknown }) => d.document), [{ temp: 3 }]);
    });
    assertFormatRawNeedsBinary(await t.app.inject({ method: 'GET', url: `/channels/${opaque}/messages?format=raw`, headers: { authorization: `Device ${f.reader.secret}` } }));
  });

  test('publish errors: 400 invalid SenML with the reason, 401, 403, 404, 413, 415', async () => {
    const auth = `Device ${f.device.secret}`;
    const bad = await publish(`/channels/${f.channel}/messages`, '[{"n":"x","v":"not a number"}]', 'application/senml+json', auth);
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().code, 'message.invalid_payload');
    assert.match(bad.json().detail, /record 0/);
    const notJson = await publish(`/channels/${f.channel}/messages`, '{oops', 'application/json', auth);
    assert.equal(notJson.statusCode, 400);
    const wild = await publish(`/channels/${f.channel}/messages/a/+/b`, '[]', 'text/plain', auth);
    assert.equal(wild.statusCode, 400);
    assert.equal(wild.json().code, 'message.invalid_subtopic');
    const noAuth = await t.app.inject({ method: 'POST', url: `/channels/${f.channel}/messages`, payload: 'x', headers: { 'content-type': 'text/plain' } });
    assert.equal(noAuth.statusCode, 401);
    const wrong = await publish(`/channels/${f.channel}/messages`, 'x', 'text/plain', 'Device not-a-secret');
    assert.equal(wrong.statusCode, 401);
    assert.equal(wrong.json().code, 'auth.invalid_credentials');
    const subscriberOnly = await publish(`/channels/${f.channel}/messages`, 'x', 'text/plain', `Device ${f.reader.secret}`);
    assert.equal(subscriberOnly.statusCode, 403);
    assert.equal(subscriberOnly.json().code, 'message.not_connected');
    const unknownChannel = await publish(`/channels/0195f0c8-0000-7000-8000-00000000abcd/messages`, 'x', 'text/plain', auth);
    assert.equal(unknownChannel.statusCode, 404);
    const big = await publish(`/channels/${f.channel}/messages`, Buffer.alloc(5000), 'application/octet-stream', auth);
    assert.equal(big.statusCode, 413);
    const xml = await publish(`/channels/${f.channel}/messages`, '<senml/>', 'application/senml+xml', auth);
    assert.equal(xml.statusCode, 415);
    assert.equal(xml.json().code, 'message.unsupported_content_type');
  });

  test('credentials come before the body: a wrong or missing secret gets 401 whatever the body, and the body is never read', async () => {
    const channel = `/channels/${f.channel}/messages`;
    const cases: [string, string | Buffer, string][] = [
      ['invalid SenML', '[{"n":"x","v":"not a number"}]', 'application/senml+json'],
      ['invalid JSON', '{oops', 'application/json'],
      ['an unsupported type', '<senml/>', 'application/senml+xml'],
      // over the body limit: had the body been read, this would be a 413
      ['a body over the limit', Buffer.alloc(5000), 'application/octet-stream'],
      ['JSON nested past the depth limit', '['.repeat(50_000), 'application/json'],
    ];
    for (const [what, body, type] of cases) {
      for (const auth of ['Device not-a-secret', `Basic ${Buffer.from(`${f.device.id}:wrong`).toString('base64')}`, 'Bearer not-a-token']) {
        const res = await publish(channel, body, type, auth);
        assert.equal(res.statusCode, 401, `${what} with ${auth.split(' ')[0]}: ${res.body}`);
        assert.match(res.json().code, /^auth\./);
      }
      const none = await t.app.inject({ method: 'POST', url: channel, payload: body, headers: { 'content-type': type } });
      assert.equal(none.statusCode, 401, `${what} without credentials`);
    }
    // a device that may not publish here learns that before its body is looked at, too
    const notAllowed = await publish(channel, Buffer.alloc(5000), 'application/octet-stream', `Device ${f.reader.secret}`);
    assert.equal(notAllowed.statusCode, 403);
    // a device's twin is no channel: POST there publishes nothing
    const twin = await publish(`/devices/${f.device.id}/twin`, '{}', 'application/json', `Device ${f.device.secret}`);
    assert.equal(twin.statusCode, 404);
  });

  test('users publish with a token when their role allows it; viewers read but may not publish', async () => {
    const ok = await publish(`/channels/${f.channel}/messages/users`, '[{"n":"by-user","v":1}]', 'application/senml+json', `Bearer ${f.ownerToken}`);
    assert.equal(ok.statusCode, 202);
    const viewer = await publish(`/channels/${f.channel}/messages/users`, '[{"n":"x","v":1}]', 'application/senml+json', `Bearer ${f.viewerToken}`);
    assert.equal(viewer.statusCode, 403);
    const outsider = await publish(`/channels/${f.channel}/messages/users`, '[{"n":"x","v":1}]', 'application/senml+json', `Bearer ${f.outsiderToken}`);
    assert.equal(outsider.statusCode, 404);
    await eventually(async () => {
      const r = (await read('name=by-user', `Bearer ${f.viewerToken}`)).json();
      assert.equal(r.total, 1);
      assert.match(r.messages[0].publisher, /^user:/);
    });
    assert.equal((await read('', `Bearer ${f.outsiderToken}`)).statusCode, 404);
    assert.equal((await read('', `Device ${f.device.secret}`)).statusCode, 403, 'a publish-only device may not read');
    assert.equal((await read('', `Device ${f.stranger.secret}`)).statusCode, 403);
  });
});

test('when the message store falls behind, publishers get 503 message.overloaded instead of a 202 for a message not stored', async () => {
  const bus = new MemoryBus({ durable: [writerConsumer], maxQueued: 2, publishTimeoutMs: 50 });
  // no writer: nothing is ever stored, so nothing may be acknowledged
  const t = await startTestPlatform({ storeTimeout: 200 }, { bus, writer: false });
  try {
    const f = await fixture(t);
    const send = () => t.app.inject({ method: 'POST', url: `/channels/${f.channel}/messages`, payload: '[{"n":"x","v":1}]', headers: { 'content-type': 'application/senml+json', authorization: `Device ${f.device.secret}` } });
    const waited = await send();
    assert.equal(waited.statusCode, 503, 'not stored within the store timeout');
    assert.equal(waited.json().code, 'message.overloaded');
    assert.equal((await send()).statusCode, 503);
    // the queue is full now: refused after the bus's short wait, and not queued
    const started = Date.now();
    const refused = await send();
    assert.equal(refused.statusCode, 503);
    assert.ok(Date.now() - started < 200, 'a full queue refuses before the store timeout');
    assert.equal(bus.stats().pending.writer, 2);
  } finally {
    await t.close();
    await bus.close();
  }
});

test('a 202 comes only once the message is stored: the reader finds it at once', async () => {
  const t = await startTestPlatform();
  try {
    const f = await fixture(t);
    for (let i = 0; i < 20; i++) {
      const r = await t.app.inject({ method: 'POST', url: `/channels/${f.channel}/messages`, payload: `[{"n":"stored-${i}","v":${i}}]`, headers: { 'content-type': 'application/senml+json', authorization: `Device ${f.device.secret}` } });
      assert.equal(r.statusCode, 202);
      const read = await t.app.inject({ method: 'GET', url: `/channels/${f.channel}/messages?total=true&name=stored-${i}`, headers: { authorization: `Bearer ${f.viewerToken}` } });
      assert.equal(read.json().total, 1, `message ${i} is readable as soon as it was acknowledged`);
    }
  } finally {
    await t.close();
  }
});

test('a bus that cannot take the message (NATS unreachable) gives 503 message.overloaded, not 500', async () => {
  class UnreachableBus extends MemoryBus {
    unreachable = false;
    override publish(env: Parameters<MemoryBus['publish']>[0]): ReturnType<MemoryBus['publish']> {
      return this.unreachable ? Promise.reject(new Error('CONNECTION_CLOSED')) : super.publish(env);
    }
  }
  const bus = new UnreachableBus({ durable: [writerConsumer] });
  const t = await startTestPlatform({}, { bus });
  try {
    const f = await fixture(t);
    const send = () => t.app.inject({ method: 'POST', url: `/channels/${f.channel}/messages`, payload: '[{"n":"x","v":1}]', headers: { 'content-type': 'application/senml+json', authorization: `Device ${f.device.secret}` } });
    assert.equal((await send()).statusCode, 202);
    bus.unreachable = true;
    const refused = await send();
    assert.equal(refused.statusCode, 503);
    assert.equal(refused.json().code, 'message.overloaded');
    assert.match(refused.json().detail, /CONNECTION_CLOSED/);
  } finally {
    await t.close();
    await bus.close();
  }
});
