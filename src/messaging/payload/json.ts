/**
 * `application/json` messages: one object, or a non-empty array of objects, each stored as a
 * document with its top-level finite numbers queryable by name. Pure: no I/O, never throws.
 */
import { isUtf8 } from 'node:buffer';

/** Most documents one JSON message may carry (an array of objects). */
export const maxJsonDocuments = 10_000;

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

/** `JSON.parse` that reports instead of throwing. */
export function parseJsonText(bytes: Buffer | string): { ok: true; value: unknown } | { ok: false; error: string } {
  const t = jsonText(bytes);
  if (!t.ok) return t;
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

export function parseJsonMessage(bytes: Buffer | string): JsonMessageResult {
  const parsed = parseJsonText(bytes);
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
