/**
 * `application/json` messages: one object, or a non-empty array of objects, each stored as a
 * document with its top-level finite numbers queryable by name. Pure: no I/O, never throws.
 */
import { isUtf8 } from 'node:buffer';

/** Most documents one JSON message may carry (an array of objects). */
export const maxJsonDocuments = 10_000;

/**
 * Deepest nesting of arrays and objects a payload may have by default (`{"a":1}` is 1, SenML's
 * `[{"n":"t"}]` is 2). A parse of a deeper one may be fine, but what walks it later (storing it,
 * `JSON.stringify`, a CBOR decoder) recurses and can run out of stack: at about 5,000 levels.
 */
export const defaultMaxPayloadDepth = 32;

export type JsonMessageResult =
  | {
      ok: true;
      documents: Record<string, unknown>[];
      /** Per document (same index): its top-level fields holding finite numbers. */
      numbers: Record<string, number>[];
    }
  | { ok: false; error: string };

export type TextResult = { ok: true; text: string } | { ok: false; error: string };

/**
 * The JSON text of a payload: UTF-8 only (RFC 8259 §8.1), so invalid UTF-8 is refused instead of
 * being turned into U+FFFD silently; a leading byte order mark is ignored, as §8.1 allows.
 */
export function jsonText(bytes: Buffer | string): TextResult {
  let text: string;
  if (typeof bytes === 'string') text = bytes;
  else {
    if (!isUtf8(bytes)) return { ok: false, error: 'payload is not valid UTF-8 (RFC 8259 §8.1)' };
    text = bytes.toString('utf8');
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return { ok: true, text };
}

const quote = 0x22;
const backslash = 0x5c;
const hexDigit = (c: number): number => (c >= 0x30 && c <= 0x39 ? c - 0x30 : (c | 0x20) >= 0x61 && (c | 0x20) <= 0x66 ? (c | 0x20) - 0x57 : -1);

/** The code unit of the `\uXXXX` escape at `i` (the backslash), or -1 when it is not one. */
function escapedUnit(text: string, i: number): number {
  if (i + 5 >= text.length || text.charCodeAt(i + 1) !== 0x75) return -1;
  let unit = 0;
  for (let k = 2; k < 6; k++) {
    const d = hexDigit(text.charCodeAt(i + k));
    if (d < 0) return -1;
    unit = unit * 16 + d;
  }
  return unit;
}

/**
 * What a JSON text holds that no parse should be asked to handle, found in one pass over its
 * characters, without recursion: nesting deeper than `maxDepth`, and with `screenStrings`, string
 * escapes no database stores: `\u0000` (PostgreSQL's text and jsonb refuse U+0000) and a surrogate
 * escape without its pair (RFC 8259 §8.2: such strings are not interoperable; jsonb refuses them
 * too). Brackets inside strings do not count. Malformed text is left for `JSON.parse` to report.
 */
export function scanJsonText(text: string, maxDepth: number, screenStrings: boolean): string | undefined {
  // The walk below costs about 2 ns a character. Most payloads need none of it: fewer opening
  // brackets in all than the bound cannot nest past it, and no `\u` means no escape to screen.
  const deep = maxDepth !== Infinity && moreThan(text, 0x5b, 0x7b, maxDepth);
  screenStrings &&= text.includes('\\u');
  if (!deep && !screenStrings) return undefined;
  let depth = 0;
  let inString = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === quote) inString = false;
      else if (c === backslash) {
        const unit = screenStrings ? escapedUnit(text, i) : -1;
        if (unit < 0) {
          i++; // a one-character escape: the next character is not a quote that ends the string
          continue;
        }
        if (unit === 0) return 'a JSON string holds \\u0000, which is not stored';
        if (unit >= 0xd800 && unit <= 0xdbff) {
          const low = text.charCodeAt(i + 6) === backslash ? escapedUnit(text, i + 6) : -1;
          if (low < 0xdc00 || low > 0xdfff) return 'a JSON string holds a high surrogate escape without its low surrogate (RFC 8259 §8.2)';
          i += 6;
        } else if (unit >= 0xdc00 && unit <= 0xdfff) return 'a JSON string holds a low surrogate escape without its high surrogate (RFC 8259 §8.2)';
        i += 5;
      }
    } else if (c === quote) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) return `the payload is nested deeper than ${maxDepth} levels of arrays and objects`;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return undefined;
}

/** Whether `text` holds more than `limit` of the characters `a` and `b` together (found by the native indexOf). */
function moreThan(text: string, a: number, b: number, limit: number): boolean {
  let n = 0;
  for (const c of [String.fromCharCode(a), String.fromCharCode(b)]) {
    for (let i = text.indexOf(c); i >= 0; i = text.indexOf(c, i + 1)) if (++n > limit) return true;
  }
  return false;
}

/**
 * `JSON.parse` that reports instead of throwing, after `scanJsonText` has found nothing wrong.
 * @param maxDepth deepest nesting accepted; `Infinity` where the payload was bounded when it came in (the writer).
 * @param screenStrings refuse strings no database stores, anywhere in the text (a document stored whole)
 */
export function parseJsonText(bytes: Buffer | string, maxDepth = defaultMaxPayloadDepth, screenStrings = false): { ok: true; value: unknown } | { ok: false; error: string } {
  const t = jsonText(bytes);
  if (!t.ok) return t;
  const refused = scanJsonText(t.text, maxDepth, screenStrings);
  if (refused) return { ok: false, error: refused };
  try {
    return { ok: true, value: JSON.parse(t.text) as unknown };
  } catch (e) {
    return { ok: false, error: `payload is not valid JSON: ${e instanceof Error ? e.message : String(e)}` };
  }
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** What a JSON value is, for error messages. */
export function jsonKind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}

export function parseJsonMessage(bytes: Buffer | string, maxDepth = defaultMaxPayloadDepth): JsonMessageResult {
  // stored whole as a document: every string in it must be storable
  const parsed = parseJsonText(bytes, maxDepth, true);
  if (!parsed.ok) return parsed;
  const value = parsed.value;
  if (isPlainObject(value)) return { ok: true, documents: [value], numbers: [numericFields(value)] };
  if (!Array.isArray(value)) {
    return { ok: false, error: `a JSON message must be an object or an array of objects, got ${jsonKind(value)}` };
  }
  if (value.length === 0) return { ok: false, error: 'a JSON message array must hold at least one object, got an empty array' };
  if (value.length > maxJsonDocuments) {
    return { ok: false, error: `a JSON message may hold at most ${maxJsonDocuments} objects, got ${value.length}` };
  }
  const numbers: Record<string, number>[] = new Array<Record<string, number>>(value.length);
  for (let i = 0; i < value.length; i++) {
    const doc: unknown = value[i];
    if (!isPlainObject(doc)) return { ok: false, error: `element ${i}: must be an object, got ${jsonKind(doc)}` };
    numbers[i] = numericFields(doc);
  }
  return { ok: true, documents: value as Record<string, unknown>[], numbers };
}

/** Top-level fields holding finite numbers (JSON.parse yields no NaN; 1e400 parses to Infinity and is left out). */
function numericFields(doc: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key in doc) {
    const v = doc[key];
    if (typeof v !== 'number' || !Number.isFinite(v)) continue;
    // JSON.parse makes "__proto__" an own field; plain assignment would hit the prototype setter instead.
    if (key === '__proto__') Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
    else out[key] = v;
  }
  return out;
}
