import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { startTestPlatform, type TestPlatform } from '../../../test/helpers/platform.js';
import { eventually } from '../../../test/helpers/eventually.js';

interface Ws {
  ws: WebSocket;
  messages: { data: Buffer; binary: boolean }[];
  closed: Promise<{ code: number; reason: string }>;
}

describe('WebSocket adapter', () => {
  let t: TestPlatform;
  let base: string;
  let org: string;
  let channel: string;
  let pub: { id: string; secret: string };
  let sub: { id: string; secret: string };
  let ownerToken: string;
  const sockets: WebSocket[] = [];

  before(async () => {
    t = await startTestPlatform({ wsMaxBuffered: 64 * 1024, messageMaxSize: 256 * 1024 });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `ws://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    const owner = await t.user('ws-owner@example.com');
    ownerToken = owner.token;
    org = (await t.request('POST', '/orgs', { token: owner.token, body: { name: 'ws' } })).json().id;
    const mk = async (name: string) => (await t.request('POST', `/orgs/${org}/devices`, { token: owner.token, body: { name } })).json();
    pub = await mk('pub');
    sub = await mk('sub');
    channel = (await t.request('POST', `/orgs/${org}/channels`, { token: owner.token, body: { name: 'c' } })).json().id;
    await t.request('POST', `/orgs/${org}/connections`, { token: owner.token, body: { device_ids: [pub.id], channel_ids: [channel], types: ['publish'] } });
    await t.request('POST', `/orgs/${org}/connections`, { token: owner.token, body: { device_ids: [sub.id], channel_ids: [channel], types: ['subscribe'] } });
  });
  after(async () => {
    for (const s of sockets) s.terminate();
    await t.close();
  });

  function connect(path: string, headers: Record<string, string> = {}): Promise<Ws> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(base + path, { headers });
      sockets.push(ws);
      const messages: Ws['messages'] = [];
      ws.on('message', (data: Buffer, binary) => messages.push({ data, binary }));
      const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, why) => r({ code, reason: why.toString() })));
      ws.once('open', () => resolve({ ws, messages, closed }));
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
      ws.once('error', reject);
    });
  }

  const httpPublish = (subtopic: string, body: string, contentType = 'application/senml+json') =>
    t.app.inject({ method: 'POST', url: `/channels/${channel}/messages${subtopic ? '/' + subtopic : ''}`, payload: body, headers: { 'content-type': contentType, authorization: `Device ${pub.secret}` } });

  test('a subscriber receives messages published over HTTP, matching its subtopic filter', async () => {
    const all = await connect(`/ws/channels/${channel}/messages`, { authorization: `Device ${sub.secret}` });
    const plus = await connect(`/ws/channels/${channel}/messages/rooms/+/temp?authorization=${encodeURIComponent(sub.secret)}`);
    const hash = await connect(`/ws/channels/${channel}/messages/rooms/%23`, { authorization: `Thing ${sub.secret}` });
    const exact = await connect(`/ws/channels/${channel}/messages/rooms/1/temp`, { authorization: `Device ${sub.secret}` });
    await httpPublish('rooms/1/temp', '[{"n":"t","v":1}]');
    await httpPublish('rooms/2/hum', '[{"n":"h","v":2}]');
    await httpPublish('', '[{"n":"x","v":3}]');
    await eventually(() => assert.equal(all.messages.length, 3, 'the bare channel path receives every message of the channel'));
    await eventually(() => assert.equal(hash.messages.length, 2));
    assert.deepEqual(plus.messages.map((m) => m.data.toString()), ['[{"n":"t","v":1}]']);
    assert.deepEqual(exact.messages.map((m) => m.data.toString()), ['[{"n":"t","v":1}]']);
    assert.equal(all.messages[0]!.binary, false, 'SenML JSON goes out as a text frame');
    for (const c of [all, plus, hash, exact]) c.ws.close();
  });

  test('envelope mode carries publisher, subtopic, content type, time and payload', async () => {
    const c = await connect(`/ws/channels/${channel}/messages?envelope=true`, { authorization: `Device ${sub.secret}` });
    await httpPublish('env', 'raw bytes', 'application/octet-stream');
    await eventually(() => assert.equal(c.messages.length, 1));
    const e = JSON.parse(c.messages[0]!.data.toString());
    assert.equal(e.publisher, pub.id);
    assert.equal(e.subtopic, 'env');
    assert.equal(e.protocol, 'http');
    assert.equal(e.content_type, 'application/octet-stream');
    assert.ok(Date.parse(e.received_at) > 0);
    assert.equal(Buffer.from(e.payload, 'base64').toString(), 'raw bytes');
    c.ws.close();
  });

  test('frames sent by a publisher reach other subscribers and are stored', async () => {
    const listener = await connect(`/ws/channels/${channel}/messages/ws/%23`, { authorization: `Device ${sub.secret}` });
    const publisher = await connect(`/ws/channels/${channel}/messages/ws/in?content_type=application/senml%2Bjson`, { authorization: `Device ${pub.secret}` });
    publisher.ws.send('[{"n":"from-ws","v":42}]');
    await eventually(() => assert.equal(listener.messages.length, 1));
    assert.equal(listener.messages[0]!.data.toString(), '[{"n":"from-ws","v":42}]');
    await eventually(async () => {
      const r = (await t.request('GET', `/channels/${channel}/messages?total=true&name=from-ws`, { token: ownerToken })).json();
      assert.equal(r.total, 1);
      assert.equal(r.messages[0].protocol, 'ws');
      assert.equal(r.messages[0].subtopic, 'ws/in');
    });
    // an invalid frame closes the publisher with 1007 and the reason
    publisher.ws.send('[{"n":"bad","v":"x"}]');
    const closed = await publisher.closed;
    assert.equal(closed.code, 1007);
    assert.match(closed.reason, /message.invalid_payload/);
    listener.ws.close();
  });

  test('bytes that are not UTF-8 reach a subscriber as a binary frame, whatever their content type says (RFC 6455 §8.1)', async () => {
    const listener = await connect(`/ws/channels/${channel}/messages/utf8/%23`, { authorization: `Device ${sub.secret}` });
    const post = (subtopic: string, payload: Buffer) => t.app.inject({ method: 'POST', url: `/channels/${channel}/messages/utf8/${subtopic}`, payload, headers: { 'content-type': 'text/plain', authorization: `Device ${pub.secret}` } });
    assert.equal((await post('bad', Buffer.of(0xff, 0x41))).statusCode, 202);
    assert.equal((await post('good', Buffer.from('ok é'))).statusCode, 202);
    await eventually(() => assert.equal(listener.messages.length, 2));
    assert.deepEqual(listener.messages.map((m) => [m.binary, m.data.toString('hex')]), [[true, 'ff41'], [false, Buffer.from('ok é').toString('hex')]]);
    listener.ws.close();
  });

  test('a text frame that is not UTF-8 closes its sender with 1007, and the server goes on', async () => {
    const publisher = await connect(`/ws/channels/${channel}/messages`, { authorization: `Device ${pub.secret}` });
    publisher.ws.send(Buffer.of(0x7b, 0xff, 0x7d), { binary: false });
    assert.equal((await publisher.closed).code, 1007);
    const again = await connect(`/ws/channels/${channel}/messages`, { authorization: `Device ${sub.secret}` });
    again.ws.close();
  });

  test('a refusal whose reason is cut inside a character still closes the publisher, and the server goes on', async () => {
    const publisher = await connect(`/ws/channels/${channel}/messages?content_type=application/senml%2Bjson`, { authorization: `Device ${pub.secret}` });
    // the error quotes the name: two-byte characters put the 123-byte cut of the close reason inside one
    publisher.ws.send(JSON.stringify([{ n: 'é'.repeat(60), v: 1 }]));
    const closed = await publisher.closed;
    assert.equal(closed.code, 1007);
    assert.match(closed.reason, /^message\.invalid_payload: record 0: name "é+…$/);
    assert.ok(Buffer.byteLength(closed.reason) <= 123);
    const again = await connect(`/ws/channels/${channel}/messages`, { authorization: `Device ${sub.secret}` });
    again.ws.close();
  });

  test('refusals happen before the upgrade, as HTTP problems', async () => {
    await assert.rejects(connect(`/ws/channels/${channel}/messages`), { status: 401 });
    await assert.rejects(connect(`/ws/channels/${channel}/messages`, { authorization: 'Device wrong' }), { status: 401 });
    await assert.rejects(connect(`/ws/channels/${channel}/messages/a/%23`, { authorization: `Device ${pub.secret}` }), { status: 403 });
    await assert.rejects(connect(`/ws/channels/0195f0c8-0000-7000-8000-00000000abcd/messages`, { authorization: `Device ${sub.secret}` }), { status: 404 });
  });

  test('a subscriber that does not read is closed with 1013 instead of growing memory', async () => {
    const slow = await connect(`/ws/channels/${channel}/messages/flood`, { authorization: `Device ${sub.secret}` });
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const chunk = 'x'.repeat(100 * 1024);
    for (let i = 0; i < 60; i++) {
      await httpPublish('flood', chunk, 'text/plain');
      if (slow.ws.readyState !== WebSocket.OPEN) break;
    }
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    const closed = await slow.closed;
    assert.equal(closed.code, 1013);
    const metrics = (await t.request('GET', '/metrics')).body;
    assert.match(metrics, /fleetwire_messages_dropped_total\{reason="slow_consumer"\} [1-9]/);
  });
});
