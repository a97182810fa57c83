// test-database: none
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generate, parse } from 'coap-packet';
import { option, readOptions, uint } from './message.js';

const packet = (options: [number, Buffer | string][]) =>
  parse(generate({ code: 'GET', messageId: 1, token: Buffer.alloc(0), options: options.map(([n, v]) => ({ name: String(n), value: typeof v === 'string' ? Buffer.from(v) : v })) }));

test('readOptions keeps repeated Uri-Path and Uri-Query in order; of a repeated elective option the first counts', () => {
  const opts = readOptions(
    packet([
      [option.uriQuery, 'x=1'],
      [option.uriPath, 'channels'],
      [option.observe, uint(0)],
      [option.uriPath, 'c1'],
      [option.uriQuery, 'auth=s'],
      [option.uriPath, 'messages'],
      [option.observe, uint(1)],
      [option.uriPath, 'a'],
      [option.uriQuery, 'y=2'],
      [option.contentFormat, uint(110)],
      [option.contentFormat, uint(50)],
      [option.size1, uint(4096)],
      [option.block1, Buffer.of(0x0e)],
      [option.block2, Buffer.of(0x16)],
    ]),
  );
  assert.deepEqual(opts.uriPath, ['channels', 'c1', 'messages', 'a']);
  assert.deepEqual(opts.uriQuery, ['x=1', 'auth=s', 'y=2']);
  assert.deepEqual([opts.observe, opts.contentFormat, opts.size1], [0, 110, 4096]);
  assert.deepEqual([opts.block1, opts.block2], [Buffer.of(0x0e), Buffer.of(0x16)]);
  assert.deepEqual([opts.proxy, opts.unknownCritical], [false, undefined]);
});

test('a repeated Block1 or Block2, critical and not repeatable, counts as an unrecognised critical option (RFC 7252 §5.4.5)', () => {
  const twice = (o: number) => readOptions(packet([[option.uriPath, 'a'], [o, Buffer.of(0x0e)], [o, Buffer.of(0x1e)]]));
  assert.deepEqual([twice(option.block1).unknownCritical, twice(option.block1).block1], [option.block1, Buffer.of(0x0e)]);
  assert.deepEqual([twice(option.block2).unknownCritical, twice(option.block2).block2], [option.block2, Buffer.of(0x0e)]);
});

test('readOptions names the first critical option the adapter does not understand, and proxy options apart', () => {
  const understood = readOptions(packet([[option.uriHost, 'h'], [option.uriPort, uint(5683)], [option.accept, uint(50)], [65000, 'elective, ignored']]));
  assert.equal(understood.unknownCritical, undefined, 'understood critical options and unknown elective ones pass');
  assert.equal(readOptions(packet([[65001, 'x'], [9, 'x'], [option.uriPath, 'a']])).unknownCritical, 9, 'the first in option order');
  const proxied = readOptions(packet([[option.proxyScheme, 'coap']]));
  assert.deepEqual([proxied.proxy, proxied.unknownCritical], [true, undefined]);
  assert.equal(readOptions(packet([[option.proxyUri, 'coap://elsewhere/']])).proxy, true);
  const none = readOptions(packet([]));
  assert.deepEqual(none, { uriPath: [], uriQuery: [], observe: undefined, contentFormat: undefined, block1: undefined, block2: undefined, size1: undefined, proxy: false, unknownCritical: undefined });
});
