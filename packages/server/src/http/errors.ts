import { errorCodes, type ErrorCode, type ErrorKind } from '../core/errors.js';

/** How the registry's errors show at the HTTP edge: a status keyed by error kind, with exceptions for single codes. */
export const httpStatusOfKind: Record<ErrorKind, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  unsupported_media: 415,
  rate_limited: 429,
  unavailable: 503,
  internal: 500,
};

/** Single codes that show otherwise than their kind. */
export const httpStatusOfCode: Partial<Record<ErrorCode, number>> = {
  // a path longer than the router takes is "URI too long", not any invalid request
  'request.uri_too_long': 414,
  'request.headers_too_large': 431,
  'request.timeout': 408,
  // the writer sent If-Match with a version the twin has moved past (RFC 9110 §13.1.1)
  'twin.version_conflict': 412,
};

/** The HTTP status of an error code. */
export function httpStatusOf(code: ErrorCode): number {
  return httpStatusOfCode[code] ?? httpStatusOfKind[errorCodes[code].kind];
}
