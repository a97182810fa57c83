// test-database: none
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Encoder, encode } from 'cbor-x';
import {
  maxSenmlRecords,
  maxSenmlStringBytes,
  parseSenmlCbor,
  parseSenmlJson,
  resolveSenmlCbor,
  senmlRelativeTimeLimit,
  type SenmlRecord,
  type SenmlResult,
} from './senml.js';

const now = 1_700_000_000.25; // receive time, Unix seconds

/** RFC 8428 §6 Table 4. */
const cborLabel: Record<string, number> = { bver: -1, bn: -2, bt: -3, bu: -4, bv: -5, bs: -6, n: 0, u: 1, v: 2, vs: 3, vb: 4, s: 5, t: 6, ut: 7, vd: 8 };
/** Plain CBOR maps (no tag 259), as a device would send them. */
const cborEncoder = new Encoder({ mapsAsObjects: false, useRecords: false });

/** The CBOR form of a JSON pack: integer labels, vd as a byte string (RFC 8428 §6). */
function toCbor(pack: Record<string, unknown>[]): Buffer {
  return cborEncoder.encode(
    pack.map((r) => new Map(Object.entries(r).map(([k, v]) => [cborLabel[k] ?? k, k === 'vd' && typeof v === 'string' ? Buffer.from(v, 'base64url') : v]))),
  );
}

function records(r: SenmlResult): SenmlRecord[] {
  if (!r.ok) assert.fail(`expected ok, got error: ${r.error}`);
  return r.records;
}

function error(r: SenmlResult): string {
  if (r.ok) assert.fail(`expected an error, got ${JSON.stringify(r.records)}`);
  return r.error;
}

/** Both encodings of a pack resolve to the same records. */
function bothEncodings(pack: Record<string, unknown>[], receivedAt = now): SenmlRecord[] {
  const fromJson = records(parseSenmlJson(JSON.stringify(pack), receivedAt));
  const fromCbor = records(parseSenmlCbor(toCbor(pack), receivedAt));
  assert.deepEqual(fromCbor, fromJson);
  return fromJson;
}

function jsonError(pack: unknown): string {
  return error(parseSenmlJson(JSON.stringify(pack), now));
}

describe('RFC 8428 §5 examples', () => {
  test('single data point (§5.1.1) is taken at the receive time', () => {
    const pack = [{ n: 'urn:dev:ow:10e2073a01080063', u: 'Cel', v: 23.1 }];
    assert.deepEqual(bothEncodings(pack), [{ name: 'urn:dev:ow:10e2073a01080063', unit: 'Cel', time: now, value: 23.1 }]);
  });

  test('multiple data points (§5.1.2) concatenate the base name', () => {
    const pack = [
      { bn: 'urn:dev:ow:10e2073a01080063:', n: 'voltage', u: 'V', v: 120.1 },
      { n: 'current', u: 'A', v: 1.2 },
    ];
    assert.deepEqual(bothEncodings(pack), [
      { name: 'urn:dev:ow:10e2073a01080063:voltage', unit: 'V', time: now, value: 120.1 },
      { name: 'urn:dev:ow:10e2073a01080063:current', unit: 'A', time: now, value: 1.2 },
    ]);
  });

  // §5.1.2, second example; the same pack is the CBOR example of §6.
  const relativeToBaseTime = [
    { bn: 'urn:dev:ow:10e2073a0108006:', bt: 1.276020076001e9, bu: 'A', bver: 5, n: 'voltage', u: 'V', v: 120.1 },
    { n: 'current', t: -5, v: 1.2 },
    { n: 'current', t: -4, v: 1.3 },
    { n: 'current', t: -3, v: 1.4 },
    { n: 'current', t: -2, v: 1.5 },
    { n: 'current', t: -1, v: 1.6 },
    { n: 'current', v: 1.7 },
  ];
  const relativeToBaseTimeResolved: SenmlRecord[] = [
    { name: 'urn:dev:ow:10e2073a0108006:voltage', unit: 'V', time: 1276020076.001, value: 120.1 },
    { name: 'urn:dev:ow:10e2073a0108006:current', unit: 'A', time: 1276020071.001, value: 1.2 },
    { name: 'urn:dev:ow:10e2073a0108006:current', unit: 'A', time: 1276020072.001, value: 1.3 },
    { name: 'urn:dev:ow:10e2073a0108006:current', unit: 'A', time: 1276020073.001, value: 1.4 },
    { name: 'urn:dev:ow:10e2073a0108006:current', unit: 'A', time: 1276020074.001, value: 1.5 },
    { name: 'urn:dev:ow:10e2073a0108006:current', unit: 'A', time: 1276020075.001, value: 1.6 },
    { name: 'urn:dev:ow:10e2073a0108006:current', unit: 'A', time: 1276020076.001, value: 1.7 },
  ];

  test('times relative to an absolute base time (§5.1.2) resolve to absolute times, with the base unit and version', () => {
    assert.deepEqual(bothEncodings(relativeToBaseTime), relativeToBaseTimeResolved);
    const r = parseSenmlJson(JSON.stringify(relativeToBaseTime), now);
    assert.equal(r.ok && r.version, 5);
  });

  test('the CBOR example of §6, byte for byte, resolves like its JSON form', () => {
    const rfcHex = `
      87 a7 21 78 1b 75 72 6e 3a 64 65 76 3a 6f 77 3a 31 30 65 32 30 37 33 61 30 31 30 38 30 30 36 3a
      22 fb 41 d3 03 a1 5b 00 10 62 23 61 41 20 05 00 67 76 6f 6c 74 61 67 65 01 61 56 02 fb 40 5e 06
      66 66 66 66 66 a3 00 67 63 75 72 72 65 6e 74 06 24 02 fb 3f f3 33 33 33 33 33 33 a3 00 67 63 75
      72 72 65 6e 74 06 23 02 fb 3f f4 cc cc cc cc cc cd a3 00 67 63 75 72 72 65 6e 74 06 22 02 fb 3f
      f6 66 66 66 66 66 66 a3 00 67 63 75 72 72 65 6e 74 06 21 02 f9 3e 00 a3 00 67 63 75 72 72 65 6e
      74 06 20 02 fb 3f f9 99 99 99 99 99 9a a3 00 67 63 75 72 72 65 6e 74 06 00 02 fb 3f fb 33 33 33
      33 33 33`;
    const bytes = Buffer.from(rfcHex.replace(/\s+/g, ''), 'hex');
    assert.equal(bytes.length, 0xc3);
    const r = parseSenmlCbor(bytes, now);
    assert.deepEqual(records(r), relativeToBaseTimeResolved);
    assert.equal(r.ok && r.version, 5);
  });

  test('a stream of readings relative to a base time (§5.1.2, SensML) resolves every record', () => {
    const pack = [
      { bn: 'urn:dev:ow:10e2073a01080063', bt: 1.320067464e9, bu: '%RH', v: 21.2 },
      { t: 10, v: 21.3 },
      { t: 20, v: 21.4 },
      { t: 30, v: 21.4 },
      { t: 40, v: 21.5 },
    ];
    assert.deepEqual(
      bothEncodings(pack),
      [
        [0, 21.2],
        [10, 21.3],
        [20, 21.4],
        [30, 21.4],
        [40, 21.5],
      ].map(([t, v]) => ({ name: 'urn:dev:ow:10e2073a01080063', unit: '%RH', time: 1320067464 + t!, value: v })),
    );
  });

  test('multiple measurements (§5.1.3) resolve to the resolved data of §5.1.4', () => {
    const pack = [
      { bn: 'urn:dev:ow:10e2073a01080063', bt: 1.320067464e9, bu: '%RH', v: 20 },
      { u: 'lon', v: 24.30621 },
      { u: 'lat', v: 60.07965 },
      { t: 60, v: 20.3 },
      { u: 'lon', t: 60, v: 24.30622 },
      { u: 'lat', t: 60, v: 60.07965 },
      { t: 120, v: 20.7 },
      { u: 'lon', t: 120, v: 24.30623 },
      { u: 'lat', t: 120, v: 60.07966 },
      { u: '%EL', t: 150, v: 98 },
      { t: 180, v: 21.2 },
      { u: 'lon', t: 180, v: 24.30628 },
      { u: 'lat', t: 180, v: 60.07967 },
    ];
    const n = 'urn:dev:ow:10e2073a01080063';
    // §5.1.4, verbatim.
    const resolved: SenmlRecord[] = [
      { name: n, unit: '%RH', time: 1.320067464e9, value: 20 },
      { name: n, unit: 'lon', time: 1.320067464e9, value: 24.30621 },
      { name: n, unit: 'lat', time: 1.320067464e9, value: 60.07965 },
      { name: n, unit: '%RH', time: 1.320067524e9, value: 20.3 },
      { name: n, unit: 'lon', time: 1.320067524e9, value: 24.30622 },
      { name: n, unit: 'lat', time: 1.320067524e9, value: 60.07965 },
      { name: n, unit: '%RH', time: 1.320067584e9, value: 20.7 },
      { name: n, unit: 'lon', time: 1.320067584e9, value: 24.30623 },
      { name: n, unit: 'lat', time: 1.320067584e9, value: 60.07966 },
      { name: n, unit: '%EL', time: 1.320067614e9, value: 98 },
      { name: n, unit: '%RH', time: 1.320067644e9, value: 21.2 },
      { name: n, unit: 'lon', time: 1.320067644e9, value: 24.30628 },
      { name: n, unit: 'lat', time: 1.320067644e9, value: 60.07967 },
    ];
    assert.deepEqual(bothEncodings(pack), resolved);
  });

  test('resolved data (§5.1.4) passes through unchanged', () => {
    const n = 'urn:dev:ow:10e2073a01080063';
    const pack = [
      { n, u: '%RH', t: 1.320067464e9, v: 20 },
      { n, u: 'lon', t: 1.320067464e9, v: 24.30621 },
      { n, u: '%EL', t: 1.320067614e9, v: 98 },
    ];
    assert.deepEqual(bothEncodings(pack), [
      { name: n, unit: '%RH', time: 1320067464, value: 20 },
      { name: n, unit: 'lon', time: 1320067464, value: 24.30621 },
      { name: n, unit: '%EL', time: 1320067614, value: 98 },
    ]);
  });

  test('multiple data types (§5.1.5): number, string, boolean and data values', () => {
    const pack = [
      { bn: 'urn:dev:ow:10e2073a01080063:', n: 'temp', u: 'Cel', v: 23.1 },
      { n: 'label', vs: 'Machine Room' },
      { n: 'open', vb: false },
      { n: 'nfv-reader', vd: 'aGkgCg' },
    ];
    assert.deepEqual(bothEncodings(pack), [
      { name: 'urn:dev:ow:10e2073a01080063:temp', unit: 'Cel', time: now, value: 23.1 },
      { name: 'urn:dev:ow:10e2073a01080063:label', time: now, stringValue: 'Machine Room' },
      { name: 'urn:dev:ow:10e2073a01080063:open', time: now, boolValue: false },
      { name: 'urn:dev:ow:10e2073a01080063:nfv-reader', time: now, dataValue: 'aGkgCg' },
    ]);
  });

  test('collection of resources (§5.1.6): a new base name applies from its record on, the base time carries over', () => {
    const pack = [
      { bn: '2001:db8::2/', bt: 1.320078429e9, n: 'temperature', u: 'Cel', v: 25.2 },
      { n: 'humidity', u: '%RH', v: 30 },
      { bn: '2001:db8::1/', n: 'temperature', u: 'Cel', v: 12.3 },
      { n: 'humidity', u: '%RH', v: 67 },
    ];
    assert.deepEqual(bothEncodings(pack), [
      { name: '2001:db8::2/temperature', unit: 'Cel', time: 1320078429, value: 25.2 },
      { name: '2001:db8::2/humidity', unit: '%RH', time: 1320078429, value: 30 },
      { name: '2001:db8::1/temperature', unit: 'Cel', time: 1320078429, value: 12.3 },
      { name: '2001:db8::1/humidity', unit: '%RH', time: 1320078429, value: 67 },
    ]);
  });

  test('setting actuators (§5.1.7) with a base time and a time 0.1 s after it', () => {
    const pack = [
      { bt: 1.320078429e9, bu: '/', n: '2001:db8::3', v: 0.5 },
      { n: '2001:db8::4', v: 0.5 },
      { n: '2001:db8::3', t: 0.1, v: 0 },
      { n: '2001:db8::4', t: 0.1, v: 0 },
    ];
    assert.deepEqual(bothEncodings(pack), [
      { name: '2001:db8::3', unit: '/', time: 1320078429, value: 0.5 },
      { name: '2001:db8::4', unit: '/', time: 1320078429, value: 0.5 },
      { name: '2001:db8::3', unit: '/', time: 1320078429.1, value: 0 },
      { name: '2001:db8::4', unit: '/', time: 1320078429.1, value: 0 },
    ]);
  });

  test('a record carrying only a base name (first pack of §5.1.7) is refused: every record needs a value or a sum', () => {
    const pack = [{ bn: 'urn:dev:ow:10e2073a01080063:' }, { n: 'temp', u: 'Cel', v: 23.1 }];
    assert.equal(jsonError(pack), 'record 0: needs a value (v, vs, vb or vd) or a sum (s) (RFC 8428 §4.2)');
  });
});

describe('CBOR representation', () => {
  test('maps wrapped in tag 259 (cbor-x default for Maps) are read like plain maps', () => {
    const bytes = encode([new Map<number, unknown>([[0, 'a'], [2, 1]])]);
    assert.deepEqual(records(parseSenmlCbor(bytes, now)), [{ name: 'a', time: now, value: 1 }]);
  });

  test('records decoded as plain objects (integer keys turned into strings) resolve like Maps', () => {
    const pack = [{ '-2': 'urn:x:', '-3': 1.5e9, '0': 'a', '2': 1, '99': 'ignored' }, { '0': 'b', '8': Buffer.from('hi'), '5': 3, '6': 2 }];
    assert.deepEqual(records(resolveSenmlCbor(pack, now)), [
      { name: 'urn:x:a', time: 1.5e9, value: 1 },
      { name: 'urn:x:b', time: 1.5e9 + 2, dataValue: 'aGk', sum: 3 },
    ]);
    assert.equal(error(resolveSenmlCbor([{ '0': 'a', '2': 1, v: 2 }], now)), 'record 0: text label "v" in a CBOR record; SenML CBOR uses integer labels (v is 2) (RFC 8428 §6)');
    // cbor-x's own record extension yields plain objects too
    const viaRecords = new Encoder({ useRecords: true }).encode([{ '0': 'a', '2': 1 }]);
    assert.deepEqual(records(parseSenmlCbor(viaRecords, now)), [{ name: 'a', time: now, value: 1 }]);
  });

  test('a text label that SenML defines as an integer is refused in CBOR', () => {
    assert.equal(
      error(parseSenmlCbor(encode([{ n: 'a', v: 1 }]), now)),
      'record 0: text label "n" in a CBOR record; SenML CBOR uses integer labels (n is 0) (RFC 8428 §6)',
    );
  });

  test('the data value must be a byte string in CBOR', () => {
    assert.equal(error(parseSenmlCbor(toCbor([{ n: 'a', vd: 1 }]), now)), 'record 0: vd (8) must be a byte string, got a number (RFC 8428 §6)');
    const text = cborEncoder.encode([new Map<number, unknown>([[0, 'a'], [8, 'aGk']])]);
    assert.equal(error(parseSenmlCbor(text, now)), 'record 0: vd (8) must be a byte string, got a text string (RFC 8428 §6)');
  });

  test('unknown integer labels are ignored, unknown text labels ending in _ are refused', () => {
    const extra = cborEncoder.encode([new Map<number | string, unknown>([[0, 'a'], [2, 1], [99, 'x'], [-99, 'y'], ['ext', 1]])]);
    assert.deepEqual(records(parseSenmlCbor(extra, now)), [{ name: 'a', time: now, value: 1 }]);
    const mustUnderstand = cborEncoder.encode([new Map<number | string, unknown>([[0, 'a'], [2, 1], ['ext_', 1]])]);
    assert.equal(error(parseSenmlCbor(mustUnderstand, now)), 'record 0: unknown must-understand label "ext_" (labels ending in "_" must be understood) (RFC 8428 §4.4)');
  });

  test('integers beyond 2**53 (bigint) and decimal fractions (tag 4) are numbers', () => {
    // {0: "a", 2: 18446744073709551615, 6: 4([-2, 27315]) }
    const bytes = Buffer.from('81a3006161021bffffffffffffffff06c48221196ab3', 'hex');
    assert.deepEqual(records(parseSenmlCbor(bytes, now)), [{ name: 'a', time: now + 273.15, value: 2 ** 64 }]);
  });

  test('NaN and infinite floats are refused', () => {
    assert.equal(error(parseSenmlCbor(toCbor([{ n: 'a', v: NaN }]), now)), 'record 0: v (2) must be a finite number, got NaN (RFC 8428 §4.3)');
    assert.equal(error(parseSenmlCbor(toCbor([{ n: 'a', v: 1, t: -Infinity }]), now)), 'record 0: t (6) must be a finite number, got -Infinity (RFC 8428 §4.3)');
  });

  test('bytes that are not one whole CBOR item are refused', () => {
    assert.equal(error(parseSenmlCbor(Buffer.alloc(0), now)), 'payload is not valid CBOR: Unexpected end of CBOR data');
    const valid = toCbor([{ n: 'a', v: 1 }]);
    assert.match(error(parseSenmlCbor(valid.subarray(0, valid.length - 1), now)), /^payload is not valid CBOR: /);
    assert.equal(error(parseSenmlCbor(Buffer.concat([valid, Buffer.from([0])]), now)), 'payload is not valid CBOR: Data read, but end of buffer not reached');
    assert.equal(error(parseSenmlCbor(Buffer.from('81'.repeat(100_000) + '00', 'hex'), now)), 'the payload is nested deeper than 32 levels of arrays, maps and tags');
  });
});

describe('base fields', () => {
  test('each base field carries forward until a record sets it again (§4.1)', () => {
    const pack = [
      { bn: 'dev:', bt: 1.5e9, bu: 'Cel', bv: 20, n: 'a', v: 1 },
      { n: 'b', v: 2, u: 'K' },
      { n: 'c', v: 3 },
      { bn: 'other:', bv: 0, bt: 1.6e9, n: 'd', v: 4 },
      { bu: 'V', n: 'e', v: 5 },
    ];
    assert.deepEqual(bothEncodings(pack), [
      { name: 'dev:a', unit: 'Cel', time: 1.5e9, value: 21 },
      { name: 'dev:b', unit: 'K', time: 1.5e9, value: 22 },
      { name: 'dev:c', unit: 'Cel', time: 1.5e9, value: 23 },
      { name: 'other:d', unit: 'Cel', time: 1.6e9, value: 4 },
      { name: 'other:e', unit: 'V', time: 1.6e9, value: 5 },
    ]);
  });

  test('the base value is added to numeric values only', () => {
    assert.deepEqual(bothEncodings([{ bn: 'x:', bv: 10, n: 'a', v: 1 }, { n: 'b', vs: 's' }, { n: 'c', vb: true }]), [
      { name: 'x:a', time: now, value: 11 },
      { name: 'x:b', time: now, stringValue: 's' },
      { name: 'x:c', time: now, boolValue: true },
    ]);
  });

  test('the base sum is added to the sum, and a base sum alone gives the record a sum (§4.5.4)', () => {
    assert.deepEqual(bothEncodings([{ bn: 'm:', bs: 1000, n: 'energy', s: 5, u: 'J' }, { n: 'energy' }, { n: 'power', v: 2 }]), [
      { name: 'm:energy', unit: 'J', time: now, sum: 1005 },
      { name: 'm:energy', time: now, sum: 1000 },
      { name: 'm:power', time: now, value: 2, sum: 1000 },
    ]);
  });

  test('a sum alone is a complete record (§4.2), and a value may come with a sum', () => {
    assert.deepEqual(bothEncodings([{ n: 'meter', u: 'W', s: 1234.5, ut: 60 }, { n: 'meter', u: 'W', v: 3, s: 1240 }]), [
      { name: 'meter', unit: 'W', time: now, updateTime: 60, sum: 1234.5 },
      { name: 'meter', unit: 'W', time: now, value: 3, sum: 1240 },
    ]);
  });

  test('the name may come from the base name alone', () => {
    assert.deepEqual(bothEncodings([{ bn: 'urn:dev:ow:10e2073a01080063', v: 1 }, { v: 2 }]), [
      { name: 'urn:dev:ow:10e2073a01080063', time: now, value: 1 },
      { name: 'urn:dev:ow:10e2073a01080063', time: now, value: 2 },
    ]);
  });
});

describe('time (§4.5.3)', () => {
  const at = (pack: Record<string, unknown>[]) => bothEncodings(pack).map((r) => r.time);

  test('a record with no time is taken at the receive time', () => {
    assert.deepEqual(at([{ n: 'a', v: 1 }]), [now]);
  });

  test('times below 2**28 are relative to the receive time, into the past or the future', () => {
    assert.deepEqual(at([{ n: 'a', v: 1, t: -5 }, { n: 'a', v: 1, t: 30 }, { n: 'a', v: 1, t: senmlRelativeTimeLimit - 1 }]), [
      now - 5,
      now + 30,
      now + senmlRelativeTimeLimit - 1,
    ]);
  });

  test('times from 2**28 on are absolute Unix seconds', () => {
    assert.deepEqual(at([{ n: 'a', v: 1, t: senmlRelativeTimeLimit }, { n: 'a', v: 1, t: 1.7e9 + 0.5 }]), [senmlRelativeTimeLimit, 1.7e9 + 0.5]);
  });

  test('the base time and the time are added before deciding relative or absolute', () => {
    // a relative base time stays relative
    assert.deepEqual(at([{ bt: 100, n: 'a', v: 1, t: -5 }, { n: 'a', v: 1 }]), [now + 95, now + 100]);
    // an absolute base time with a negative offset stays absolute
    assert.deepEqual(at([{ bt: 1.7e9, n: 'a', v: 1, t: -5 }]), [1.7e9 - 5]);
    // a sum that reaches 2**28 is absolute (the pitfall the RFC warns about)
    assert.deepEqual(at([{ bt: senmlRelativeTimeLimit - 10, n: 'a', v: 1, t: 10 }]), [senmlRelativeTimeLimit]);
  });
});

describe('version (bver)', () => {
  test('the default version is 10; any version from 1 to 10 is accepted', () => {
    const r = parseSenmlJson('[{"n":"a","v":1}]', now);
    assert.equal(r.ok && r.version, 10);
    for (const bver of [1, 5, 10]) {
      const v = parseSenmlJson(JSON.stringify([{ bver, n: 'a', v: 1 }, { n: 'b', v: 2 }]), now);
      assert.equal(v.ok && v.version, bver);
    }
  });

  test('every record that repeats bver must repeat the same version', () => {
    assert.deepEqual(records(parseSenmlJson(JSON.stringify([{ bver: 5, n: 'a', v: 1 }, { bver: 5, n: 'b', v: 2 }]), now)).length, 2);
    assert.equal(
      jsonError([{ bver: 5, n: 'a', v: 1 }, { n: 'b', v: 2 }, { bver: 6, n: 'c', v: 3 }]),
      "record 2: bver 6 differs from the pack's version 5 (set by record 0); all records of a pack must have the same version (RFC 8428 §4.4)",
    );
  });

  test('a version appearing after a first record without one differs from the default 10', () => {
    assert.equal(
      jsonError([{ n: 'a', v: 1 }, { bver: 5, n: 'b', v: 2 }]),
      "record 1: bver 5 differs from the pack's version 10 (the default 10, as record 0 has no bver); all records of a pack must have the same version (RFC 8428 §4.4)",
    );
    assert.equal(records(parseSenmlJson(JSON.stringify([{ n: 'a', v: 1 }, { bver: 10, n: 'b', v: 2 }]), now)).length, 2);
  });

  test('a version newer than 10 is refused', () => {
    assert.equal(jsonError([{ bver: 11, n: 'a', v: 1 }]), 'record 0: bver 11 is newer than this server understands (versions 1 to 10 are accepted) (RFC 8428 §4.4)');
  });

  test('a version that is not a positive integer is refused', () => {
    assert.equal(jsonError([{ bver: 0, n: 'a', v: 1 }]), 'record 0: bver must be a positive integer, got 0 (RFC 8428 §4.1)');
    assert.equal(jsonError([{ bver: -1, n: 'a', v: 1 }]), 'record 0: bver must be a positive integer, got -1 (RFC 8428 §4.1)');
    assert.equal(jsonError([{ bver: 1.5, n: 'a', v: 1 }]), 'record 0: bver must be a positive integer, got 1.5 (RFC 8428 §4.1)');
    assert.equal(jsonError([{ bver: '10', n: 'a', v: 1 }]), 'record 0: bver must be a positive integer, got a string (RFC 8428 §4.1)');
  });
});

describe('rejections', () => {
  test('a pack that is not an array of records', () => {
    assert.equal(jsonError({ n: 'a', v: 1 }), 'a SenML pack must be an array of records (RFC 8428 §4), got an object');
    assert.equal(jsonError(42), 'a SenML pack must be an array of records (RFC 8428 §4), got a number');
    assert.equal(jsonError(null), 'a SenML pack must be an array of records (RFC 8428 §4), got null');
    assert.equal(jsonError([]), 'a SenML pack must hold at least one record (RFC 8428 §11), got an empty array');
    assert.equal(jsonError([{ n: 'a', v: 1 }, 7]), 'record 1: must be an object, got a number');
    assert.equal(jsonError([[{ n: 'a', v: 1 }]]), 'record 0: must be an object, got an array');
    assert.equal(error(parseSenmlCbor(encode(['x']), now)), 'record 0: must be a map, got a text string');
    assert.equal(error(parseSenmlCbor(encode(new Map([[0, 'a']])), now)), 'a SenML pack must be an array of records (RFC 8428 §4), got a map');
  });

  test(`a pack of more than ${maxSenmlRecords} records`, () => {
    const full = Array.from({ length: maxSenmlRecords }, (_, i) => ({ n: `s${i}`, v: i }));
    assert.equal(records(parseSenmlJson(JSON.stringify(full), now)).length, maxSenmlRecords);
    assert.equal(jsonError([...full, { n: 'one-more', v: 0 }]), `a SenML pack may hold at most ${maxSenmlRecords} records, got ${maxSenmlRecords + 1}`);
  });

  test('text that is not JSON, or not UTF-8', () => {
    assert.match(error(parseSenmlJson('[{"n":"a",', now)), /^payload is not valid JSON: /);
    assert.equal(error(parseSenmlJson(Buffer.from([0x5b, 0xff, 0x5d]), now)), 'payload is not valid UTF-8 (RFC 8259 §8.1)');
    assert.equal(records(parseSenmlJson(Buffer.from('\ufeff[{"n":"a","v":1}]'), now)).length, 1);
  });

  test('an empty name', () => {
    assert.equal(jsonError([{ v: 1 }]), 'record 0: no name: neither bn nor n is given (RFC 8428 §4.5.1)');
    assert.equal(jsonError([{ bn: '', n: '', v: 1 }]), 'record 0: no name: neither bn nor n is given (RFC 8428 §4.5.1)');
  });

  test('a name outside the restricted character set', () => {
    const rule = 'must start with a letter or digit and hold only letters, digits and - : . / _ (RFC 8428 §4.5.1)';
    assert.equal(jsonError([{ n: '_temp', v: 1 }]), `record 0: name "_temp" ${rule}`);
    assert.equal(jsonError([{ bn: 'dev ', n: 'temp', v: 1 }]), `record 0: name "dev temp" ${rule}`);
    assert.equal(jsonError([{ n: 'température', v: 1 }]), `record 0: name "température" ${rule}`);
    assert.equal(jsonError([{ n: 'ok', v: 1 }, { n: 'a#b', v: 1 }]), `record 1: name "a#b" ${rule}`);
    assert.deepEqual(bothEncodings([{ n: 'A-z_0:9./x', v: 1 }]).map((r) => r.name), ['A-z_0:9./x']);
  });

  test('a name longer than 1024 characters', () => {
    assert.equal(records(parseSenmlJson(JSON.stringify([{ bn: 'a'.repeat(1000), n: 'b'.repeat(24), v: 1 }]), now)).length, 1);
    assert.equal(jsonError([{ bn: 'a'.repeat(1000), n: 'b'.repeat(25), v: 1 }]), 'record 0: name is longer than 1024 characters');
  });

  test('more than one value field', () => {
    assert.equal(jsonError([{ n: 'a', v: 1, vs: 'x' }]), 'record 0: has v, vs; a record holds at most one value field (RFC 8428 §4.2)');
    assert.equal(jsonError([{ n: 'a', vb: true, vd: 'aGk', s: 1 }]), 'record 0: has vb, vd; a record holds at most one value field (RFC 8428 §4.2)');
    assert.equal(
      error(parseSenmlCbor(toCbor([{ n: 'a', v: 1, vb: false }]), now)),
      'record 0: has v (2), vb (4); a record holds at most one value field (RFC 8428 §4.2)',
    );
  });

  test('no value and no sum', () => {
    assert.equal(jsonError([{ n: 'a', u: 'Cel' }]), 'record 0: needs a value (v, vs, vb or vd) or a sum (s) (RFC 8428 §4.2)');
    assert.equal(error(parseSenmlCbor(toCbor([{ n: 'a' }]), now)), 'record 0: needs a value (v (2), vs (3), vb (4) or vd (8)) or a sum (s (5)) (RFC 8428 §4.2)');
  });

  test('fields of the wrong type', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ n: 'a', v: '1' }, 'v must be a finite number, got a string'],
      [{ n: 'a', v: null }, 'v must be a finite number, got null'],
      [{ n: 'a', vs: 1 }, 'vs must be a string, got a number'],
      [{ n: 'a', vb: 'true' }, 'vb must be a boolean, got a string'],
      [{ n: 'a', vb: 1 }, 'vb must be a boolean, got a number'],
      [{ n: 'a', s: '1' }, 's must be a finite number, got a string'],
      [{ n: 'a', v: 1, t: 'now' }, 't must be a finite number, got a string'],
      [{ n: 'a', v: 1, ut: true }, 'ut must be a finite number, got a boolean'],
      [{ n: 'a', v: 1, bt: [1] }, 'bt must be a finite number, got an array'],
      [{ n: 'a', v: 1, bv: {} }, 'bv must be a finite number, got an object'],
      [{ n: 'a', v: 1, bs: false }, 'bs must be a finite number, got a boolean'],
      [{ bn: 1, v: 1 }, 'bn must be a string, got a number'],
      [{ n: 'a', v: 1, bu: 1 }, 'bu must be a string, got a number'],
      [{ n: 1, v: 1 }, 'n must be a string, got a number'],
      [{ n: 'a', v: 1, u: null }, 'u must be a string, got null'],
    ];
    for (const [rec, message] of cases) assert.equal(jsonError([rec]), `record 0: ${message} (RFC 8428 §4.3)`, JSON.stringify(rec));
    assert.equal(jsonError([{ n: 'a', v: 'NaN' }]), 'record 0: v must be a finite number, got a string (RFC 8428 §4.3)');
    // JSON has no NaN or Infinity, but a number too large for a double parses to Infinity
    assert.equal(error(parseSenmlJson('[{"n":"a","v":1e400}]', now)), 'record 0: v must be a finite number, got Infinity (RFC 8428 §4.3)');
    assert.equal(jsonError([{ n: 'a', vd: 1 }]), 'record 0: vd must be a base64url string, got a number (RFC 8428 §5)');
  });

  test('a data value that is not base64url without padding', () => {
    const rule = 'record 0: vd must be base64url without padding (A-Z a-z 0-9 - _) (RFC 8428 §5)';
    assert.equal(jsonError([{ n: 'a', vd: 'aGkgCg==' }]), rule);
    assert.equal(jsonError([{ n: 'a', vd: 'a+/b' }]), rule);
    assert.equal(jsonError([{ n: 'a', vd: 'abcde' }]), rule); // 4k+1 characters
    assert.deepEqual(bothEncodings([{ n: 'a', vd: '' }, { n: 'b', vd: '-_8' }]).map((r) => r.dataValue), ['', '-_8']);
  });

  test('an unknown label ending in _ (must understand) is refused; other unknown labels are ignored', () => {
    assert.equal(
      jsonError([{ n: 'a', v: 1 }, { n: 'b', v: 1, cnt_: 2 }]),
      'record 1: unknown must-understand label "cnt_" (labels ending in "_" must be understood) (RFC 8428 §4.4)',
    );
    assert.deepEqual(bothEncodings([{ n: 'a', v: 1, cnt: 2, l: 'x', bfoo: 3 }]), [{ name: 'a', time: now, value: 1 }]);
  });

  test(`strings longer than ${maxSenmlStringBytes} bytes of UTF-8`, () => {
    assert.equal(records(parseSenmlJson(JSON.stringify([{ n: 'a', vs: 'x'.repeat(maxSenmlStringBytes) }]), now)).length, 1);
    assert.equal(jsonError([{ n: 'a', vs: 'x'.repeat(maxSenmlStringBytes + 1) }]), `record 0: vs is longer than ${maxSenmlStringBytes} bytes`);
    // 32769 two-byte characters: fewer characters than the limit, more bytes
    assert.equal(jsonError([{ n: 'a', vs: 'é'.repeat(32769) }]), `record 0: vs is longer than ${maxSenmlStringBytes} bytes`);
    assert.equal(jsonError([{ n: 'a', v: 1, u: 'x'.repeat(maxSenmlStringBytes + 1) }]), `record 0: u is longer than ${maxSenmlStringBytes} bytes`);
    assert.equal(jsonError([{ n: 'a', vd: 'A'.repeat(maxSenmlStringBytes + 4) }]), `record 0: vd is longer than ${maxSenmlStringBytes} bytes`);
    assert.equal(
      error(parseSenmlCbor(toCbor([{ n: 'a', vd: 'A'.repeat(maxSenmlStringBytes + 4) }]), now)),
      `record 0: vd (8) is longer than ${maxSenmlStringBytes} bytes as base64url`,
    );
  });

  test('sums of base and regular fields that overflow', () => {
    assert.equal(jsonError([{ bt: 1e308, n: 'a', v: 1, t: 1e308 }]), 'record 0: bt + t overflows');
    assert.equal(jsonError([{ bv: 1e308, n: 'a', v: 1e308 }]), 'record 0: bv + v overflows');
    assert.equal(jsonError([{ bs: 1e308, n: 'a', s: 1e308 }]), 'record 0: bs + s overflows');
  });

  test('the first failing record is the one named', () => {
    assert.equal(jsonError([{ n: 'a', v: 1 }, { n: 'b', v: 2 }, { n: 'c' }, { n: '' }]), 'record 2: needs a value (v, vs, vb or vd) or a sum (s) (RFC 8428 §4.2)');
  });
});
