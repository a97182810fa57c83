// The client's own decisions, against a stand-in for the platform that answers every connection
// with fixed bytes: when to try again, what waits in the outbox, what stops it for good.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { FleetwireDevice, publishPacketSize, type DeviceOptions } from './device.js';
import { ConnectionRefusedError, FleetwireError, OutboxFullError } from './errors.js';

// MQTT 5 packets (§3.2 CONNACK, §3.14 DISCONNECT): fixed header, remaining length, then the fields
const connack = (reasonCode: number) => Buffer.from([0x20, 0x03, 0x00, reasonCode, 0x00]);
const disconnect = (reasonCode: number) => Buffer.from([0xe0, 0x02, reasonCode, 0x00]);

const servers: net.Server[] = [];
const sockets: net.Socket[] = [];
const clients: FleetwireDevice[] = [];

/**
 * A listener that answers each connection's first bytes (its CONNECT) with `answer(n)` for the
 * n-th connection (from 1), then closes it (or, with `keepOpen`, reads on and says nothing more);
 * `undefined` closes it without a word.
 */
async function standIn(answer: (n: number) => Buffer | undefined, keepOpen = false): Promise<{ url: string; connections: () => number }> {
  let n = 0;
  const server = net.createServer((socket) => {
    const reply = answer(++n);
    socket.on('error', () => {});
    socket.once('data', () => {
      if (!reply) socket.destroy();
      else if (keepOpen) socket.write(reply);
      else socket.end(reply);
    });
    sockets.push(socket);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`, connections: () => n };
}

function device(url: string, options: Partial<DeviceOptions> = {}): FleetwireDevice {
  const d = new FleetwireDevice({ url, deviceId: 'd1', secret: 's1', reconnect: { minDelayMs: 10, maxDelayMs: 40, jitter: 0 }, ...options });
  clients.push(d);
  return d;
}

/** The first `count` reconnecting delays. */
function delays(d: FleetwireDevice, count: number): Promise<number[]> {
  const seen: number[] = [];
  return new Promise((resolve) =>
    d.on('reconnecting', ({ delayMs }) => {
      seen.push(delayMs);
      if (seen.length === count) resolve(seen);
    }),
  );
}

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  for (const s of sockets) s.destroy();
  for (const s of servers) s.close();
});

test('while the platform does not answer, attempts back off from the minimum delay to the maximum', async () => {
  const platform = await standIn(() => undefined);
  const d = device(platform.url);
  const seen = delays(d, 5);
  void d.connect().catch(() => {});
  assert.deepEqual(await seen, [10, 20, 40, 40, 40]);
  assert.equal(d.state, 'connecting');
  await d.close();
});

test('a busy platform is tried again; bad credentials are not', async () => {
  const platform = await standIn((n) => connack(n < 3 ? 0x89 : 0x86)); // server busy twice, then bad user name or password
  const d = device(platform.url);
  let retries = 0;
  d.on('reconnecting', () => retries++);
  const error = await d.connect().then(() => assert.fail('connected'), (e: unknown) => e);
  assert.ok(error instanceof ConnectionRefusedError);
  assert.equal(error.reasonCode, 0x86);
  assert.equal(retries, 2);
  assert.equal(platform.connections(), 3);
  assert.equal(d.state, 'closed');
});

test('QoS 1 messages published offline wait in the outbox, up to its limit; QoS 0 ones fail at once', async () => {
  const platform = await standIn(() => undefined);
  const d = device(platform.url, { outboxLimit: 2 });
  void d.connect().catch(() => {});
  const first = d.publishSenml('c1', { n: 'a', v: 1 });
  const second = d.publishJson('c1', { a: 2 });
  assert.equal(d.outboxSize, 2);
  await assert.rejects(d.publish('c1', 'three'), (e: unknown) => e instanceof OutboxFullError && e.limit === 2 && /outboxLimit/.test(e.message));
  await assert.rejects(d.publishSenml('c1', { n: 'a', v: 1 }, { qos: 0 }), { code: 'not_connected' });

  // close() gives up on what is still waiting, and on the connection
  await d.close();
  for (const p of [first, second]) await assert.rejects(p, { code: 'closed' });
  assert.equal(d.outboxSize, 0);
  await assert.rejects(d.publishSenml('c1', { n: 'a', v: 1 }), { code: 'closed' });
  await assert.rejects(d.connect(), { code: 'closed' });
});

test('bad input throws before anything is sent', async () => {
  const platform = await standIn(() => undefined);
  const d = device(platform.url);
  await assert.rejects(d.publishSenml('c1', [{ n: 'temp', v: '21' } as never]), { code: 'invalid_senml', message: /record 0: v must be a finite number/ });
  await assert.rejects(d.publishJson('c1', [1, 2]), { code: 'invalid_json' });
  await assert.rejects(d.publish('c1', 'x', { subtopic: 'a/#' }), { code: 'invalid_topic' });
  assert.equal(d.outboxSize, 0);
  const v311 = device(platform.url, { protocolVersion: 4 });
  await assert.rejects(v311.publish('c1', 'bytes'), { code: 'content_type_needs_mqtt5' });
});

test('options that cannot work are refused when the client is made', () => {
  const base = { url: 'mqtt://127.0.0.1:1883', deviceId: 'd1', secret: 's1' };
  const refused = (options: DeviceOptions, pattern: RegExp) =>
    assert.throws(() => new FleetwireDevice(options), (e: unknown) => e instanceof FleetwireError && e.code === 'invalid_options' && pattern.test(e.message));
  refused({ ...base, url: 'http://127.0.0.1' }, /url must start with/);
  refused({ ...base, deviceId: '' }, /deviceId/);
  refused({ url: base.url, deviceId: 'd1' }, /a secret, or a client certificate/);
  refused({ ...base, reconnect: { minDelayMs: 100, maxDelayMs: 10 } }, /maxDelayMs/);
  refused({ ...base, outboxLimit: -1 }, /outboxLimit/);
});

test('a connection another client took over is not taken back', async () => {
  const platform = await standIn(() => Buffer.concat([connack(0), disconnect(0x8e)]));
  const d = device(platform.url);
  const closed = new Promise<{ error?: Error }>((resolve) => d.once('close', resolve));
  await d.connect();
  const { error } = await closed;
  assert.ok(error instanceof FleetwireError);
  assert.equal(error.code, 'session_taken_over');
  assert.equal(platform.connections(), 1);
});

test('a message larger than the platform accepts is refused before it is sent', async () => {
  // CONNACK with the Maximum Packet Size property (0x27, MQTT 5 §3.2.2.3.6): 200 bytes
  const platform = await standIn(() => Buffer.from([0x20, 0x08, 0x00, 0x00, 0x05, 0x27, 0x00, 0x00, 0x00, 200]), true);
  const d = device(platform.url);
  await d.connect();
  await assert.rejects(d.publish('c1', Buffer.alloc(300)), { code: 'message_too_large', message: /at most 200 bytes/ });
  await assert.rejects(d.publish('c1', Buffer.alloc(300), { qos: 0 }), { code: 'message_too_large' });
  assert.equal(d.outboxSize, 0);
  assert.equal(d.connected, true);
});

test('the PUBLISH size counts the topic, packet id, Content Type property and payload', () => {
  // 1 fixed header + 1 remaining length + (2 + 7 topic) + 2 packet id + (1 + 1 + 2 + 16 content type) + 10 payload
  assert.equal(publishPacketSize('a/b/cde', 10, 1, 'application/json'), 43);
  assert.equal(publishPacketSize('a/b/cde', 10, 0, undefined), 1 + 1 + 9 + 10);
  // a remaining length of 128 or more takes two bytes
  assert.equal(publishPacketSize('t', 200, 0, undefined), 1 + 2 + 3 + 200);
});
