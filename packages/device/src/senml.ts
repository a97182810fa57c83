/**
 * SenML records (RFC 8428) as a device writes them, and the checks the platform would make, so
 * that a bad pack fails in the device program with a clear message instead of as a refused PUBLISH.
 */
import { SenmlError } from './errors.js';

/** One SenML record in its JSON form (RFC 8428 §4, §5): base fields, regular fields, a value. */
export interface SenmlRecord {
  /** Base name: prefixed to the names of this record and the following ones. */
  bn?: string;
  /** Base time, Unix seconds (or relative to now when below 2**28). */
  bt?: number;
  /** Base unit. */
  bu?: string;
  /** Base value, added to `v`. */
  bv?: number;
  /** Base sum, added to `s`. */
  bs?: number;
  /** SenML version (10 for RFC 8428). */
  bver?: number;
  /** Name, after the base name. */
  n?: string;
  /** Unit (RFC 8428 §12.1), e.g. `Cel`, `%RH`. */
  u?: string;
  /** Numeric value. */
  v?: number;
  /** String value. */
  vs?: string;
  /** Boolean value. */
  vb?: boolean;
  /** Data value: base64url without padding. */
  vd?: string;
  /** Sum. */
  s?: number;
  /** Time, Unix seconds; below 2**28, seconds relative to now (negative: in the past). */
  t?: number;
  /** Update time: seconds before the next reading. */
  ut?: number;
  /** Extension labels (RFC 8428 §4.4); a label ending in `_` must be understood, and is refused. */
  [label: string]: unknown;
}

export type SenmlPack = SenmlRecord[];

export const senmlContentType = 'application/senml+json';

/** Newest SenML version; RFC 8428 is 10, and so is the default (§4.1). */
const senmlVersion = 10;
/** RFC 8428 §4.5.1: letters, digits, `-:./_`, starting with a letter or digit. */
const validName = /^[A-Za-z0-9][-A-Za-z0-9:./_]*$/;
/** RFC 8428 §5: base64url, padding omitted. */
const validBase64url = /^[A-Za-z0-9_-]*$/;

const textLabels = new Set(['bn', 'bu', 'n', 'u', 'vs']);
const numberLabels = new Set(['bt', 'bv', 'bs', 'v', 's', 't', 'ut']);

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  return `a ${typeof v}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * Checks a pack as the platform will: an array of one or more records, each label of the right
 * type, every resolved name (base name + name) valid, one value (or a sum) per record, one version
 * for the pack. Throws a `SenmlError` naming the record and the rule; returns the pack otherwise.
 */
export function validateSenml(pack: unknown): SenmlPack {
  // RFC 8428 §4, §11: a pack is an array of one or more records
  if (!Array.isArray(pack)) throw new SenmlError(undefined, `a pack must be an array of records, got ${kind(pack)}`);
  if (pack.length === 0) throw new SenmlError(undefined, 'a pack must hold at least one record');
  let baseName = '';
  let version: number | undefined;
  pack.forEach((record: unknown, i) => {
    if (!isPlainObject(record)) throw new SenmlError(i, `a record must be an object, got ${kind(record)}`);
    for (const [label, value] of Object.entries(record)) {
      if (value === undefined) continue; // JSON.stringify leaves it out
      if (textLabels.has(label) && typeof value !== 'string') throw new SenmlError(i, `${label} must be a string, got ${kind(value)}`);
      if (numberLabels.has(label) && (typeof value !== 'number' || !Number.isFinite(value))) throw new SenmlError(i, `${label} must be a finite number, got ${kind(value)}`);
      if (label === 'vb' && typeof value !== 'boolean') throw new SenmlError(i, `vb must be a boolean, got ${kind(value)}`);
      if (label === 'vd' && (typeof value !== 'string' || !validBase64url.test(value) || value.length % 4 === 1)) {
        throw new SenmlError(i, 'vd must be base64url without padding (A-Z a-z 0-9 - _)');
      }
      // RFC 8428 §4.4: labels ending in "_" must be understood, and the platform understands none
      if (label.endsWith('_')) throw new SenmlError(i, `unknown must-understand label ${JSON.stringify(label)}`);
    }
    const r = record as SenmlRecord;
    if (r.bver !== undefined) {
      if (typeof r.bver !== 'number' || !Number.isInteger(r.bver) || r.bver < 1 || r.bver > senmlVersion) {
        throw new SenmlError(i, `bver must be an integer from 1 to ${senmlVersion}, got ${JSON.stringify(r.bver)}`);
      }
    }
    // RFC 8428 §4.4: one version per pack, fixed by the first record (10 when it has none)
    const recordVersion = r.bver ?? (i === 0 ? senmlVersion : version);
    if (version === undefined) version = recordVersion;
    else if (recordVersion !== version) throw new SenmlError(i, `bver ${recordVersion} differs from the pack's version ${version}`);

    if (r.bn !== undefined) baseName = r.bn;
    // RFC 8428 §4.5.1: the resolved name
    const name = baseName + (r.n ?? '');
    if (name.length === 0) throw new SenmlError(i, 'no name: neither bn (in effect) nor n is given');
    if (!validName.test(name)) throw new SenmlError(i, `name ${JSON.stringify(name)} must start with a letter or digit and hold only letters, digits and - : . / _`);

    // RFC 8428 §4.2: at most one value; a record without one needs a sum
    const values = ['v', 'vs', 'vb', 'vd'].filter((l) => r[l] !== undefined);
    if (values.length > 1) throw new SenmlError(i, `has ${values.join(', ')}: a record holds at most one value`);
    if (values.length === 0 && r.s === undefined && !packHasBaseSum(pack, i)) throw new SenmlError(i, 'needs a value (v, vs, vb or vd) or a sum (s)');
  });
  return pack as SenmlPack;
}

/** Whether a base sum is in effect at record `i` (RFC 8428 §4.5.4: it gives every record a sum). */
function packHasBaseSum(pack: unknown[], i: number): boolean {
  for (let k = i; k >= 0; k--) if ((pack[k] as SenmlRecord).bs !== undefined) return true;
  return false;
}
