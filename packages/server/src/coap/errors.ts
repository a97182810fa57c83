import { errorCodes, isAppError, type ErrorCode, type ErrorKind } from '../core/errors.js';
import { truncateUtf8 } from '../core/text.js';

/**
 * How errors show at the CoAP edge: a response code (RFC 7252 §5.9, §12.1.2) keyed by error kind,
 * with exceptions for single codes, and a diagnostic payload (§5.5.2: UTF-8 text for humans, no
 * Content-Format) that starts with the stable error code.
 */
export const coapCodeOfKind: Record<ErrorKind, string> = {
  invalid: '4.00',
  unauthenticated: '4.01',
  forbidden: '4.03',
  not_found: '4.04',
  conflict: '4.09', // RFC 8132 §3.2
  too_large: '4.13',
  unsupported_media: '4.15',
  rate_limited: '4.29', // RFC 8516
  unavailable: '5.03',
  internal: '5.00',
};

/** Single codes that show otherwise than their kind. */
export const coapCodeOfCode: Partial<Record<ErrorCode, string>> = {
  // a store that is behind is a server that cannot serve now, not one that is broken
  'message.overloaded': '5.03',
  'service.unavailable': '5.03',
  // a stale twin version is a failed precondition, as If-Match is over HTTP (RFC 7252 §5.9.2.9)
  'twin.version_conflict': '4.12',
};

/** The CoAP response code of an error code. */
export function coapCodeOf(code: ErrorCode): string {
  return coapCodeOfCode[code] ?? coapCodeOfKind[errorCodes[code].kind];
}

/** A refusal of the CoAP edge itself (not a domain error): protocol misuse and exhausted per-address limits. */
export class CoapRefusal extends Error {
  constructor(
    readonly code: string,
    /** Stable diagnostic code, as in the error registry (`coap.…`). */
    readonly reason: string,
    message: string,
    /** Options to send along, e.g. Max-Age on 5.03 (RFC 7252 §5.9.3.4) or Size1 on 4.13 (RFC 7959 §2.9.3). */
    readonly extra: { maxAge?: number; size1?: number } = {},
  ) {
    super(message);
    this.name = 'CoapRefusal';
  }
}

export interface MappedError {
  code: string;
  /** Stable error code, for metrics and logs. */
  reason: string;
  diagnostic: string;
  maxAge?: number;
  size1?: number;
}

/** Diagnostic payloads stay well inside one datagram. */
const maxDiagnosticBytes = 256;

function diagnostic(reason: string, message: string): string {
  const text = `${reason}: ${message}`;
  return truncateUtf8(text, maxDiagnosticBytes);
}

export function mapError(e: unknown, maxPayloadBytes: number): MappedError {
  if (e instanceof CoapRefusal) return { code: e.code, reason: e.reason, diagnostic: diagnostic(e.reason, e.message), ...e.extra };
  if (isAppError(e)) {
    return {
      code: coapCodeOf(e.code),
      reason: e.code,
      diagnostic: diagnostic(e.code, e.message),
      // RFC 7959 §2.9.3: a 4.13 may say how large a body the server takes
      ...(e.kind === 'too_large' ? { size1: maxPayloadBytes } : {}),
    };
  }
  return { code: '5.00', reason: 'internal', diagnostic: 'internal: Internal error' };
}
