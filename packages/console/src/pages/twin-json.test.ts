// The twin tab's merge patches, leaf stamps and query fields: run with `npm test -w @fleetwire/console`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyMergePatch, conditionLines, fieldValue, leafCount, leafStamps, mergePatchBetween, parseSection, queryFields, type JsonObject } from './twin-json.ts';

test('the patch sets what was added or changed and nulls what was removed, nested objects member by member', () => {
  const from = { mode: 'eco', net: { ssid: 'plant', channel: 6 }, led: true, gone: 1 };
  const to = { mode: 'fast', net: { ssid: 'plant', band: '5g' }, led: true, added: { a: 1 } };
  assert.deepEqual(mergePatchBetween(from, to), { gone: null, mode: 'fast', net: { channel: null, band: '5g' }, added: { a: 1 } });
});

test('nothing changed is an empty patch, whatever the order of the members', () => {
  assert.deepEqual(mergePatchBetween({ a: 1, b: { c: [1, 2], d: 'x' } }, { b: { d: 'x', c: [1, 2] }, a: 1 }), {});
  assert.deepEqual(mergePatchBetween({}, {}), {});
});

test('arrays are sent whole, and a change of kind replaces the value', () => {
  assert.deepEqual(mergePatchBetween({ list: [1, 2, 3] }, { list: [1, 2] }), { list: [1, 2] });
  assert.deepEqual(mergePatchBetween({ list: [{ a: 1 }] }, { list: [{ a: 2 }] }), { list: [{ a: 2 }] });
  assert.deepEqual(mergePatchBetween({ v: 1 }, { v: { x: 1 } }), { v: { x: 1 } });
  assert.deepEqual(mergePatchBetween({ v: { x: 1 } }, { v: 'flat' }), { v: 'flat' });
  assert.deepEqual(mergePatchBetween({ v: { x: 1 } }, { v: [] }), { v: [] });
  assert.deepEqual(mergePatchBetween({ v: 0 }, { v: false }), { v: false }, '0 and false differ');
});

test('an emptied object stays, as an empty object', () => {
  const from = { net: { ssid: 'plant' } };
  const to = { net: {} };
  const patch = mergePatchBetween(from, to);
  assert.deepEqual(patch, { net: { ssid: null } });
  assert.deepEqual(applyMergePatch(from, patch), to);
});

test('applying the patch to what was loaded gives the edit back, for any edit', () => {
  const cases: [JsonObject, JsonObject][] = [
    [{}, { a: 1, b: { c: 'd' } }],
    [{ a: 1, b: { c: 'd', e: [1] } }, {}],
    [{ a: { b: { c: { d: 1 } } } }, { a: { b: { c: { e: 2 } } } }],
    [{ a: 'x', n: { m: 1 } }, { a: 'y', n: { m: 1, k: 'new' }, z: [null, 1] }],
  ];
  for (const [from, to] of cases) assert.deepEqual(applyMergePatch(from, mergePatchBetween(from, to)), to);
});

test('an edit replayed on a newer version keeps the other writer’s change it did not touch', () => {
  const loaded = { mode: 'eco', level: 3 };
  const mine = mergePatchBetween(loaded, { mode: 'fast', level: 3 });
  const current = { mode: 'eco', level: 4 }; // another writer moved level meanwhile
  assert.deepEqual(applyMergePatch(current, mine), { mode: 'fast', level: 4 });
});

test('the editor text is a JSON object without null members, or says why not', () => {
  assert.deepEqual(parseSection('{"a": [null, 1]}', 'Desired').value, { a: [null, 1] });
  assert.deepEqual(parseSection('  ', 'Tags').value, {});
  assert.match(parseSection('{"a": ', 'Desired').error!, /^Desired is not JSON/);
  assert.match(parseSection('[1, 2]', 'Desired').error!, /^Desired is a JSON object/);
  assert.match(parseSection('"text"', 'Tags').error!, /^Tags is a JSON object/);
  assert.match(parseSection('{"a": {"b/c": null}}', 'Desired').error!, /cannot hold null \(\/a\/b~1c\)/);
});

test('leaf stamps become pointers, newest first; leaves are counted', () => {
  const stamps = { mode: 100, net: { ssid: 300, channel: 200 }, 'a/b': 50 };
  assert.deepEqual(leafStamps(stamps), [['/net/ssid', 300], ['/net/channel', 200], ['/mode', 100], ['/a~1b', 50]]);
  assert.deepEqual(leafStamps({}), []);
  assert.equal(leafCount({ mode: 'eco', net: { ssid: 'x', channel: 6 }, list: [1, 2] }), 4);
  assert.equal(leafCount({}), 0);
});

test('a query’s fields are its columns: each once, both sides of a comparison of fields', () => {
  const fields = queryFields(['reported.firmware.version = 1.4.2', 'desired.mode != reported.mode', 'reported.battery>=40', 'reported.gps exists', 'tags.site = lyon', 'reported.mode = eco', 'what']);
  assert.deepEqual(
    fields.map((f) => [f.text, f.section, f.path]),
    [
      ['reported.firmware.version', 'reported', ['firmware', 'version']],
      ['desired.mode', 'desired', ['mode']],
      ['reported.mode', 'reported', ['mode']],
      ['reported.battery', 'reported', ['battery']],
      ['reported.gps', 'reported', ['gps']],
      ['tags.site', 'tags', ['site']],
    ],
  );
  assert.deepEqual(fieldValue({ firmware: { version: '1.4.2' } }, ['firmware', 'version']), '1.4.2');
  assert.equal(fieldValue({ firmware: '1' }, ['firmware', 'version']), undefined);
  assert.deepEqual(conditionLines(' tags.site = lyon \n\n reported.battery >= 40\n'), ['tags.site = lyon', 'reported.battery >= 40']);
});
