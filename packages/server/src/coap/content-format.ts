import { mediaTypeOf } from '../messaging/payload/index.js';

/**
 * CoAP Content-Format numbers (RFC 7252 §12.3, IANA "CoAP Content-Formats") and the content types
 * the messaging service knows. SenML/SenSML come from RFC 8428 §12.3. Types without a number here
 * are refused with 4.15 on publish and sent without a Content-Format on notify.
 */
const byNumber = new Map<number, string>([
  [0, 'text/plain; charset=utf-8'],
  [40, 'application/link-format'],
  [41, 'application/xml'],
  [42, 'application/octet-stream'],
  [47, 'application/exi'],
  [50, 'application/json'],
  [60, 'application/cbor'],
  [110, 'application/senml+json'],
  [111, 'application/sensml+json'],
  [112, 'application/senml+cbor'],
  [113, 'application/sensml+cbor'],
  [114, 'application/senml-exi'],
  [115, 'application/sensml-exi'],
  [310, 'application/senml+xml'],
  [311, 'application/sensml+xml'],
]);

/** Media type (lower case, without parameters) → number; text/plain of any charset is 0. */
const byMediaType = new Map<string, number>([...byNumber].map(([n, type]) => [mediaTypeOf(type), n]));

/** The content type of a Content-Format number, or undefined when we do not know the number. */
export function contentTypeOf(format: number): string | undefined {
  return byNumber.get(format);
}

/** The Content-Format number of a content type, or undefined when it has none. */
export function contentFormatOf(contentType: string): number | undefined {
  return byMediaType.get(mediaTypeOf(contentType));
}
