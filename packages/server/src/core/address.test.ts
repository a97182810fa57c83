// test-database: none
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { channelTopic, formatAddress, normaliseSubtopic, notServed, parseAddress, type Address } from './address.js';

const ok = (input: string | string[], options?: { ws?: boolean }): Address => {
  const r = parseAddress(input, options);
  assert.ok(r.ok, `${JSON.stringify(input)}: ${r.ok ? '' : r.error}`);
  return r.address;
};
const refused = (input: string | string[], options?: { ws?: boolean }): string => {
  const r = parseAddress(input, options);
  assert.ok(!r.ok, `${JSON.stringify(input)} should be refused`);
  return r.error;
};

test('a channel address reads the same from a topic, an HTTP path, a WebSocket path and CoAP segments', () => {
  const want = { kind: 'channel.messages', channel: 'c1', subtopic: 'lab/temp' };
  assert.deepEqual(ok('channels/c1/messages/lab/temp'), want);
  assert.deepEqual(ok('/channels/c1/messages/lab/temp'), want);
  assert.deepEqual(ok('/ws/channels/c1/messages/lab/temp', { ws: true }), want);
  assert.deepEqual(ok(['channels', 'c1', 'messages', 'lab', 'temp']), want);
  assert.deepEqual(ok('channels/c1/messages'), { kind: 'channel.messages', channel: 'c1', subtopic: '' });
});

test('formatting is the inverse of parsing', () => {
  for (const a of ['channels/c1/messages', 'channels/c1/messages/a/b', 'devices/d1/twin', 'devices/d1/twin/config/update', 'devices/d1/commands/42/result']) {
    assert.equal(formatAddress(ok(a)), a);
  }
  assert.equal(channelTopic('c1', 'a/b'), formatAddress({ kind: 'channel.messages', channel: 'c1', subtopic: 'a/b' }));
  assert.equal(channelTopic('c1', ''), 'channels/c1/messages');
});

test('device-addressed families are parsed to a typed target; edges that do not serve one refuse it with one answer', () => {
  const twin = ok('devices/d1/twin/config');
  assert.deepEqual(twin, { kind: 'device', device: 'd1', family: 'twin', rest: ['config'] });
  assert.deepEqual(ok(['devices', 'd1', 'commands']), { kind: 'device', device: 'd1', family: 'commands', rest: [] });
  assert.equal(ok('devices/d1/events').kind, 'device');
  assert.match(notServed(twin as Extract<Address, { kind: 'device' }>), /device twins are read and written over MQTT .*, CoAP and HTTP/);
  assert.match(notServed(ok('devices/d1/commands') as Extract<Address, { kind: 'device' }>), /commands is reserved for device commands and not served yet/);
  assert.match(refused('devices/d1/unknown'), /addresses are channels\/<channel id>\/messages/);
});

test('anything else is refused with how to write an address', () => {
  for (const bad of ['', '/', 'channels', 'channels/c1', 'channels//messages', 'channels/c1/other', 'foo/bar', '$SYS/broker', 'devices//twin']) {
    assert.match(refused(bad), /channels\/<channel id>\/messages/, bad);
  }
  assert.match(refused('channels/+/messages'), /may not be a wildcard/);
  assert.match(refused('channels/#/messages'), /may not be a wildcard/);
  assert.match(refused('devices/+/twin'), /may not be a wildcard/);
  assert.match(refused('/channels/c1/messages', { ws: true }), /\/ws\//);
});

test('subtopics: empty segments dropped, wildcards only when subscribing, NATS-unsafe characters refused', () => {
  assert.deepEqual(normaliseSubtopic('a//b/'), { ok: true, subtopic: 'a/b' });
  assert.equal(normaliseSubtopic('a/+').ok, false);
  assert.deepEqual(normaliseSubtopic('a/+/#', true), { ok: true, subtopic: 'a/+/#' });
  assert.equal(normaliseSubtopic('#/a', true).ok, false);
  for (const bad of ['a.b', 'a*', 'a>', 'a b', 'a\u0000']) assert.equal(normaliseSubtopic(bad).ok, false, bad);
});
