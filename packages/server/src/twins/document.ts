/**
 * A twin's state as plain JSON, and what changes it: JSON merge patches (RFC 7386), the delta
 * between what is desired and what is reported, a timestamp per leaf, and the desired values a
 * device declared it cannot apply. Pure functions over values: no I/O, no clock of their own.
 */

export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

/** A section's leaf timestamps: the same shape as the section, each leaf the time it last changed (ms since the epoch). */
export type Stamps = { [key: string]: number | Stamps };

/** A desired value the device declared it cannot apply, by JSON pointer (RFC 6901) into `desired`. */
export interface Rejection {
  reason: string;
  /** The desired value it was refused for: a new desired value there asks again. */
  value: Json;
  /** The twin version at which the device refused it. */
  version: number;
  at: number;
}

export type Rejections = Record<string, Rejection>;

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** RFC 7386 §2: the patch applied to the target, as a new value; `null` in the patch removes a member. */
export function mergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return patch;
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

/** The patch with every `null` member removed, at every level: what a merge adds to an empty target. */
function withoutNulls(value: Json): Json {
  if (!isObject(value)) return value;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(value)) if (v !== null) out[k] = withoutNulls(v);
  return out;
}

/** The stamps of a value just written: `at` on every leaf (an empty object is a leaf). */
function stampAll(value: Json, at: number): number | Stamps {
  if (!isObject(value) || Object.keys(value).length === 0) return at;
  const out: Stamps = {};
  for (const [k, v] of Object.entries(value)) out[k] = stampAll(v, at);
  return out;
}

/** The section's stamps after `patch` was merged at `at`: every leaf the patch wrote gets `at`, removed ones go. */
export function stampPatch(stamps: Stamps, patch: JsonObject, at: number): Stamps {
  const out: Stamps = { ...stamps };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete out[key];
      continue;
    }
    const before = out[key];
    out[key] = isObject(value) && Object.keys(value).length > 0 ? stampPatch(typeof before === 'object' ? before : {}, value, at) : stampAll(withoutNulls(value), at);
  }
  return out;
}

/** Deep equality of JSON values (object member order aside). */
export function jsonEqual(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (a === null || b === null || a === undefined || b === undefined || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bs = b as Json[];
    return a.length === bs.length && a.every((v, i) => jsonEqual(v, bs[i]));
  }
  const ak = Object.keys(a);
  const bo = b as JsonObject;
  return ak.length === Object.keys(bo).length && ak.every((k) => k in bo && jsonEqual(a[k], bo[k]));
}

/** RFC 6901 §3: one reference token, escaped. */
function escapeToken(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** The reference tokens of a JSON pointer (RFC 6901 §4), or undefined when it is not one. */
export function pointerTokens(pointer: string): string[] | undefined {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) return undefined;
  const tokens = pointer.slice(1).split('/');
  if (tokens.some((t) => /~[^01]|~$/.test(t))) return undefined;
  return tokens.map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** The value a JSON pointer names in `value`, or undefined. */
export function valueAt(value: Json | undefined, pointer: string): Json | undefined {
  const tokens = pointerTokens(pointer);
  if (!tokens) return undefined;
  let v = value;
  for (const t of tokens) {
    if (!isObject(v) || !(t in v)) return undefined;
    v = v[t];
  }
  return v;
}

/**
 * What `desired` asks that `reported` does not have: every desired member whose reported value
 * differs, objects compared member by member, anything else (arrays included) whole. A desired
 * value the device refused (`rejected`, by pointer, still equal to what it refused) is left out.
 */
export function computeDelta(desired: JsonObject, reported: JsonObject, rejected: Rejections = {}): JsonObject {
  const refused = Object.keys(rejected).length > 0 ? rejected : undefined;
  const walk = (d: JsonObject, r: Json | undefined, path: string): JsonObject => {
    const out: JsonObject = {};
    for (const [key, want] of Object.entries(d)) {
      const here = `${path}/${escapeToken(key)}`;
      if (refused && here in refused && jsonEqual(refused[here]!.value, want)) continue;
      const have = isObject(r) ? r[key] : undefined;
      if (isObject(want) && Object.keys(want).length > 0) {
        const sub = walk(want, have, here);
        if (Object.keys(sub).length > 0) out[key] = sub;
      } else if (!jsonEqual(want, have)) out[key] = want;
    }
    return out;
  };
  return walk(desired, reported, '');
}

/** The rejections that still apply: those whose desired value is still the one refused. */
export function liveRejections(rejected: Rejections, desired: JsonObject): Rejections {
  const out: Rejections = {};
  for (const [pointer, r] of Object.entries(rejected)) if (jsonEqual(valueAt(desired, pointer), r.value)) out[pointer] = r;
  return out;
}

/** Whether a merge patch holds only removals (`null` leaves): what a device may send for `desired`. */
export function onlyRemovals(patch: JsonObject): boolean {
  return Object.values(patch).every((v) => v === null || (isObject(v) && Object.keys(v).length > 0 && onlyRemovals(v)));
}
