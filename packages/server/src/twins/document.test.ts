// test-database: once
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeDelta, liveRejections, mergePatch, onlyRemovals, stampPatch, valueAt, type JsonObject } from './document.js';
import { parseCondition } from './query.js';

test('merge patch follows RFC 7386 appendix A', () => {
  // the examples of RFC 7386 Appendix A, target / patch / result
  const cases: [unknown, unknown, unknown][] = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [['a', 'b'], ['c', 'd'], ['c', 'd']],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  for (const [target, patch, result] of cases) assert.deepEqual(mergePatch(target as never, patch as never), result, JSON.stringify({ target, patch }));
});

test('the delta holds what desired asks that reported lacks, member by member', () => {
  const desired = { mode: 'eco', net: { ssid: 'x', channel: 6 }, list: [1, 2], same: 1 };
  const reported = { mode: 'fast', net: { ssid: 'x' }, list: [1, 2], same: 1, extra: true };
  assert.deepEqual(computeDelta(desired, reported), { mode: 'eco', net: { channel: 6 } });
  assert.deepEqual(computeDelta({ list: [1, 2, 3] }, { list: [1, 2] }), { list: [1, 2, 3] }, 'arrays compare whole');
  assert.deepEqual(computeDelta({ a: { b: 1 } }, { a: 5 }), { a: { b: 1 } });
  assert.deepEqual(computeDelta({}, { a: 1 }), {});
});

test('a refused desired value leaves the delta until desired changes there', () => {
  const rejected = { '/net/channel': { reason: 'no such channel', value: 14, version: 3, at: 1 } };
  assert.deepEqual(computeDelta({ net: { channel: 14 }, mode: 'eco' }, {}, rejected), { mode: 'eco' });
  assert.deepEqual(computeDelta({ net: { channel: 11 } }, {}, rejected), { net: { channel: 11 } }, 'a new value asks again');
  assert.deepEqual(liveRejections(rejected, { net: { channel: 11 } }), {}, 'and the refusal no longer applies');
  assert.deepEqual(Object.keys(liveRejections(rejected, { net: { channel: 14 } })), ['/net/channel']);
  assert.equal(valueAt({ 'a/b': { '~c': 1 } }, '/a~1b/~0c'), 1, 'RFC 6901 escapes');
});

test('every leaf a patch writes is stamped, removed leaves lose their stamp', () => {
  let stamps = stampPatch({}, { a: 1, b: { c: 2, d: [1] } }, 100);
  assert.deepEqual(stamps, { a: 100, b: { c: 100, d: 100 } });
  stamps = stampPatch(stamps, { b: { c: 3, d: null } }, 200);
  assert.deepEqual(stamps, { a: 100, b: { c: 200 } });
  stamps = stampPatch(stamps, { a: { x: 1, y: null } }, 300);
  assert.deepEqual(stamps, { a: { x: 300 }, b: { c: 200 } });
});

test('a device desired patch may only remove', () => {
  assert.equal(onlyRemovals({ a: null, b: { c: null } } as JsonObject), true);
  assert.equal(onlyRemovals({ a: 1 } as JsonObject), false);
  assert.equal(onlyRemovals({ b: {} } as JsonObject), false);
});

test('query conditions parse to fields, operators and values', () => {
  assert.deepEqual(parseCondition('reported.firmware.version = 1.4.2'), { section: 'reported', path: ['firmware', 'version'], op: '=', value: '1.4.2' });
  assert.deepEqual(parseCondition('desired.mode != reported.mode'), { section: 'desired', path: ['mode'], op: '!=', ref: { section: 'reported', path: ['mode'] } });
  assert.deepEqual(parseCondition('reported.battery<20'), { section: 'reported', path: ['battery'], op: '<', value: 20 });
  assert.deepEqual(parseCondition('tags.site = "14"'), { section: 'tags', path: ['site'], op: '=', value: '14' });
  assert.deepEqual(parseCondition('reported.gps exists'), { section: 'reported', path: ['gps'], op: 'exists' });
  for (const bad of ['metadata.x = 1', 'reported = 1', 'reported.a"b = 1', 'reported.a < high', 'reported.a', 'reported.a exists 1']) {
    assert.throws(() => parseCondition(bad), { code: 'twin.invalid_query' }, bad);
  }
});
