/**
 * One registry of error codes. Each code is stable (never reused or renamed) and has a kind; each
 * edge shows it by one map, keyed by kind with exceptions for single codes, in a file named for it:
 * http/errors.ts (HTTP status), http/websocket-errors.ts (close code), mqtt/errors.ts (reason codes),
 * coap/errors.ts (response code). test/error-maps.test.ts checks every code on every edge.
 */
export type ErrorKind =
  | 'invalid'        // the request is malformed or fails validation
  | 'unauthenticated' // no or bad credentials
  | 'forbidden'      // authenticated, but not allowed
  | 'not_found'      // does not exist, or the caller may not see it
  | 'conflict'       // clashes with existing state
  | 'too_large'
  | 'unsupported_media'
  | 'rate_limited'
  | 'unavailable'
  | 'internal';

interface ErrorSpec {
  kind: ErrorKind;
  title: string;
}

/** The registry. Add codes at the end of their group; never change an existing code string. */
export const errorCodes = {
  'request.invalid': { kind: 'invalid', title: 'The request is not valid' },
  'request.too_large': { kind: 'too_large', title: 'The request body is too large' },
  'request.unsupported_media_type': { kind: 'unsupported_media', title: 'The content type is not supported' },
  'route.not_found': { kind: 'not_found', title: 'No such route' },
  'internal': { kind: 'internal', title: 'Internal error' },
  'service.unavailable': { kind: 'unavailable', title: 'The service is not ready' },
  'request.uri_too_long': { kind: 'invalid', title: 'The request path is too long' },
  'request.headers_too_large': { kind: 'too_large', title: 'The request line and headers are too large' },
  'request.timeout': { kind: 'invalid', title: 'The request did not arrive in time' },

  'auth.required': { kind: 'unauthenticated', title: 'Authentication is required' },
  'auth.invalid_credentials': { kind: 'unauthenticated', title: 'Invalid credentials' },
  'auth.token_invalid': { kind: 'unauthenticated', title: 'The token is invalid or has expired' },
  'auth.refresh_token_invalid': { kind: 'unauthenticated', title: 'The refresh token is invalid, expired or revoked' },
  'auth.rate_limited': { kind: 'rate_limited', title: 'Too many login attempts' },
  'auth.forbidden': { kind: 'forbidden', title: 'Not allowed' },
  'auth.signup_disabled': { kind: 'forbidden', title: 'Self sign-up is disabled' },
  'auth.token_scope': { kind: 'forbidden', title: 'The token does not grant this action' },
  'auth.session_ended': { kind: 'unauthenticated', title: 'The session of this access token has ended (logout, password change or sign-out everywhere); log in again' },

  'user.not_found': { kind: 'not_found', title: 'User not found' },
  'user.email_taken': { kind: 'conflict', title: 'A user with this email already exists' },
  'user.weak_password': { kind: 'invalid', title: 'The password is too weak' },
  'user.wrong_password': { kind: 'forbidden', title: 'The current password is wrong' },

  'org.not_found': { kind: 'not_found', title: 'Organization not found' },
  'org.member_not_found': { kind: 'not_found', title: 'Member not found' },
  'org.member_exists': { kind: 'conflict', title: 'The user is already a member' },
  'org.last_owner': { kind: 'conflict', title: 'An organization must keep at least one owner' },
  'org.invitation_not_found': { kind: 'not_found', title: 'Invitation not found (or it has expired)' },

  'device.not_found': { kind: 'not_found', title: 'Device not found' },
  'device.bulk_too_large': { kind: 'invalid', title: 'Too many devices in one request' },
  'channel.not_found': { kind: 'not_found', title: 'Channel not found' },
  'group.not_found': { kind: 'not_found', title: 'Group not found' },
  'token.not_found': { kind: 'not_found', title: 'Access token not found' },

  'message.too_large': { kind: 'too_large', title: 'The message is too large' },
  'message.invalid_subtopic': { kind: 'invalid', title: 'The subtopic is not valid' },
  'message.invalid_payload': { kind: 'invalid', title: 'The payload does not match its content type' },
  'message.unsupported_content_type': { kind: 'unsupported_media', title: 'This content type is not supported' },
  'message.not_connected': { kind: 'forbidden', title: 'The device is not connected to this channel for this action' },
  'message.device_disabled': { kind: 'forbidden', title: 'The device is disabled' },
  'message.overloaded': { kind: 'unavailable', title: 'The message store is behind; try again later' },
  'message.invalid_query': { kind: 'invalid', title: 'The message query is not valid' },
  'dead_letter.not_found': { kind: 'not_found', title: 'Dead letter not found' },
  'presence.invalid_interval': { kind: 'invalid', title: 'The reporting interval is out of range' },
  'presence.invalid_range': { kind: 'invalid', title: 'The time range is not valid' },

  'registration.not_found': { kind: 'not_found', title: 'Registration not found' },
  'registration.serial_taken': { kind: 'conflict', title: 'A registration with this serial already exists in the organization' },
  'registration.state': { kind: 'conflict', title: 'The registration is not in a state that allows this' },
  'registration.bulk_too_large': { kind: 'invalid', title: 'Too many registrations in one request' },
  'enrolment_token.not_found': { kind: 'not_found', title: 'Enrolment token not found' },
  'certificate.not_found': { kind: 'not_found', title: 'Certificate not found' },
  'enrolment.csr_invalid': { kind: 'invalid', title: 'The certificate request is not acceptable' },
  'enrolment.token_invalid': { kind: 'unauthenticated', title: 'The enrolment token is unknown' },
  'enrolment.token_used': { kind: 'unauthenticated', title: 'The enrolment token was used already' },
  'enrolment.token_expired': { kind: 'unauthenticated', title: 'The enrolment token has expired' },
  'enrolment.not_registered': { kind: 'forbidden', title: 'No registration is waiting for this device' },
  'enrolment.key_mismatch': { kind: 'forbidden', title: "The request's key is not the key registered for this device" },
  'enrolment.serial_not_allowed': { kind: 'forbidden', title: 'The enrolment token does not cover this serial' },
  'enrolment.registration_blocked': { kind: 'forbidden', title: 'The registration is suspended or revoked' },
  'enrolment.already_enrolled': { kind: 'conflict', title: 'The device is enrolled: it re-enrols with its registered key, or after an operator resets its registration' },
  'enrolment.request_replayed': { kind: 'conflict', title: 'This certificate request was used before: make a new one' },
  'enrolment.rate_limited': { kind: 'rate_limited', title: 'Too many enrolment attempts from this address' },
  'enrolment.factory_certificate_invalid': { kind: 'forbidden', title: 'The factory certificate is expired, not yet valid, or signed by no manufacturer CA that allows its serial' },
  'manufacturer_ca.not_found': { kind: 'not_found', title: 'Manufacturer CA not found' },
  'manufacturer_ca.invalid': { kind: 'invalid', title: 'Not a CA certificate the platform can take' },
  'manufacturer_ca.exists': { kind: 'conflict', title: 'This CA is registered in the organization already' },
  'renewal.certificate_required': { kind: 'unauthenticated', title: 'A renewal is made over TLS with the device certificate it renews' },
  'renewal.certificate_inactive': { kind: 'forbidden', title: 'The certificate presented is revoked, expired or not the platform\'s' },

  'twin.not_found': { kind: 'not_found', title: 'Twin not found' },
  'twin.invalid_update': { kind: 'invalid', title: 'The twin update is not valid' },
  'twin.version_conflict': { kind: 'conflict', title: 'The twin changed since the version given: read it again and retry' },
  'twin.too_large': { kind: 'too_large', title: 'The twin section would be larger than the limit' },
  'twin.forbidden_section': { kind: 'forbidden', title: 'This writer may not change this part of the twin' },
  'twin.rate_limited': { kind: 'rate_limited', title: 'Too many twin updates from this device' },
  'twin.invalid_query': { kind: 'invalid', title: 'The twin query is not valid' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorCodes;

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  readonly title: string;
  /** Extra fields shown to the client (never secrets). */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, detail?: string, details?: Record<string, unknown>) {
    const spec: ErrorSpec = errorCodes[code];
    super(detail ?? spec.title);
    this.name = 'AppError';
    this.code = code;
    this.kind = spec.kind;
    this.title = spec.title;
    this.details = details;
  }
}

export function isAppError(e: unknown): e is AppError {
  return e instanceof AppError;
}

/** A not-found error that lists the ids that were not found (bulk requests). */
export function unknownIds(code: ErrorCode, noun: string, missing: string[]): AppError {
  const shown = missing.slice(0, 10).join(', ') + (missing.length > 10 ? ', …' : '');
  return new AppError(code, `Unknown ${noun} ids: ${shown}`, { missing_ids: missing.slice(0, 100) });
}
