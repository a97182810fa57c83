// test-database: none
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { maxJsonDocuments, parseJsonMessage, type JsonMessageResult } from './json.js';

function ok(r: JsonMessageResult): { documents: Record<string, unknown>[]; numbers: Record<string, number>[] } {
  if (!r.ok) assert.fail(`expected ok, got error: ${r.error}`);
  return { documents: r.documents, numbers: r.numbers };
}

function error(r: JsonMessageResult): string {
  if (r.ok) assert.fail(`expected an error, got ${JSON.stringify(r.documents)}`);
  return r.error;
}

describe('JSON messages', () => {
  test('one object is one document with its top-level finite numbers', () => {
    const r = ok(parseJsonMessage(Buffer.from('{"temp":21.5,"hum":40,"room":"lab","on":true,"pos":{"x":1},"list":[1,2],"none":null,"big":1e400}')));
    assert.deepEqual(r.documents, [{ temp: 21.5, hum: 40, room: 'lab', on: true, pos: { x: 1 }, list: [1, 2], none: null, big: Infinity }]);
    assert.deepEqual(r.numbers, [{ temp: 21.5, hum: 40 }]);
  });

  test('an array of objects is one document per object, numbers per document', () => {
    const r = ok(parseJsonMessage('[{"a":1},{"b":"x"},{"a":2,"c":-0.5}]'));
    assert.deepEqual(r.documents, [{ a: 1 }, { b: 'x' }, { a: 2, c: -0.5 }]);
    assert.deepEqual(r.numbers, [{ a: 1 }, {}, { a: 2, c: -0.5 }]);
  });

  test('a numeric field named __proto__ is kept as a field and touches no prototype', () => {
    const r = ok(parseJsonMessage('{"__proto__":5,"a":1}'));
    const numbers = r.numbers[0]!;
    assert.deepEqual(Object.keys(numbers), ['__proto__', 'a']);
    assert.equal(Object.getPrototypeOf(numbers), Object.prototype);
    assert.equal(Object.getOwnPropertyDescriptor(numbers, '__proto__')?.value, 5);
  });

  test('other JSON values are refused, naming what was sent', () => {
    assert.equal(error(parseJsonMessage('42')), 'a JSON message must be an object or an array of objects, got a number');
    assert.equal(error(parseJsonMessage('"hello"')), 'a JSON message must be an object or an array of objects, got a string');
    assert.equal(error(parseJsonMessage('null')), 'a JSON message must be an object or an array of objects, got null');
    assert.equal(error(parseJsonMessage('true')), 'a JSON message must be an object or an array of objects, got a boolean');
    assert.equal(error(parseJsonMessage('[]')), 'a JSON message array must hold at least one object, got an empty array');
    assert.equal(error(parseJsonMessage('[{"a":1},2]')), 'element 1: must be an object, got a number');
    assert.equal(error(parseJsonMessage('[{"a":1},[{"b":2}]]')), 'element 1: must be an object, got an array');
    assert.equal(error(parseJsonMessage('[null]')), 'element 0: must be an object, got null');
  });

  test(`an array of more than ${maxJsonDocuments} objects is refused`, () => {
    const full = JSON.stringify(Array.from({ length: maxJsonDocuments }, (_, i) => ({ i })));
    assert.equal(ok(parseJsonMessage(full)).documents.length, maxJsonDocuments);
    const over = JSON.stringify(Array.from({ length: maxJsonDocuments + 1 }, (_, i) => ({ i })));
    assert.equal(error(parseJsonMessage(over)), `a JSON message may hold at most ${maxJsonDocuments} objects, got ${maxJsonDocuments + 1}`);
  });

  test('text that is not JSON or not UTF-8 is refused; a byte order mark is ignored', () => {
    assert.match(error(parseJsonMessage('{"a":')), /^payload is not valid JSON: /);
    assert.match(error(parseJsonMessage('')), /^payload is not valid JSON: /);
    assert.equal(error(parseJsonMessage(Buffer.from([0x7b, 0xc3, 0x28, 0x7d]))), 'payload is not valid UTF-8 (RFC 8259 §8.1)');
    assert.deepEqual(ok(parseJsonMessage(Buffer.from('\ufeff{"a":1}'))).numbers, [{ a: 1 }]);
  });
});
