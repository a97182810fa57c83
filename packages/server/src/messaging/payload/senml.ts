/**
 * SenML (RFC 8428) packs in JSON and CBOR, resolved (§4.6) into one record per measurement: base
 * fields applied, names concatenated, relative times turned into absolute Unix seconds.
 * Pure: no I/O, never throws; every failure comes back as `{ ok: false, error }` naming the record
 * and the rule. Both encodings feed one resolver in a single pass over the records.
 */
import { Decoder } from 'cbor-x';
import { defaultMaxPayloadDepth, isPlainObject, jsonKind, parseJsonText } from './json.js';

/** A resolved SenML record (RFC 8428 §4.6): no base fields, no relative time. */
export interface SenmlRecord {
  /** Base name + name. */
  name: string;
  /** Unit, or the base unit when the record has none. */
  unit?: string;
  /** Absolute time, Unix seconds (fractional). */
  time: number;
  /** Seconds before the sensor will send an updated reading. */
  updateTime?: number;
  /** Base value + value. */
  value?: number;
  stringValue?: string;
  boolValue?: boolean;
  /** base64url without padding (RFC 4648 §5), in both encodings. */
  dataValue?: string;
  /** Base sum + sum. */
  sum?: number;
}

export type SenmlResult =
  | {
      ok: true;
      records: SenmlRecord[];
      /** The pack's SenML version (bver, default 10). Resolved records of a version other than 10 must carry it (§4.6). */
      version: number;
    }
  | { ok: false; error: string };

/** Most records one pack may hold. */
export const maxSenmlRecords = 10_000;
/** Longest text field (bn, bu, n, u, vs, vd as base64url text), in UTF-8 bytes. */
export const maxSenmlStringBytes = 64 * 1024;
/** Longest resolved name (base name + name), in characters (all ASCII once valid). */
export const maxSenmlNameLength = 1024;
/** Highest bver we accept: RFC 8428 is version 10; lower numbers are earlier drafts of the same format. */
export const maxSenmlVersion = 10;
/** bver when no record carries one. RFC 8428 §4.1 */
export const defaultSenmlVersion = 10;
/** Resolved times below this are relative to the receive time. 2**28 s, RFC 8428 §4.5.3 */
export const senmlRelativeTimeLimit = 2 ** 28;

/** In a `u` regular expression a surrogate pair is one code point: only a lone surrogate matches. */
const loneSurrogate = /\p{Cs}/u;

/** Arrays stay arrays, maps become Maps so integer labels keep their type (`2` is not `"2"`). */
const cbor = new Decoder({ mapsAsObjects: false, useRecords: false });

/** @param maxDepth deepest nesting of arrays and objects accepted (`Infinity`: bounded when it came in). */
export function parseSenmlJson(bytes: Buffer | string, receivedAt: number, maxDepth = defaultMaxPayloadDepth): SenmlResult {
  const parsed = parseJsonText(bytes, maxDepth);
  if (!parsed.ok) return parsed;
  return resolvePack(parsed.value, receivedAt, 'json');
}

/**
 * Whether a CBOR item nests arrays, maps and tags deeper than `maxDepth`, walked over its heads
 * without recursion (RFC 8949 §3): cbor-x decodes recursively and would run out of stack first.
 * Malformed or truncated input answers false: the decoder reports it.
 */
export function cborNestedDeeperThan(bytes: Uint8Array, maxDepth: number): boolean {
  // items still to come in each open array, map (two per entry) or tag (one); -1: indefinite length, until a break
  const open: number[] = [];
  const end = bytes.length;
  let pos = 0;
  /** One item is complete: count it off its container, and close the containers it completes. */
  const done = () => {
    while (open.length > 0) {
      const left = open[open.length - 1]!;
      if (left < 0) return;
      if (left > 1) return void (open[open.length - 1] = left - 1);
      open.pop();
    }
  };
  while (pos < end) {
    const head = bytes[pos++]!;
    if (head === 0xff) {
      // RFC 8949 §3.2.1: the break that ends an indefinite-length item
      if (open.length === 0 || open[open.length - 1]! >= 0) return false;
      open.pop();
      done();
      continue;
    }
    const major = head >> 5;
    const info = head & 0x1f;
    let arg = info;
    if (info === 31) arg = -1;
    else if (info >= 28) return false;
    else if (info >= 24) {
      const size = 1 << (info - 24); // 1, 2, 4 or 8 bytes of argument
      if (pos + size > end) return false;
      arg = 0;
      for (let k = 0; k < size; k++) arg = arg * 256 + bytes[pos + k]!;
      pos += size;
    }
    if (major === 2 || major === 3) {
      if (arg < 0) open.push(-1); // chunks until a break
      else {
        pos += arg;
        done();
      }
    } else if (major === 4 || major === 5 || major === 6) {
      const items = major === 6 ? 1 : arg < 0 ? -1 : major === 5 ? arg * 2 : arg;
      if (items === 0) done();
      else {
        open.push(items);
        if (open.length > maxDepth) return true;
      }
    } else done();
  }
  return false;
}

export function parseSenmlCbor(bytes: Buffer, receivedAt: number, maxDepth = defaultMaxPayloadDepth): SenmlResult {
  if (cborNestedDeeperThan(bytes, maxDepth)) return { ok: false, error: `the payload is nested deeper than ${maxDepth} levels of arrays, maps and tags` };
  let value: unknown;
  try {
    value = cbor.decode(bytes);
  } catch (e) {
    // A stack overflow is how a deeply nested item shows; anything else is cbor-x's own message.
    const why = e instanceof RangeError && /call stack/i.test(e.message) ? 'nested too deeply' : e instanceof Error ? e.message : String(e);
    return { ok: false, error: `payload is not valid CBOR: ${why}` };
  }
  return resolveSenmlCbor(value, receivedAt);
}

/**
 * Resolves an already decoded CBOR pack. Records may be Maps (what our decoder yields) or plain
 * objects (what a decoder with `mapsAsObjects` yields: integer keys have become strings like "-2").
 */
export function resolveSenmlCbor(value: unknown, receivedAt: number): SenmlResult {
  return resolvePack(value, receivedAt, 'cbor');
}

type Encoding = 'json' | 'cbor';

/** JSON labels, RFC 8428 §4.3 Table 1 (§5 Table 2). */
type Label = 'bver' | 'bn' | 'bt' | 'bu' | 'bv' | 'bs' | 'n' | 'u' | 'v' | 'vs' | 'vb' | 's' | 't' | 'ut' | 'vd';

/** CBOR integer labels -6..8, indexed by label + 6. RFC 8428 §6 Table 4 */
const cborLabels: readonly Label[] = ['bs', 'bv', 'bu', 'bt', 'bn', 'bver', 'n', 'u', 'v', 'vs', 'vb', 's', 't', 'ut', 'vd'];
const cborLabelOf: Record<Label, number> = {
  bs: -6, bv: -5, bu: -4, bt: -3, bn: -2, bver: -1, n: 0, u: 1, v: 2, vs: 3, vb: 4, s: 5, t: 6, ut: 7, vd: 8,
};

function isLabel(key: string): key is Label {
  return Object.prototype.hasOwnProperty.call(cborLabelOf, key);
}

const section = 'RFC 8428';
// RFC 8428 §4.5.1: letters, digits, "-", ":", ".", "/", "_", and it starts with a letter or digit.
const validName = /^[A-Za-z0-9][-A-Za-z0-9:./_]*$/;
// RFC 8428 §4.3 Table 1 note: base64url (RFC 4648 §5), padding omitted.
const validBase64url = /^[A-Za-z0-9_-]*$/;

function resolvePack(pack: unknown, receivedAt: number, enc: Encoding): SenmlResult {
  // RFC 8428 §4 and §11 (CDDL `SenML-Pack = [1* record]`): one array of one or more records.
  if (!Array.isArray(pack)) {
    return { ok: false, error: `a SenML pack must be an array of records (${section} §4), got ${kindOf(pack, enc)}` };
  }
  if (pack.length === 0) return { ok: false, error: `a SenML pack must hold at least one record (${section} §11), got an empty array` };
  if (pack.length > maxSenmlRecords) {
    return { ok: false, error: `a SenML pack may hold at most ${maxSenmlRecords} records, got ${pack.length}` };
  }
  const r = new Resolver(receivedAt, enc);
  for (let i = 0; i < pack.length; i++) {
    const error = r.record(pack[i]);
    if (error !== undefined) return { ok: false, error: `record ${i}: ${error}` };
  }
  return { ok: true, records: r.records, version: r.version ?? defaultSenmlVersion };
}

/**
 * Walks a pack once. Base fields live on the resolver and carry forward to the following records
 * until a record sets them again (RFC 8428 §4: "up to, but not including, the next Record that has
 * that same base field"); regular fields are reset for every record.
 */
class Resolver {
  readonly records: SenmlRecord[] = [];
  /** The pack's version, fixed by its first record. */
  version: number | undefined;
  private versionFromDefault = false;

  // Base fields in effect (RFC 8428 §4.1).
  private bn = '';
  private bt = 0;
  private bu: string | undefined;
  private bv = 0;
  private bs: number | undefined;

  // This record's regular fields (RFC 8428 §4.2).
  private bver: number | undefined;
  private n: string | undefined;
  private u: string | undefined;
  private v: number | undefined;
  private vs: string | undefined;
  private vb: boolean | undefined;
  private vd: string | undefined;
  private s: number | undefined;
  private t: number | undefined;
  private ut: number | undefined;

  constructor(
    private readonly receivedAt: number,
    private readonly enc: Encoding,
  ) {}

  /** Reads one record's fields, then resolves it. Returns an error text, or undefined when the record was added. */
  record(raw: unknown): string | undefined {
    this.bver = this.n = this.u = this.v = this.vs = this.vb = this.vd = this.s = this.t = this.ut = undefined;
    const error = raw instanceof Map ? this.readMap(raw) : isPlainObject(raw) ? this.readObject(raw) : `must be ${this.enc === 'cbor' ? 'a map' : 'an object'}, got ${kindOf(raw, this.enc)}`;
    return error ?? this.resolve();
  }

  /** CBOR records: integer labels (RFC 8428 §6); text keys are extension labels. */
  private readMap(map: Map<unknown, unknown>): string | undefined {
    for (const [key, value] of map) {
      let error: string | undefined;
      if (typeof key === 'number') {
        // RFC 8428 §6: the integer table is conclusive, so an integer outside it is no
        // must-understand label; ignore it like any other unknown label (§4.4).
        const label = Number.isInteger(key) ? cborLabels[key + 6] : undefined;
        if (label !== undefined) error = this.field(label, value);
      } else if (typeof key === 'string') error = this.extension(key);
      if (error !== undefined) return error;
    }
    return undefined;
  }

  private readObject(obj: Record<string, unknown>): string | undefined {
    for (const key in obj) {
      let error: string | undefined;
      if (this.enc === 'json') error = isLabel(key) ? this.field(key, obj[key]) : this.extension(key);
      else {
        // A CBOR map decoded as an object: its integer keys arrive as canonical integer strings.
        const label = /^(?:0|-?[1-9][0-9]*)$/.test(key) ? cborLabels[Number(key) + 6] : undefined;
        error = label !== undefined ? this.field(label, obj[key]) : /^-?[0-9]/.test(key) ? undefined : this.extension(key);
      }
      if (error !== undefined) return error;
    }
    return undefined;
  }

  /** A label that is not one of RFC 8428's own (a text key in CBOR). */
  private extension(key: string): string | undefined {
    if (this.enc === 'cbor' && isLabel(key)) {
      // RFC 8428 §6: CBOR uses the integer labels of Table 4; a text "v" would be an unknown extension
      // whose value we would silently drop, so say what to send instead.
      return `text label "${key}" in a CBOR record; SenML CBOR uses integer labels (${key} is ${cborLabelOf[key]}) (${section} §6)`;
    }
    // RFC 8428 §4.4: labels ending in "_" must be understood; any other unknown label is ignored.
    if (key.endsWith('_')) return `unknown must-understand label ${quote(key)} (labels ending in "_" must be understood) (${section} §4.4)`;
    return undefined;
  }

  private field(label: Label, value: unknown): string | undefined {
    switch (label) {
      case 'bn': {
        const e = this.text(label, value);
        if (e !== undefined) return e;
        this.bn = value as string;
        return undefined;
      }
      case 'bu': {
        const e = this.text(label, value);
        if (e !== undefined) return e;
        this.bu = value as string;
        return undefined;
      }
      case 'n': {
        const e = this.text(label, value);
        if (e !== undefined) return e;
        this.n = value as string;
        return undefined;
      }
      case 'u': {
        const e = this.text(label, value);
        if (e !== undefined) return e;
        this.u = value as string;
        return undefined;
      }
      case 'vs': {
        const e = this.text(label, value);
        if (e !== undefined) return e;
        this.vs = value as string;
        return undefined;
      }
      case 'vb':
        // RFC 8428 §4.3 Table 1: Boolean Value is a boolean.
        if (typeof value !== 'boolean') return `${this.shown(label)} must be a boolean, got ${kindOf(value, this.enc)} (${section} §4.3)`;
        this.vb = value;
        return undefined;
      case 'vd':
        return this.data(value);
      case 'bver':
        return this.readVersion(value);
      default: {
        // bt, bv, bs, v, s, t, ut: numbers (RFC 8428 §4.3 Table 1). CBOR may carry integers beyond
        // 2**53 as bigint and decimal fractions (§6); both become doubles here.
        const x = typeof value === 'number' ? value : typeof value === 'bigint' ? Number(value) : NaN;
        if (!Number.isFinite(x)) {
          const what = typeof value === 'number' || typeof value === 'bigint' ? String(value) : kindOf(value, this.enc);
          return `${this.shown(label)} must be a finite number, got ${what} (${section} §4.3)`;
        }
        this[label] = x;
        return undefined;
      }
    }
  }

  /** Text fields: strings (RFC 8428 §4.3 Table 1), at most maxSenmlStringBytes. */
  private text(label: Label, value: unknown): string | undefined {
    if (typeof value !== 'string') return `${this.shown(label)} must be a string, got ${kindOf(value, this.enc)} (${section} §4.3)`;
    if (tooLong(value)) return `${this.shown(label)} is longer than ${maxSenmlStringBytes} bytes`;
    // PostgreSQL's text refuses U+0000, and a lone surrogate is no text at all
    if (value.includes('\0')) return `${this.shown(label)} holds U+0000, which is not stored`;
    if (loneSurrogate.test(value)) return `${this.shown(label)} holds a lone surrogate`;
    return undefined;
  }

  /** Data Value: base64url text in JSON (§5), a byte string in CBOR (§6); stored as base64url either way. */
  private data(value: unknown): string | undefined {
    if (this.enc === 'cbor') {
      // RFC 8428 §6: "Octets in the Data Value are encoded using a definite length byte string".
      if (!(value instanceof Uint8Array)) return `${this.shown('vd')} must be a byte string, got ${kindOf(value, this.enc)} (${section} §6)`;
      const text = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64url');
      if (text.length > maxSenmlStringBytes) return `${this.shown('vd')} is longer than ${maxSenmlStringBytes} bytes as base64url`;
      this.vd = text;
      return undefined;
    }
    if (typeof value !== 'string') return `vd must be a base64url string, got ${kindOf(value, this.enc)} (${section} §5)`;
    if (value.length > maxSenmlStringBytes) return `vd is longer than ${maxSenmlStringBytes} bytes`;
    // RFC 8428 §5: "base64 encoded with a URL-safe alphabet ... with padding omitted"; a length of
    // 4k+1 characters encodes no whole byte.
    if (!validBase64url.test(value) || value.length % 4 === 1) {
      return `vd must be base64url without padding (A-Z a-z 0-9 - _) (${section} §5)`;
    }
    this.vd = value;
    return undefined;
  }

  private readVersion(value: unknown): string | undefined {
    // RFC 8428 §4.1: the version is a positive integer; §6: in CBOR only an unsigned integer.
    if (typeof value !== 'number' && typeof value !== 'bigint') {
      return `${this.shown('bver')} must be a positive integer, got ${kindOf(value, this.enc)} (${section} §4.1)`;
    }
    const x = Number(value);
    if (!Number.isInteger(x) || x < 1) return `${this.shown('bver')} must be a positive integer, got ${String(value)} (${section} §4.1)`;
    // RFC 8428 §4.4: a reader MUST NOT use a pack whose version is newer than it understands.
    if (x > maxSenmlVersion) {
      return `bver ${String(value)} is newer than this server understands (versions 1 to ${maxSenmlVersion} are accepted) (${section} §4.4)`;
    }
    this.bver = x;
    return undefined;
  }

  /** Applies the base fields in effect to this record and appends it. */
  private resolve(): string | undefined {
    // RFC 8428 §4.4: all records in a pack have the same version. The first record fixes it (its
    // bver, or the default 10); a later bver must repeat it.
    if (this.version === undefined) {
      this.version = this.bver ?? defaultSenmlVersion;
      this.versionFromDefault = this.bver === undefined;
    } else if (this.bver !== undefined && this.bver !== this.version) {
      const from = this.versionFromDefault ? `the default ${defaultSenmlVersion}, as record 0 has no bver` : 'set by record 0';
      return `bver ${this.bver} differs from the pack's version ${this.version} (${from}); all records of a pack must have the same version (${section} §4.4)`;
    }

    // RFC 8428 §4.5.1: name = base name + name, from the restricted character set.
    const name = this.n === undefined ? this.bn : this.bn + this.n;
    if (name.length === 0) return `no name: neither bn nor n is given (${section} §4.5.1)`;
    if (name.length > maxSenmlNameLength) return `name is longer than ${maxSenmlNameLength} characters`;
    if (!validName.test(name)) {
      return `name ${quote(name)} must start with a letter or digit and hold only letters, digits and - : . / _ (${section} §4.5.1)`;
    }

    // RFC 8428 §4.2: exactly one Value field, unless there is a Sum, which may stand alone.
    const values = (this.v !== undefined ? 1 : 0) + (this.vs !== undefined ? 1 : 0) + (this.vb !== undefined ? 1 : 0) + (this.vd !== undefined ? 1 : 0);
    if (values > 1) return `has ${this.present()}; a record holds at most one value field (${section} §4.2)`;
    // RFC 8428 §4.5.4: base sum + sum, a missing one counting as zero; only when neither is present
    // does the measurement have no sum. So a base sum in effect gives every record a sum.
    let sum: number | undefined;
    if (this.s !== undefined || this.bs !== undefined) {
      sum = (this.bs ?? 0) + (this.s ?? 0);
      if (!Number.isFinite(sum)) return `bs + s overflows`;
    }
    if (values === 0 && sum === undefined) {
      return `needs a value (${this.shown('v')}, ${this.shown('vs')}, ${this.shown('vb')} or ${this.shown('vd')}) or a sum (${this.shown('s')}) (${section} §4.2)`;
    }

    // RFC 8428 §4.5.3: base time + time, a missing one counting as zero; below 2**28 the result is
    // relative to "now", which for us is when the message was received.
    let time = this.t === undefined ? this.bt : this.bt + this.t;
    if (!Number.isFinite(time)) return `bt + t overflows`;
    if (time < senmlRelativeTimeLimit) time = this.receivedAt + time;

    const rec: SenmlRecord = { name, time };
    // RFC 8428 §4.5.2: no unit → the base unit.
    const unit = this.u ?? this.bu;
    if (unit !== undefined) rec.unit = unit;
    if (this.ut !== undefined) rec.updateTime = this.ut;
    if (this.v !== undefined) {
      // RFC 8428 §4.1: the base value is added to the value found in the record (only numeric values).
      const value = this.bv === 0 ? this.v : this.bv + this.v;
      if (!Number.isFinite(value)) return `bv + v overflows`;
      rec.value = value;
    } else if (this.vs !== undefined) rec.stringValue = this.vs;
    else if (this.vb !== undefined) rec.boolValue = this.vb;
    else if (this.vd !== undefined) rec.dataValue = this.vd;
    if (sum !== undefined) rec.sum = sum;
    this.records.push(rec);
    return undefined;
  }

  private present(): string {
    const out: string[] = [];
    if (this.v !== undefined) out.push(this.shown('v'));
    if (this.vs !== undefined) out.push(this.shown('vs'));
    if (this.vb !== undefined) out.push(this.shown('vb'));
    if (this.vd !== undefined) out.push(this.shown('vd'));
    return out.join(', ');
  }

  /** A label as the sender wrote it: `v` in JSON, `v (2)` in CBOR. */
  private shown(label: Label): string {
    return this.enc === 'cbor' ? `${label} (${cborLabelOf[label]})` : label;
  }
}

/** Whether a text is longer than maxSenmlStringBytes in UTF-8, without encoding it when the length alone decides. */
function tooLong(s: string): boolean {
  // A UTF-16 code unit takes 1 to 3 UTF-8 bytes (a surrogate pair takes 4 for 2 units).
  if (s.length * 3 <= maxSenmlStringBytes) return false;
  return s.length > maxSenmlStringBytes || Buffer.byteLength(s, 'utf8') > maxSenmlStringBytes;
}

function quote(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
}

function kindOf(v: unknown, enc: Encoding): string {
  if (enc === 'json') return jsonKind(v);
  if (v instanceof Map) return 'a map';
  if (v instanceof Uint8Array) return 'a byte string';
  if (typeof v === 'string') return 'a text string';
  if (v === undefined) return 'undefined';
  return jsonKind(v);
}
