import { errorCodes, type ErrorCode, type ErrorKind } from '../core/errors.js';
import { rc } from './types.js';

/**
 * How the registry's errors show at the MQTT edge: an MQTT 5 reason code per packet that can carry
 * one, keyed by error kind, with exceptions for single codes. Each packet allows only some reason
 * codes (MQTT 5 §3.2.2.2 CONNACK, §3.4.2.1 PUBACK and PUBREC, §3.9.3 SUBACK); the tables keep to
 * them, and test/error-maps.test.ts checks that every registered code maps into the allowed set.
 * MQTT 3.1.1 has no reason codes on PUBACK; its SUBACK says 0x80 and its CONNACK the closest return
 * code (v3CodeOf).
 */
export type MqttContext = 'connect' | 'publish' | 'subscribe';

interface ReasonMap {
  byKind: Record<ErrorKind, number>;
  byCode: Partial<Record<ErrorCode, number>>;
}

export const mqttReasons: Record<MqttContext, ReasonMap> = {
  connect: {
    byKind: {
      invalid: rc.implementationSpecific,
      unauthenticated: rc.badUsernameOrPassword,
      forbidden: rc.notAuthorized,
      not_found: rc.badUsernameOrPassword, // an unknown device is a bad username, never a hint
      conflict: rc.implementationSpecific,
      too_large: rc.packetTooLarge,
      unsupported_media: rc.implementationSpecific,
      rate_limited: rc.connectionRateExceeded,
      unavailable: rc.serverUnavailable,
      internal: rc.unspecified,
    },
    byCode: {
      'message.device_disabled': rc.notAuthorized,
      'message.overloaded': rc.serverBusy,
    },
  },
  publish: {
    byKind: {
      invalid: rc.implementationSpecific,
      unauthenticated: rc.notAuthorized,
      forbidden: rc.notAuthorized,
      not_found: rc.notAuthorized, // a channel the device may not see does not exist for it
      conflict: rc.implementationSpecific,
      // PUBACK has no "too large" (0x95 only ends a connection): the reason string says it
      too_large: rc.implementationSpecific,
      unsupported_media: rc.payloadFormatInvalid,
      rate_limited: rc.quotaExceeded,
      // Server busy (0x89) is no PUBACK or PUBREC reason: clients drop the connection on it
      unavailable: rc.quotaExceeded,
      internal: rc.unspecified,
    },
    byCode: {
      'message.invalid_payload': rc.payloadFormatInvalid,
      'message.invalid_subtopic': rc.topicNameInvalid,
    },
  },
  subscribe: {
    byKind: {
      invalid: rc.implementationSpecific,
      unauthenticated: rc.notAuthorized,
      forbidden: rc.notAuthorized,
      not_found: rc.notAuthorized,
      conflict: rc.implementationSpecific,
      too_large: rc.implementationSpecific,
      unsupported_media: rc.implementationSpecific,
      rate_limited: rc.quotaExceeded,
      unavailable: rc.quotaExceeded,
      internal: rc.unspecified,
    },
    byCode: {
      'message.invalid_subtopic': rc.topicFilterInvalid,
    },
  },
};

/** The reason codes each packet may carry for a refusal (MQTT 5 §3.2.2.2, §3.4.2.1, §3.9.3). */
export const allowedReasons: Record<MqttContext, ReadonlySet<number>> = {
  connect: new Set([0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f]),
  publish: new Set([0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99]),
  subscribe: new Set([0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2]),
};

/** The MQTT 5 reason code for an error code in a packet of this context. */
export function mqttReasonOf(code: ErrorCode, context: MqttContext): number {
  const map = mqttReasons[context];
  return map.byCode[code] ?? map.byKind[errorCodes[code].kind];
}
