/**
 * The errors the SDK throws or emits. Every one is a `FleetwireError` with a stable `code`, so a
 * device program can branch on `err.code` without parsing messages.
 */
export type FleetwireErrorCode =
  /** The options given to the client are not usable. */
  | 'invalid_options'
  /** The platform refused the connection (CONNACK with a failure code). */
  | 'connection_refused'
  /** The platform refused a publish (MQTT 5 PUBACK/PUBREC with a failure code). */
  | 'publish_refused'
  /** The platform refused a subscription (SUBACK failure code). */
  | 'subscribe_refused'
  /** A SenML pack that the platform would refuse (RFC 8428). */
  | 'invalid_senml'
  /** A JSON message that is not an object or an array of objects. */
  | 'invalid_json'
  /** A channel id or subtopic that is no valid topic part. */
  | 'invalid_topic'
  /** A content type MQTT 3.1.1 cannot carry (it has no Content Type property). */
  | 'content_type_needs_mqtt5'
  /** The outbox of QoS 1/2 messages waiting for the platform is full. */
  | 'outbox_full'
  /** A message larger than the platform's Maximum Packet Size (told in its CONNACK). */
  | 'message_too_large'
  /** A QoS 0 publish while there is no connection (QoS 0 is never queued). */
  | 'not_connected'
  /** A QoS 1/2 message sent on `publishAttempts` connections that each closed before it was acknowledged. */
  | 'publish_failed'
  /** Another connection with the same client id took the session over (DISCONNECT 0x8E): this one stops rather than take it back. */
  | 'session_taken_over'
  /** The client was closed. */
  | 'closed'
  /** The key store holds no enrolled identity (enrol first). */
  | 'not_enrolled'
  /** A file of the key store does not read as what it should be. */
  | 'store_invalid'
  /** The platform's HTTP API did not answer (address, network, TLS). */
  | 'platform_unreachable'
  /** The platform answered with something that is neither its answer nor a problem document. */
  | 'unexpected_response'
  /** A refusal by the platform's HTTP API: its own stable code, e.g. `enrolment.token_used` (docs/identity.md). */
  | PlatformErrorCode;

/** The codes of the platform's problem documents, e.g. `enrolment.token_used`, `renewal.certificate_required`. */
export type PlatformErrorCode = `${string}.${string}`;

export class FleetwireError extends Error {
  override readonly name: string = 'FleetwireError';
  constructor(
    readonly code: FleetwireErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** What MQTT 3.1.1 CONNACK return codes mean (MQTT 3.1.1 §3.2.2.3 Table 3.1). */
const mqtt311Connack: Record<number, string> = {
  1: 'unacceptable protocol version',
  2: 'identifier rejected',
  3: 'server unavailable',
  4: 'bad user name or password',
  5: 'not authorized',
};

/** MQTT 5 reason codes (MQTT 5 §2.4), for the messages of the errors below. */
const mqtt5Reasons: Record<number, string> = {
  0x80: 'unspecified error',
  0x81: 'malformed packet',
  0x82: 'protocol error',
  0x83: 'implementation specific error',
  0x84: 'unsupported protocol version',
  0x85: 'client identifier not valid',
  0x86: 'bad user name or password',
  0x87: 'not authorized',
  0x88: 'server unavailable',
  0x89: 'server busy',
  0x8a: 'banned',
  0x8b: 'server shutting down',
  0x8c: 'bad authentication method',
  0x8d: 'keep alive timeout',
  0x8e: 'session taken over',
  0x8f: 'topic filter invalid',
  0x90: 'topic name invalid',
  0x91: 'packet identifier in use',
  0x93: 'receive maximum exceeded',
  0x94: 'topic alias invalid',
  0x95: 'packet too large',
  0x96: 'message rate too high',
  0x97: 'quota exceeded',
  0x98: 'administrative action',
  0x99: 'payload format invalid',
  0x9a: 'retain not supported',
  0x9b: 'QoS not supported',
  0x9c: 'use another server',
  0x9d: 'server moved',
  0x9e: 'shared subscriptions not supported',
  0x9f: 'connection rate exceeded',
  0xa2: 'wildcard subscriptions not supported',
};

/** The name of a reason code at a protocol level, e.g. `0x86 bad user name or password`. */
export function describeReason(code: number, protocolVersion: 4 | 5): string {
  const hex = `0x${code.toString(16).padStart(2, '0')}`;
  const name = protocolVersion === 5 ? mqtt5Reasons[code] : mqtt311Connack[code];
  return protocolVersion === 5 ? `${hex} ${name ?? 'unknown reason'}` : `return code ${code} ${name ?? 'unknown'}`;
}

/**
 * Refusals worth trying again later: the platform is busy, starting or moving; anything else
 * (credentials, authorization, a malformed CONNECT) fails the same way every time.
 */
const retryableConnack5 = new Set([0x80, 0x83, 0x88, 0x89, 0x8b, 0x97, 0x9c, 0x9d, 0x9f]);
const retryableConnack311 = new Set([3]);

export class ConnectionRefusedError extends FleetwireError {
  override readonly name = 'ConnectionRefusedError';
  /** Whether the client goes on trying (the platform is busy or unavailable), or stops (credentials, authorization). */
  readonly retryable: boolean;
  constructor(
    /** The CONNACK reason code (MQTT 5) or return code (MQTT 3.1.1). */
    readonly reasonCode: number,
    readonly protocolVersion: 4 | 5,
    /** The platform's own words (MQTT 5 Reason String), when it gave any. */
    readonly reason: string | undefined,
  ) {
    super('connection_refused', `the platform refused the connection: ${describeReason(reasonCode, protocolVersion)}${reason ? ` (${reason})` : ''}`);
    this.retryable = (protocolVersion === 5 ? retryableConnack5 : retryableConnack311).has(reasonCode);
  }
}

export class PublishRefusedError extends FleetwireError {
  override readonly name = 'PublishRefusedError';
  constructor(
    readonly topic: string,
    /** The PUBACK or PUBREC reason code (MQTT 5). */
    readonly reasonCode: number,
    readonly reason: string | undefined,
  ) {
    super('publish_refused', `the platform refused the message on ${topic}: ${describeReason(reasonCode, 5)}${reason ? ` (${reason})` : ''}`);
  }
}

export class SubscribeRefusedError extends FleetwireError {
  override readonly name = 'SubscribeRefusedError';
  constructor(
    readonly filter: string,
    /** The SUBACK code: an MQTT 5 reason code, or 0x80 on MQTT 3.1.1. */
    readonly reasonCode: number,
    protocolVersion: 4 | 5,
  ) {
    super('subscribe_refused', `the platform refused the subscription to ${filter}: ${protocolVersion === 5 ? describeReason(reasonCode, 5) : '0x80 failure'}`);
  }
}

export class SenmlError extends FleetwireError {
  override readonly name = 'SenmlError';
  constructor(
    /** The record at fault, or undefined when the pack itself is. */
    readonly index: number | undefined,
    detail: string,
  ) {
    super('invalid_senml', index === undefined ? `invalid SenML pack: ${detail}` : `invalid SenML pack: record ${index}: ${detail}`);
  }
}

export class OutboxFullError extends FleetwireError {
  override readonly name = 'OutboxFullError';
  constructor(readonly limit: number) {
    super('outbox_full', `the outbox holds ${limit} messages waiting for the platform (outboxLimit): this one was not queued`);
  }
}

/**
 * The platform refused an identity request (`POST /enrol`, `POST /renew`): `code` is the platform's
 * own (docs/identity.md), `status` the HTTP status, `reason` the detail some codes carry (a CSR's
 * `csr_signature`, …).
 */
export class PlatformRefusedError extends FleetwireError {
  override readonly name = 'PlatformRefusedError';
  constructor(
    code: PlatformErrorCode,
    readonly status: number,
    detail: string,
    readonly reason: string | undefined,
  ) {
    super(code, `the platform refused: ${code} (HTTP ${status})${detail ? `: ${detail}` : ''}`);
  }
}
