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
