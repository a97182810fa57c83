// test-database: none
/**
 * Randomised robustness: thousands of random, truncated, mutated and hostile payloads. The parsers
 * must never throw and must always answer ok (with well-formed records) or an error text; JSON and
 * CBOR forms of the same pack must resolve alike. Seeded, so a failure can be replayed:
 * FLEETWIRE_FUZZ_SEED=<seed> node scripts/test.mjs --db sqlite src/messaging/payload
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Encoder } from 'cbor-x';
import { seededRandom } from '../../../test/helpers/random.js';
import { normalisePayload, parseJsonMessage, parseSenmlCbor, parseSenmlJson, type JsonMessageResult, type NormalisedPayload, type SenmlResult } from './index.js';

const cases = 4000;
const now = 1_700_000_000.125;
const seed = process.env.FLEETWIRE_FUZZ_SEED ? Number(process.env.FLEETWIRE_FUZZ_SEED) : Math.floor(Math.random() * 2 ** 32);

const rand = seededRandom(seed);
const int = (n: number): number => Math.floor(rand() * n);
const chance = (p: number): boolean => rand() < p;
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;

const cborLabel: Record<string, number> = { bver: -1, bn: -2, bt: -3, bu: -4, bv: -5, bs: -6, n: 0, u: 1, v: 2, vs: 3, vb: 4, s: 5, t: 6, ut: 7, vd: 8 };
const cborEncoder = new Encoder({ mapsAsObjects: false, useRecords: false });
function toCbor(pack: unknown): Buffer {
  const convert = (r: unknown): unknown =>
    r !== null && typeof r === 'object' && !Array.isArray(r)
      ? new Map(Object.entries(r).map(([k, v]) => [cborLabel[k] ?? k, k === 'vd' && typeof v === 'string' ? Buffer.from(v, 'base64url') : v]))
      : r;
  return cborEncoder.encode(Array.isArray(pack) ? pack.map(convert) : convert(pack));
}

// Value pools: edges of the rules, plus what hostile senders like to try.
const numbers = [0, 1, -1, 1.5, -5, 10, 0.1, 2 ** 28, 2 ** 28 - 1, 1.7e9, 1e308, -1e308, 2 ** 53 + 2, 1e20, 2 ** 64, 5e-324, 11, 1024];
const names = ['', 'urn:dev:ow:10e2073a01080063', 'urn:dev:', 'dev-1/', 'a', 'temp', '_bad', 'x y', 'é', 'a'.repeat(1025), '0', ':x'];
const texts = ['', 'Cel', 'NaN', 'Infinity', '-Infinity', '1e400', '__proto__', 'constructor', 'null', '\u0000', 'Machine Room', '%RH', '😀'];
const hostileTexts = [...texts, '\ud800', 'x'.repeat(70_000)];
const labels: readonly string[] = ['bn', 'bt', 'bu', 'bv', 'bs', 'bver', 'n', 'u', 'v', 'vs', 'vb', 'vd', 's', 't', 'ut'];

function randomNumber(): number {
  if (chance(0.5)) return pick(numbers);
  return chance(0.5) ? (rand() - 0.5) * 10 ** int(12) : int(2 ** 31) - 2 ** 30;
}

function base64url(): string {
  const bytes = Buffer.alloc(int(12));
  for (let i = 0; i < bytes.length; i++) bytes[i] = int(256);
  return bytes.toString('base64url');
}

/** Any JSON value, with SenML labels as keys more often than not. */
function randomJson(depth: number): unknown {
  switch (int(depth > 4 ? 4 : 7)) {
    case 0:
      return null;
    case 1:
      return chance(0.5);
    case 2:
      return randomNumber();
    case 3:
      return pick(hostileTexts);
    case 4:
    case 5:
      return Array.from({ length: int(5) }, () => randomJson(depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = int(6); i > 0; i--) o[chance(0.8) ? pick(labels) : pick(['foo', 'x_', '__proto__', 'l', 'b'])] = randomJson(depth + 1);
      return o;
    }
  }
}

const goodNames = ['urn:dev:ow:10e2073a01080063', 'urn:dev:', 'dev-1/', 'a', 'temp', '0', 'x.y_z'];
const valueLabels = ['v', 'v', 'vs', 'vb', 'vd', 's'];

/**
 * A record that is mostly well formed (one value field, a valid name), so that many packs get past
 * the checks and reach the resolver, with now and then a rule broken or a type wrong.
 */
function plausibleRecord(first: boolean): Record<string, unknown> {
  const typed: Record<string, () => unknown> = {
    bn: () => (chance(0.9) ? pick(goodNames) : pick(names)),
    n: () => (chance(0.9) ? pick(goodNames) : pick(names)),
    bu: () => pick(texts),
    u: () => pick(texts),
    vs: () => pick(texts),
    bt: randomNumber,
    t: randomNumber,
    bv: randomNumber,
    v: randomNumber,
    bs: randomNumber,
    s: randomNumber,
    ut: randomNumber,
    vb: () => chance(0.5),
    vd: base64url,
    bver: () => (chance(0.8) ? 10 : pick([1, 5, 11, 0, -1, 1.5])),
  };
  const chosen = new Set<string>([chance(0.7) ? 'n' : 'bn', pick(valueLabels)]);
  if (first && chance(0.5)) chosen.add('bn');
  if (chance(0.1)) chosen.add(pick(valueLabels)); // sometimes two value fields
  if (chance(0.1)) chosen.delete('n'); // sometimes no name of its own
  for (const label of ['bt', 't', 'bu', 'u', 'bv', 'bs', 'ut', 'bver']) if (chance(0.2)) chosen.add(label);
  const r: Record<string, unknown> = {};
  for (const label of chosen) {
    // the wrong type now and then (never a string for vd: its JSON and CBOR forms would differ)
    r[label] = chance(0.03) ? pick<unknown>([null, true, 3, [1], {}, ...(label === 'vd' ? [] : ['x'])]) : typed[label]!();
  }
  if (chance(0.05)) r[pick(['foo', 'ext_', 'bfoo'])] = 1;
  return r;
}

function plausiblePack(): Record<string, unknown>[] {
  return Array.from({ length: 1 + int(6) }, (_, i) => plausibleRecord(i === 0));
}

function mutate(bytes: Buffer): Buffer {
  const out = Buffer.from(bytes);
  for (let i = 1 + int(4); i > 0 && out.length > 0; i--) {
    const at = int(out.length);
    switch (int(3)) {
      case 0:
        out[at] = int(256);
        break;
      case 1:
        out[at] = out[at]! ^ (1 << int(8));
        break;
      default:
        out[at] = pick([...'{}[]",:0e-9'].map((c) => c.charCodeAt(0)).concat([0x00, 0x1b, 0x5f, 0x7f, 0x9f, 0xbf, 0xff, 0xf9, 0xfb]));
    }
  }
  return chance(0.3) ? out.subarray(0, int(out.length + 1)) : out;
}

function randomBytes(): Buffer {
  const b = Buffer.alloc(int(chance(0.9) ? 64 : 4096));
  for (let i = 0; i < b.length; i++) b[i] = int(256);
  return b;
}

const validName = /^[A-Za-z0-9][-A-Za-z0-9:./_]*$/;

function checkSenml(r: SenmlResult): void {
  assert.equal(typeof r, 'object');
  if (!r.ok) {
    assert.equal(r.ok, false);
    assert.ok(typeof r.error === 'string' && r.error.length > 0, 'an error has a text');
    return;
  }
  assert.ok(Array.isArray(r.records) && r.records.length > 0, 'ok packs have records');
  assert.ok(Number.isInteger(r.version) && r.version >= 1 && r.version <= 10, 'version 1..10');
  for (const rec of r.records) {
    assert.ok(validName.test(rec.name) && rec.name.length <= 1024, `name ${rec.name}`);
    assert.ok(Number.isFinite(rec.time), 'finite time');
    const values = [rec.value, rec.stringValue, rec.boolValue, rec.dataValue].filter((v) => v !== undefined).length;
    assert.ok(values <= 1, 'at most one value');
    assert.ok(values === 1 || rec.sum !== undefined, 'a value or a sum');
    for (const x of [rec.value, rec.sum, rec.updateTime]) if (x !== undefined) assert.ok(Number.isFinite(x), 'finite numbers');
  }
}

function checkJson(r: JsonMessageResult): void {
  if (!r.ok) {
    assert.ok(typeof r.error === 'string' && r.error.length > 0, 'an error has a text');
    return;
  }
  assert.ok(r.documents.length > 0 && r.documents.length === r.numbers.length, 'one numbers object per document');
  for (const n of r.numbers) for (const v of Object.values(n)) assert.ok(Number.isFinite(v), 'finite numbers');
}

function checkNormalised(r: NormalisedPayload): void {
  assert.ok(['senml', 'json', 'opaque', 'invalid'].includes(r.kind), `kind ${r.kind}`);
  if (r.kind === 'invalid') assert.ok(r.error.length > 0);
}

/** Runs every parser that takes these bytes and checks its answer. */
function everyParser(bytes: Buffer): void {
  checkSenml(parseSenmlJson(bytes, now));
  checkSenml(parseSenmlCbor(bytes, now));
  checkJson(parseJsonMessage(bytes));
  for (const ct of ['application/senml+json', 'application/senml+cbor', 'application/json', 'text/plain']) checkNormalised(normalisePayload(ct, bytes, now));
}

const recordPrefix = (error: string): string => /^record \d+:/.exec(error)?.[0] ?? 'pack';

/** JSON and CBOR forms of one pack resolve to the same records, or fail at the same record. */
function sameInBothEncodings(pack: Record<string, unknown>[]): void {
  const j = parseSenmlJson(JSON.stringify(pack), now);
  const c = parseSenmlCbor(toCbor(pack), now);
  checkSenml(j);
  checkSenml(c);
  if (j.ok && c.ok) {
    assert.deepEqual(c.records, j.records);
    assert.equal(c.version, j.version);
  } else if (!j.ok && !c.ok) assert.equal(recordPrefix(c.error), recordPrefix(j.error), `${j.error} / ${c.error}`);
  else assert.fail(`JSON ${j.ok ? 'ok' : j.error} but CBOR ${c.ok ? 'ok' : c.error}`);
}

test('parsers never throw and always answer ok or an error, on random and hostile input', (t) => {
  t.diagnostic(`seed ${seed}`);
  let accepted = 0;
  for (let i = 0; i < cases; i++) {
    let input: Buffer | undefined;
    try {
      switch (i % 8) {
        case 0: // random bytes
          everyParser((input = randomBytes()));
          break;
        case 1: // a valid-looking JSON pack, cut short or mutated
          everyParser((input = mutate(Buffer.from(JSON.stringify(plausiblePack())))));
          break;
        case 2: // a valid-looking CBOR pack, cut short or mutated
          everyParser((input = mutate(toCbor(plausiblePack()))));
          break;
        case 3: {
          // any JSON value, as JSON text and as CBOR
          const value = randomJson(0);
          everyParser((input = Buffer.from(JSON.stringify(value) ?? 'null')));
          everyParser((input = toCbor(value)));
          break;
        }
        case 4: {
          // deep nesting (100 000 levels are covered once in senml.test.ts; each deep parse costs milliseconds)
          const depth = chance(0.9) ? 1 + int(2000) : 1 + int(30_000);
          input = Buffer.from('['.repeat(depth) + (chance(0.5) ? ']'.repeat(depth) : ''));
          checkSenml(parseSenmlJson(input, now));
          checkJson(parseJsonMessage(input));
          input = Buffer.concat([Buffer.alloc(depth, pick([0x81, 0x9f, 0xa1])), Buffer.from([0x00])]);
          checkSenml(parseSenmlCbor(input, now));
          break;
        }
        case 5: {
          // hostile numbers and strings in otherwise valid records
          const rec = { n: 'a', [pick(labels)]: pick<unknown>([...hostileTexts, 1e308, -1e308, 2 ** 64, 5e-324]) };
          everyParser((input = Buffer.from(JSON.stringify([rec]).replace(/1e\+308/g, pick(['1e400', '-1e400', '1e308'])))));
          everyParser((input = toCbor([rec])));
          everyParser((input = toCbor([{ n: 'a', v: pick([NaN, Infinity, -Infinity, -0, 2n ** 70n, -(2n ** 70n)]) }])));
          break;
        }
        default: {
          // well-formed packs: both encodings must agree
          const pack = plausiblePack();
          input = Buffer.from(JSON.stringify(pack));
          sameInBothEncodings(pack);
          if (parseSenmlJson(input, now).ok) accepted++;
        }
      }
    } catch (e) {
      const shown = input ? `${input.subarray(0, 200).toString('hex')}${input.length > 200 ? '…' : ''} (${input.length} bytes)` : '';
      assert.fail(`seed ${seed} (replay with FLEETWIRE_FUZZ_SEED=${seed}), case ${i}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\ninput: ${shown}`);
    }
  }
  t.diagnostic(`${accepted} of ${Math.ceil((cases * 3) / 8)} generated well-formed packs were accepted`);
  // the generator must also reach the accepting paths, or the agreement check proves little
  assert.ok(accepted > cases / 8 / 5, `seed ${seed}: only ${accepted} well-formed packs were accepted`);
  // and the CBOR decoder still works after all those failures
  assert.ok(parseSenmlCbor(toCbor([{ n: 'a', v: 1 }]), now).ok, `seed ${seed}: the decoder recovers`);
});
