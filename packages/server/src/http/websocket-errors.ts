import { errorCodes, type ErrorCode, type ErrorKind } from '../core/errors.js';

/**
 * How the registry's errors show on an open WebSocket: a close code (RFC 6455 §7.4.1; 4000–4999
 * are ours) keyed by error kind, with exceptions for single codes. The close reason starts with the
 * stable error code. Refusals before the upgrade are HTTP problem responses (http/errors.ts).
 */
export const closeCodes = {
  policy: 1008, // not allowed (credentials, connection type)
  invalidData: 1007, // a frame the content type does not allow
  tooBig: 1009,
  internal: 1011,
  tryAgainLater: 1013, // slow consumer, overloaded store
  sessionEnded: 4401, // the login session of the user's access token ended (logout, password change, sign-out everywhere)
  accessWithdrawn: 4403, // the device was disabled, deleted, got a new secret, or lost its connection to the channel
} as const;

export const closeCodeOfKind: Record<ErrorKind, number> = {
  invalid: closeCodes.invalidData,
  unauthenticated: closeCodes.policy,
  forbidden: closeCodes.policy,
  not_found: closeCodes.policy, // a channel the client may not see does not exist for it
  conflict: closeCodes.policy,
  too_large: closeCodes.tooBig,
  unsupported_media: closeCodes.invalidData,
  rate_limited: closeCodes.tryAgainLater,
  unavailable: closeCodes.tryAgainLater,
  internal: closeCodes.internal,
};

/** Single codes that show otherwise than their kind. */
export const closeCodeOfCode: Partial<Record<ErrorCode, number>> = {
  'auth.session_ended': closeCodes.sessionEnded,
};

/** The WebSocket close code of an error code. */
export function closeCodeOf(code: ErrorCode): number {
  return closeCodeOfCode[code] ?? closeCodeOfKind[errorCodes[code].kind];
}
