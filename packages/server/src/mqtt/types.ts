import type { IPublishPacket, QoS } from 'mqtt-packet';

export type { QoS };
export type ProtocolVersion = 3 | 4 | 5;

/** MQTT 5.0 PUBLISH properties a message keeps end to end (§3.3.2.3); aliases and subscription ids are per hop. */
export interface MessageProperties {
  payloadFormatIndicator?: boolean;
  responseTopic?: string;
  correlationData?: Buffer;
  userProperties?: Record<string, string | string[]>;
  contentType?: string;
}

/** A message inside the broker. */
export interface BrokerMessage {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties?: MessageProperties;
  /** Unix ms after which the message is not delivered any more (Message Expiry Interval, §3.3.2.3.3). */
  expiresAt?: number;
  /** Client id of the publisher on this node, for No Local (§3.8.3.1). */
  origin?: string;
  /** The message bus envelope id, when the message came through the bus: the same message twice is recognisable. */
  id?: string;
  /** QoS 0 PUBLISH packets made of it, by protocol level and RETAIN (connection.ts): one encoding for many subscribers. */
  encoded?: (Buffer | undefined)[];
}

/** SUBSCRIBE options (§3.8.3.1). */
export interface SubscriptionOptions {
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  /** 0: send retained on subscribe, 1: only if the subscription is new, 2: never. */
  retainHandling: 0 | 1 | 2;
  subscriptionId?: number;
  /** Topic filters the policy refused inside this subscription's filter: matching topics are never delivered through it. */
  exclude?: string[];
}

/** Who a connected client is, once authenticated. */
export type ClientIdentity =
  | { kind: 'device'; deviceId: string; orgId: string }
  | { kind: 'anonymous' }
  /** A connection that came to enrol (mqtt/enrolment.ts): `connection` is its own, so that no other takes its session. */
  | { kind: 'enrolment'; connection: string }
  /** A user following fleet events with a token (mqtt/events.ts): `connection` is its own, as an enrolment's. */
  | { kind: 'user'; userId: string; connection: string };

/**
 * Whose a session is: a device's, or the open listener's anonymous clients'. A client id names a
 * session of one owner only: another device connecting with it is refused, never given the
 * session (nor may it take the connection over), on any node.
 */
export function ownerOf(identity: ClientIdentity): string {
  if (identity.kind === 'device') return `device:${identity.deviceId}`;
  if (identity.kind === 'user') return `user:${identity.connection}`;
  return identity.kind === 'enrolment' ? `enrolment:${identity.connection}` : identity.kind;
}

export type PublishPacket = IPublishPacket;

/** MQTT 5.0 reason codes (§2.4) we use. */
export const rc = {
  success: 0x00,
  grantedQos1: 0x01,
  grantedQos2: 0x02,
  disconnectWithWill: 0x04,
  noMatchingSubscribers: 0x10,
  noSubscriptionExisted: 0x11,
  unspecified: 0x80,
  malformedPacket: 0x81,
  protocolError: 0x82,
  implementationSpecific: 0x83,
  unsupportedProtocolVersion: 0x84,
  clientIdNotValid: 0x85,
  badUsernameOrPassword: 0x86,
  notAuthorized: 0x87,
  serverUnavailable: 0x88,
  serverBusy: 0x89,
  banned: 0x8a,
  serverShuttingDown: 0x8b,
  keepAliveTimeout: 0x8d,
  sessionTakenOver: 0x8e,
  topicFilterInvalid: 0x8f,
  topicNameInvalid: 0x90,
  packetIdInUse: 0x91,
  packetIdNotFound: 0x92,
  receiveMaximumExceeded: 0x93,
  topicAliasInvalid: 0x94,
  packetTooLarge: 0x95,
  messageRateTooHigh: 0x96,
  quotaExceeded: 0x97,
  administrativeAction: 0x98,
  payloadFormatInvalid: 0x99,
  retainNotSupported: 0x9a,
  qosNotSupported: 0x9b,
  sharedSubscriptionsNotSupported: 0x9e,
  connectionRateExceeded: 0x9f,
  subscriptionIdsNotSupported: 0xa1,
  wildcardSubscriptionsNotSupported: 0xa2,
} as const;

/** MQTT 3.1.1 CONNACK return codes (§3.2.2.3). */
export const v3ConnackCode = {
  accepted: 0,
  unacceptableProtocolVersion: 1,
  identifierRejected: 2,
  serverUnavailable: 3,
  badUsernameOrPassword: 4,
  notAuthorized: 5,
} as const;

/** The MQTT 3.1.1 CONNACK code closest to an MQTT 5 reason code. */
export function v3CodeOf(reason: number): number {
  switch (reason) {
    case rc.success:
      return v3ConnackCode.accepted;
    case rc.unsupportedProtocolVersion:
      return v3ConnackCode.unacceptableProtocolVersion;
    case rc.clientIdNotValid:
      return v3ConnackCode.identifierRejected;
    case rc.badUsernameOrPassword:
      return v3ConnackCode.badUsernameOrPassword;
    case rc.notAuthorized:
    case rc.banned:
      return v3ConnackCode.notAuthorized;
    default:
      return v3ConnackCode.serverUnavailable;
  }
}
