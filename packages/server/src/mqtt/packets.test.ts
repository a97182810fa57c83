// test-database: none
// Where packets begin and end in a connection's byte stream, however the reads split it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet';
import { Broker } from './broker.js';
import { openPolicy } from './open-policy.js';
import { createLogger } from '../core/logger.js';
import { lengthIncomplete, lengthMalformed, readRemainingLength } from './packets.js';
import { rawClient } from '../../test/helpers/mqtt-raw.js';
import { eventually } from '../../test/helpers/eventually.js';

const bytes = (p: Packet, protocolVersion: 4 | 5) => mqttPacket.generate(p, { protocolVersion });
const connect = (clientId: string, protocolVersion: 4 | 5): Packet => ({ cmd: 'connect', protocolId: 'MQTT', protocolVersion, clientId, clean: true, keepalive: 0 }) as Packet;
const publish = (topic: string, payload: Buffer): Packet => ({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false }) as Packet;

test('Remaining Length is read from one to four bytes, and is incomplete or malformed otherwise (§2.1.4)', () => {
  assert.equal(readRemainingLength(Buffer.from([0x30, 0x00]), 0), 0);
  assert.equal(readRemainingLength(Buffer.from([0x30, 0x7f]), 0), 127);
  assert.equal(readRemainingLength(Buffer.from([0x30, 0x80, 0x01]), 0), 128);
  assert.equal(readRemainingLength(Buffer.from([0xff, 0x30, 0xff, 0xff, 0xff, 0x7f]), 1), 268_435_455);
  assert.equal(readRemainingLength(Buffer.from([0x30]), 0), lengthIncomplete);
  assert.equal(readRemainingLength(Buffer.from([0x30, 0x80, 0x80]), 0), lengthIncomplete);
  assert.equal(readRemainingLength(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01]), 0), lengthMalformed);
  assert.equal(readRemainingLength(Buffer.from([0x30, 0x80, 0x00]), 0), lengthMalformed, 'zero in two bytes');
  assert.equal(readRemainingLength(Buffer.from([0x30, 0xff, 0x80, 0x00]), 0), lengthMalformed, '127 in three bytes');
});

test('packets written a byte at a time, and many in one write, arrive whole and in order', async () => {
  const broker = new Broker(openPolicy(undefined), createLogger('silent'));
  const sub = rawClient(broker, 5);
  sub.send(connect('reader', 5));
  await sub.next('connack');
  await sub.subscribe('split/#', 0);

  const pub = rawClient(broker, 4);
  for (const b of bytes(connect('trickle', 4), 4)) pub.sendRaw(Buffer.from([b]));
  await pub.next('connack');
  const big = Buffer.alloc(70_000, 7); // a Remaining Length of three bytes
  // a packet byte by byte, then three in one write, then one split inside its fixed header
  for (const b of bytes(publish('split/1', Buffer.from('one')), 4)) pub.sendRaw(Buffer.from([b]));
  pub.sendRaw(Buffer.concat([bytes(publish('split/2', Buffer.from('two')), 4), bytes(publish('split/3', big), 4), bytes(publish('split/4', Buffer.from('four')), 4)]));
  const last = bytes(publish('split/5', big), 4);
  pub.sendRaw(last.subarray(0, 2));
  pub.sendRaw(last.subarray(2, 40_000));
  pub.sendRaw(Buffer.concat([last.subarray(40_000), bytes({ cmd: 'pingreq' }, 4)]));
  await pub.next('pingresp');
  await sub.ping();
  const got = sub.packets.filter((p): p is IPublishPacket => p.cmd === 'publish');
  assert.deepEqual(got.map((p) => p.topic), ['split/1', 'split/2', 'split/3', 'split/4', 'split/5']);
  assert.equal(got[0]!.payload.toString(), 'one');
  assert.deepEqual(got[2]!.payload, big);
  assert.equal(got[3]!.payload.toString(), 'four');
  assert.deepEqual(got[4]!.payload, big);
  await broker.close();
});

test('a malformed packet closes its connection and no other: the decoder is shared, its state is not', async () => {
  const broker = new Broker(openPolicy(undefined), createLogger('silent'));
  const good = rawClient(broker, 4);
  good.send(connect('good', 4));
  await good.next('connack');
  const bad = rawClient(broker, 5);
  bad.send(connect('bad', 5));
  await bad.next('connack');
  // SUBSCRIBE with reserved flags 0000 instead of 0010 [MQTT-3.8.1-1], then a length of five bytes
  bad.sendRaw(Buffer.from([0x80, 0x05, 0x00, 0x01, 0x00, 0x01, 0x61]));
  const disconnect = await bad.next('disconnect');
  assert.equal((disconnect as mqttPacket.IDisconnectPacket).reasonCode, 0x81);
  const worse = rawClient(broker, 4);
  worse.send(connect('worse', 4));
  await worse.next('connack');
  worse.sendRaw(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]));
  await eventually(() => assert.equal(worse.closed, true));
  // a Remaining Length longer than its value needs: its end cannot be told [MQTT-1.5.5-1]
  const padded = rawClient(broker, 4);
  padded.send(connect('padded', 4));
  await padded.next('connack');
  padded.sendRaw(Buffer.from([0xc0, 0x80, 0x00])); // PINGREQ, length 0 in two bytes
  await eventually(() => assert.equal(padded.closed, true));
  assert.equal(padded.packets.some((p) => p.cmd === 'pingresp'), false);
  await good.ping(); // the others' packets decode as before
  assert.deepEqual(await good.subscribe('still/#', 0), [0]);
  await broker.close();
});
