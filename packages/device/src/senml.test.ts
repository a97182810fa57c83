import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SenmlError } from './errors.js';
import { validateSenml } from './senml.js';

/** The SenmlError a pack gets: its record index and message. */
function refusal(pack: unknown): { index: number | undefined; message: string } {
  try {
    validateSenml(pack);
  } catch (e) {
    assert.ok(e instanceof SenmlError, `expected a SenmlError, got ${String(e)}`);
    assert.equal(e.code, 'invalid_senml');
    return { index: e.index, message: e.message };
  }
  assert.fail(`expected ${JSON.stringify(pack)} to be refused`);
}

test('packs of RFC 8428 §5 pass unchanged', () => {
  const packs = [
    [{ n: 'urn:dev:ow:10e2073a01080063', u: 'Cel', v: 23.1 }],
    [{ bn: 'urn:dev:ow:10e2073a01080063:', n: 'voltage', u: 'V', v: 120.1 }, { n: 'current', u: 'A', v: 1.2 }],
    [{ bn: 'urn:dev:ow:10e2073a0108006:', bt: 1.276020076001e9, bu: 'A', bver: 5, n: 'voltage', u: 'V', v: 120.1 }, { n: 'current', t: -5, v: 1.2 }],
    [{ bn: 'dev:', n: 'temp', v: 23.1 }, { n: 'label', vs: 'Machine Room' }, { n: 'open', vb: false }, { n: 'nfv-reader', vd: 'aGkgCg' }],
    [{ bn: 'meter', bs: 100 }, { s: 5, t: 60 }],
    [{ n: 'x', v: 1, other: 'extension labels are ignored' }],
  ];
  for (const pack of packs) assert.equal(validateSenml(pack), pack);
});

test('a pack is a non-empty array of objects', () => {
  assert.deepEqual(refusal({ n: 'temp', v: 1 }), { index: undefined, message: 'invalid SenML pack: a pack must be an array of records, got an object' });
  assert.match(refusal([]).message, /at least one record/);
  assert.deepEqual(refusal([{ n: 'a', v: 1 }, 'b']), { index: 1, message: 'invalid SenML pack: record 1: a record must be an object, got a string' });
});

test('each label must have its type', () => {
  assert.match(refusal([{ n: 'temp', v: '21.5' }]).message, /record 0: v must be a finite number, got a string/);
  assert.match(refusal([{ n: 'temp', v: Number.NaN }]).message, /v must be a finite number, got NaN/);
  assert.match(refusal([{ n: 7, v: 1 }]).message, /n must be a string, got a number/);
  assert.match(refusal([{ n: 'open', vb: 'yes' }]).message, /vb must be a boolean/);
  assert.match(refusal([{ n: 'blob', vd: 'aGk=' }]).message, /vd must be base64url without padding/);
  assert.match(refusal([{ n: 'a', t: null, v: 1 }]).message, /t must be a finite number, got null/);
});

test('every record needs a valid name, from its base name and name', () => {
  assert.match(refusal([{ v: 1 }]).message, /no name/);
  assert.match(refusal([{ n: 'room temp', v: 1 }]).message, /name "room temp" must start with a letter or digit/);
  assert.match(refusal([{ n: '-x', v: 1 }]).message, /must start with a letter or digit/);
  // the base name carries to the following records
  assert.doesNotThrow(() => validateSenml([{ bn: 'dev1', v: 1 }, { v: 2 }]));
});

test('a record holds one value, or a sum', () => {
  assert.match(refusal([{ n: 'a', v: 1, vs: 'one' }]).message, /has v, vs: a record holds at most one value/);
  assert.deepEqual(refusal([{ n: 'a', v: 1 }, { n: 'b' }]).index, 1);
  assert.match(refusal([{ n: 'b', u: 'Cel' }]).message, /needs a value \(v, vs, vb or vd\) or a sum/);
});

test('one version per pack, at most 10', () => {
  assert.match(refusal([{ bver: 11, n: 'a', v: 1 }]).message, /bver must be an integer from 1 to 10/);
  assert.match(refusal([{ n: 'a', v: 1 }, { bver: 5, n: 'b', v: 2 }]).message, /record 1: bver 5 differs from the pack's version 10/);
  assert.doesNotThrow(() => validateSenml([{ bver: 5, n: 'a', v: 1 }, { bver: 5, n: 'b', v: 2 }, { n: 'c', v: 3 }]));
});

test('must-understand labels (ending in _) are refused', () => {
  assert.match(refusal([{ n: 'a', v: 1, rt_: 5 }]).message, /unknown must-understand label "rt_"/);
});
