/**
 * Payload normalisation for the messaging plane: turns a message's bytes into what storage keeps,
 * chosen by the content type that travels with the message (never guessed). Pure: no I/O, never throws.
 */
import { defaultMaxPayloadDepth, parseJsonMessage } from './json.js';
import { parseSenmlCbor, parseSenmlJson, type SenmlRecord } from './senml.js';

export {
  parseSenmlJson,
  parseSenmlCbor,
  maxSenmlRecords,
  maxSenmlStringBytes,
  maxSenmlNameLength,
  maxSenmlVersion,
  defaultSenmlVersion,
  senmlRelativeTimeLimit,
  type SenmlRecord,
  type SenmlResult,
} from './senml.js';
export { parseJsonMessage, maxJsonDocuments, defaultMaxPayloadDepth, scanJsonText, type JsonMessageResult } from './json.js';
export { cborNestedDeeperThan } from './senml.js';

export const senmlJsonMediaType = 'application/senml+json';
export const senmlCborMediaType = 'application/senml+cbor';
export const jsonMediaType = 'application/json';

export type NormalisedPayload =
  | { kind: 'senml'; records: SenmlRecord[]; version: number }
  | { kind: 'json'; documents: Record<string, unknown>[]; numbers: Record<string, number>[] }
  | { kind: 'opaque' }
  | { kind: 'invalid'; error: string };

/** The media type of a Content-Type value: parameters dropped, lower case (RFC 9110 §8.3.1). */
export function mediaTypeOf(contentType: string): string {
  const semi = contentType.indexOf(';');
  return (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

/**
 * Normalises a payload by its content type.
 * @param receivedAt receive time in Unix **seconds** (fractional); relative SenML times resolve against it.
 *   The envelope's `receivedAt` is in milliseconds: pass `env.receivedAt / 1000`.
 * @param maxDepth deepest nesting of arrays, objects (maps) and CBOR tags accepted, checked before
 *   parsing; `Infinity` where the payload was checked when it came in (the writer parsing again).
 */
export function normalisePayload(contentType: string, payload: Buffer, receivedAt: number, maxDepth = defaultMaxPayloadDepth): NormalisedPayload {
  switch (mediaTypeOf(contentType)) {
    case senmlJsonMediaType: {
      const r = parseSenmlJson(payload, receivedAt, maxDepth);
      return r.ok ? { kind: 'senml', records: r.records, version: r.version } : { kind: 'invalid', error: r.error };
    }
    case senmlCborMediaType: {
      const r = parseSenmlCbor(payload, receivedAt, maxDepth);
      return r.ok ? { kind: 'senml', records: r.records, version: r.version } : { kind: 'invalid', error: r.error };
    }
    case jsonMediaType: {
      const r = parseJsonMessage(payload, maxDepth);
      return r.ok ? { kind: 'json', documents: r.documents, numbers: r.numbers } : { kind: 'invalid', error: r.error };
    }
    default:
      return { kind: 'opaque' };
  }
}
