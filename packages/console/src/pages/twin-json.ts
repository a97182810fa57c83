// The twin tab's arithmetic on JSON, apart from React so that it is unit tested
// (twin-json.test.ts): the merge patch between the desired state an operator loaded and the one
// they edited (RFC 7386), that patch applied again on a newer version after a conflict, the leaf
// timestamps as a list, and the fields a fleet query names.

export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function jsonEqual(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]));
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => k in b && jsonEqual(a[k], b[k]));
  }
  return false;
}

/**
 * The JSON merge patch (RFC 7386) that turns `from` into `to`: members added or changed are set
 * (objects on both sides are compared member by member, anything else, arrays too, is sent
 * whole), members gone are `null`. `{}` when nothing changed.
 */
export function mergePatchBetween(from: JsonObject, to: JsonObject): JsonObject {
  const patch: JsonObject = {};
  for (const key of Object.keys(from)) if (!(key in to)) patch[key] = null; // RFC 7386 §2: null removes
  for (const [key, value] of Object.entries(to)) {
    const before = from[key];
    if (isObject(before) && isObject(value)) {
      const inner = mergePatchBetween(before, value);
      if (Object.keys(inner).length) patch[key] = inner;
    } else if (!(key in from) || !jsonEqual(before, value)) {
      patch[key] = value;
    }
  }
  return patch;
}

/** RFC 7386 §2: `patch` applied to `target`, as a new value (the platform's own rule, here to replay an edit on a newer version). */
export function applyMergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return patch;
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = applyMergePatch(out[key], value);
  }
  return out;
}

/**
 * The JSON pointers of members whose value is `null`: a merge patch cannot store one (its `null`
 * removes the member), so the editor refuses them rather than send something else than shown.
 * Inside arrays a `null` is kept as it is (an array is sent whole).
 */
export function nullMembers(value: Json, at = ''): string[] {
  if (!isObject(value)) return [];
  return Object.entries(value).flatMap(([k, v]) => (v === null ? [`${at}/${pointerKey(k)}`] : nullMembers(v, `${at}/${pointerKey(k)}`)));
}

/** RFC 6901 §3: `~` and `/` escaped in a pointer's key. */
export const pointerKey = (key: string) => key.replaceAll('~', '~0').replaceAll('/', '~1');

/** What the text of an editor is: a JSON object, or why not (shown beside the field, never sent). */
export function parseSection(text: string, what: string): { value: JsonObject; error?: undefined } | { value?: undefined; error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text.trim() || '{}');
  } catch (e) {
    return { error: `${what} is not JSON: ${e instanceof Error ? e.message : String(e)}` };
  }
  if (!isObject(value)) return { error: `${what} is a JSON object, such as {"mode": "eco"}` };
  const nulls = nullMembers(value as JsonObject);
  if (nulls.length) return { error: `${what} cannot hold null (${nulls.join(', ')}): in a merge patch null removes a member, so leave the member out instead` };
  return { value: value as JsonObject };
}

/** Leaf timestamps as `[pointer, ms since the epoch]`, newest first. */
export function leafStamps(stamps: unknown, at = ''): [string, number][] {
  const out: [string, number][] = [];
  const walk = (node: unknown, path: string) => {
    if (typeof node === 'number') out.push([path || '/', node]);
    else if (isObject(node)) for (const [k, v] of Object.entries(node)) walk(v, `${path}/${pointerKey(k)}`);
  };
  walk(stamps, at);
  return out.sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

/** How many leaves a value has (a scalar or an array is one; an object the sum of its members', an empty one none). */
export function leafCount(value: Json): number {
  if (!isObject(value)) return 1;
  const members = Object.values(value);
  return members.length ? members.reduce<number>((n, v) => n + leafCount(v), 0) : 0;
}

export const twinSections = ['desired', 'reported', 'tags'] as const;
export type TwinSection = (typeof twinSections)[number];

/** A field of a twin a query names: its section and keys, and the text it was written as. */
export interface TwinField {
  text: string;
  section: TwinSection;
  path: string[];
}

function fieldOf(text: string): TwinField | undefined {
  const [section, ...path] = text.split('.');
  if (!(twinSections as readonly string[]).includes(section!) || !path.length || !path.every((k) => /^[A-Za-z0-9_-]{1,64}$/.test(k))) return undefined;
  return { text, section: section as TwinSection, path };
}

/**
 * The fields the conditions name (left of the operator, and right of it when the value is another
 * field: `desired.mode != reported.mode`), each once, in the order written: the columns of the
 * results. Conditions it cannot read are left to the platform to refuse.
 */
export function queryFields(conditions: readonly string[]): TwinField[] {
  const seen = new Map<string, TwinField>();
  for (const c of conditions) {
    const m = /^\s*(\S+?)\s*(!=|<=|>=|=|<|>|\s+exists\s*$|\s+missing\s*$)\s*(.*?)\s*$/s.exec(c);
    if (!m) continue;
    for (const side of [m[1]!, m[3]!]) {
      const f = fieldOf(side);
      if (f && !seen.has(f.text)) seen.set(f.text, f);
    }
  }
  return [...seen.values()];
}

/** The value of a field in a twin's section, undefined when it has none there. */
export function fieldValue(section: unknown, path: readonly string[]): Json | undefined {
  let node: unknown = section;
  for (const key of path) {
    if (!isObject(node) || !(key in node)) return undefined;
    node = node[key];
  }
  return node as Json;
}

/** The conditions of the query field: one a line, blank lines left out. */
export function conditionLines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}
