// test-database: none
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encode } from 'cbor-x';
import { mediaTypeOf, normalisePayload } from './index.js';

const now = 1_700_000_000.5;
const senml = Buffer.from('[{"n":"temp","u":"Cel","v":21.5}]');
const senmlCbor = encode([new Map<number, unknown>([[0, 'temp'], [1, 'Cel'], [2, 21.5]])]);
const record = { name: 'temp', unit: 'Cel', time: now, value: 21.5 };

describe('normalisePayload', () => {
  test('application/senml+json gives resolved SenML records', () => {
    assert.deepEqual(normalisePayload('application/senml+json', senml, now), { kind: 'senml', records: [record], version: 10 });
  });

  test('application/senml+cbor gives resolved SenML records', () => {
    assert.deepEqual(normalisePayload('application/senml+cbor', senmlCbor, now), { kind: 'senml', records: [record], version: 10 });
  });

  test('application/json gives documents and their numbers', () => {
    assert.deepEqual(normalisePayload('application/json', Buffer.from('{"t":1,"s":"x"}'), now), { kind: 'json', documents: [{ t: 1, s: 'x' }], numbers: [{ t: 1 }] });
  });

  test('the media type is matched without parameters and regardless of case', () => {
    assert.equal(normalisePayload('application/senml+json; charset=utf-8', senml, now).kind, 'senml');
    assert.equal(normalisePayload('Application/SenML+CBOR', senmlCbor, now).kind, 'senml');
    assert.equal(normalisePayload(' APPLICATION/JSON ;charset=UTF-8', Buffer.from('{}'), now).kind, 'json');
  });

  test('any other content type is opaque, whatever the bytes hold', () => {
    assert.deepEqual(normalisePayload('application/octet-stream', senml, now), { kind: 'opaque' });
    assert.deepEqual(normalisePayload('text/plain', Buffer.from('hello'), now), { kind: 'opaque' });
    assert.deepEqual(normalisePayload('', Buffer.from([0xff]), now), { kind: 'opaque' });
    assert.deepEqual(normalisePayload('application/senml+xml', Buffer.from('<sensml/>'), now), { kind: 'opaque' });
  });

  test('a payload that does not match its declared type is invalid, with the reason', () => {
    assert.deepEqual(normalisePayload('application/senml+json', Buffer.from('{"n":"a","v":1}'), now), {
      kind: 'invalid',
      error: 'a SenML pack must be an array of records (RFC 8428 §4), got an object',
    });
    assert.deepEqual(normalisePayload('application/senml+cbor', senml, now).kind, 'invalid');
    assert.deepEqual(normalisePayload('application/json', Buffer.from('[1]'), now), { kind: 'invalid', error: 'element 0: must be an object, got a number' });
  });
});

test('mediaTypeOf drops parameters and lower-cases', () => {
  assert.equal(mediaTypeOf('Application/SenML+JSON; charset=utf-8'), 'application/senml+json');
  assert.equal(mediaTypeOf('text/plain'), 'text/plain');
  assert.equal(mediaTypeOf(''), '');
});

describe('depth and storability bounds', () => {
  const deepJson = (levels: number) => '{"a":'.repeat(levels - 1) + '[' + ']' + '}'.repeat(levels - 1);
  const deepCbor = (levels: number) => Buffer.concat([Buffer.alloc(levels - 1, 0x81), Buffer.from([0x80])]); // [[…[]…]]
  const invalid = (p: ReturnType<typeof normalisePayload>) => (p.kind === 'invalid' ? p.error : assert.fail(`expected invalid, got ${p.kind}`));

  test('JSON nested to the bound is taken, one level more is refused, and 40,000 levels are refused without a stack overflow', () => {
    assert.equal(normalisePayload('application/json', Buffer.from(deepJson(32)), now).kind, 'json');
    assert.match(invalid(normalisePayload('application/json', Buffer.from(deepJson(33)), now)), /nested deeper than 32 levels/);
    assert.match(invalid(normalisePayload('application/json', Buffer.from('['.repeat(40_000) + ']'.repeat(40_000)), now)), /nested deeper than 32 levels/);
    assert.equal(normalisePayload('application/json', Buffer.from(deepJson(40)), now, 40).kind, 'json', 'the bound is a parameter');
  });

  test('brackets inside JSON strings, escaped quotes included, do not count as nesting', () => {
    const text = JSON.stringify({ s: '[[[[{{{{\\"[[[['.repeat(20), q: 'a"b\\', t: '\u00e9\ud83d\ude00' });
    assert.equal(normalisePayload('application/json', Buffer.from(text), now).kind, 'json');
  });

  test('SenML JSON and SenML CBOR nested too deeply are refused before decoding', () => {
    assert.match(invalid(normalisePayload('application/senml+json', Buffer.from('['.repeat(40_000) + ']'.repeat(40_000)), now)), /nested deeper than 32/);
    assert.match(invalid(normalisePayload('application/senml+cbor', deepCbor(40_000), now)), /nested deeper than 32 levels of arrays, maps and tags/);
    // indefinite-length arrays (0x9f … 0xff), maps (0xa1 key value) and tags (0xc6) count alike
    const indefinite = Buffer.concat([Buffer.alloc(40, 0x9f), Buffer.alloc(40, 0xff)]);
    assert.match(invalid(normalisePayload('application/senml+cbor', indefinite, now)), /nested deeper than 32/);
    const maps = Buffer.concat([Buffer.from(Array.from({ length: 40 }, () => [0xa1, 0x00]).flat()), Buffer.from([0x01])]);
    assert.match(invalid(normalisePayload('application/senml+cbor', maps, now)), /nested deeper than 32/);
    const tags = Buffer.concat([Buffer.alloc(40, 0xc6), Buffer.from([0x80])]);
    assert.match(invalid(normalisePayload('application/senml+cbor', tags, now)), /nested deeper than 32/);
  });

  test('a wide SenML CBOR pack is not deep: its records, strings and byte strings close as they end', () => {
    const records = Array.from({ length: 500 }, (_, i) => new Map<number, unknown>([[0, `n${i}`], [1, 'Cel'], [8, Buffer.alloc(3)]]));
    // cbor-x wraps each Map in tag 259, a level of its own: array, tag, map
    const r = normalisePayload('application/senml+cbor', encode(records), now, 3);
    assert.equal(r.kind, 'senml', r.kind === 'invalid' ? r.error : '');
    assert.equal(invalid(normalisePayload('application/senml+cbor', encode(records), now, 2)), 'the payload is nested deeper than 2 levels of arrays, maps and tags');
  });

  test('strings no database stores are refused: \\u0000 and lone surrogate escapes in JSON, U+0000 in SenML CBOR text', () => {
    assert.match(invalid(normalisePayload('application/json', Buffer.from('{"a":"x\\u0000"}'), now)), /\\u0000/);
    assert.match(invalid(normalisePayload('application/json', Buffer.from('{"\\ud800":1}'), now)), /high surrogate/);
    assert.match(invalid(normalisePayload('application/json', Buffer.from('{"a":"\\udc00"}'), now)), /low surrogate/);
    assert.match(invalid(normalisePayload('application/senml+json', Buffer.from('[{"n":"t","vs":"a\\u0000"}]'), now)), /vs holds U\+0000/);
    assert.match(invalid(normalisePayload('application/senml+json', Buffer.from('[{"n":"t","vs":"\\udfff"}]'), now)), /vs holds a lone surrogate/);
    assert.equal(normalisePayload('application/json', Buffer.from('{"a":"\\ud83d\\ude00 \\\\u0000"}'), now).kind, 'json', 'a pair, and an escaped backslash before u0000');
    assert.match(invalid(normalisePayload('application/senml+cbor', encode([new Map<number, unknown>([[0, 't'], [3, 'a\u0000']])]), now)), /vs \(3\) holds U\+0000/);
  });
});
