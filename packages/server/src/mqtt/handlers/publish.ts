import type { IPublishPacket, IPubrelPacket } from 'mqtt-packet';
import type { PublishOutcome } from '../broker.js';
import type { Connection } from '../connection.js';
import { checkTopicName } from '../topics.js';
import { rc, type BrokerMessage, type MessageProperties } from '../types.js';

/** The PUBLISH properties that travel with the message (§3.3.2.3); alias and subscription ids do not. */
function messageProperties(p: IPublishPacket['properties']): MessageProperties | undefined {
  if (!p) return undefined;
  const out: MessageProperties = {};
  if (p.payloadFormatIndicator !== undefined) out.payloadFormatIndicator = p.payloadFormatIndicator;
  if (p.responseTopic !== undefined) out.responseTopic = p.responseTopic;
  if (p.correlationData !== undefined) out.correlationData = p.correlationData;
  if (p.userProperties !== undefined) out.userProperties = p.userProperties;
  if (p.contentType !== undefined) out.contentType = p.contentType;
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Acknowledges an incoming QoS 1/2 PUBLISH: PUBACK or PUBREC (§3.4, §3.5), with a reason code on MQTT 5. */
function ack(conn: Connection, packet: IPublishPacket, reasonCode: number, reason?: string): void {
  const id = packet.messageId!;
  const cmd = packet.qos === 1 ? 'puback' : 'pubrec';
  if (conn.protocolVersion === 5) conn.send({ cmd, messageId: id, reasonCode, ...(reason ? { properties: { reasonString: reason } } : {}) });
  else conn.send({ cmd, messageId: id });
}

/** PUBLISH from the client (§3.3). */
export function handlePublish(conn: Connection, packet: IPublishPacket): void | Promise<void> {
  const broker = conn.broker;
  const v5 = conn.protocolVersion === 5;

  // Topic alias (MQTT 5 §3.3.2.3.4): set up or use an alias the client chose
  let topic = packet.topic;
  const alias = packet.properties?.topicAlias;
  if (alias !== undefined) {
    if (!v5 || alias === 0 || alias > broker.options.topicAliasMaximum) return conn.disconnect(rc.topicAliasInvalid, 'topic alias out of range'); // [MQTT-3.3.2-8]
    if (topic === '') {
      const known = conn.inboundAliases?.get(alias);
      if (known === undefined) return conn.disconnect(rc.protocolError, 'unknown topic alias'); // [MQTT-3.3.4-?]
      topic = known;
    } else {
      (conn.inboundAliases ??= new Map()).set(alias, topic);
    }
  }
  const check = checkTopicName(topic);
  if (!check.ok) return conn.disconnect(rc.topicNameInvalid, check.error); // [MQTT-3.3.2-2]
  if (packet.qos > 0 && (packet.messageId === undefined || packet.messageId === 0)) return conn.disconnect(rc.protocolError, 'missing packet id');

  // QoS 2 duplicate (§4.3.3): the message was taken already; only PUBREC is repeated [MQTT-4.3.3-9],
  // after the first one when that still waits for storage (and with its outcome)
  if (packet.qos === 2 && conn.session!.incomingQos2.has(packet.messageId!)) return conn.inOrder(() => ack(conn, packet, rc.success));
  if (packet.qos === 2 && conn.pendingQos2?.has(packet.messageId!)) {
    return conn.inOrder(() => (conn.session!.incomingQos2.has(packet.messageId!) ? ack(conn, packet, rc.success) : ack(conn, packet, rc.serverBusy, 'the message could not be stored')));
  }

  if (packet.qos > 0) {
    conn.inboundInFlight++;
    // QoS 2 messages count until PUBCOMP: their ids wait in incomingQos2 for PUBREL [MQTT-3.3.4-9]
    const inFlight = conn.inboundInFlight + conn.session!.incomingQos2.size;
    if (v5 && inFlight > broker.options.receiveMaximum) return conn.disconnect(rc.receiveMaximumExceeded, 'receive maximum exceeded');
    // MQTT 3.1.1 has no Receive Maximum: a client with that many unacknowledged is read no more until acknowledgements go out
    if (!v5 && inFlight >= broker.options.receiveMaximum) conn.pauseForAcks();
  }
  if (!broker.rateAllows(conn)) {
    broker.metrics.dropped('rate_limited');
    if (packet.qos > 0) conn.inboundDone();
    return conn.disconnect(rc.messageRateTooHigh, 'publish rate too high');
  }

  const expiry = packet.properties?.messageExpiryInterval;
  const message: BrokerMessage = {
    topic,
    payload: typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload,
    qos: packet.qos,
    retain: packet.retain,
    origin: conn.clientId,
  };
  const props = messageProperties(packet.properties);
  if (props) message.properties = props;
  if (expiry !== undefined) message.expiresAt = broker.clock.now() + expiry * 1000;
  if (props?.payloadFormatIndicator && !isUtf8(message.payload)) {
    // [MQTT-3.3.2-4]: a payload declared UTF-8 that is not
    if (packet.qos > 0) {
      conn.inboundDone();
      return conn.inOrder(() => ack(conn, packet, rc.payloadFormatInvalid, 'payload is not UTF-8'));
    }
    return;
  }

  const outcome = broker.publish(conn, message); // routing pauses this publisher if its subscribers fall behind
  // no promise (and no microtask) when nothing had to wait: the QoS 0 fast path
  if (outcome instanceof Promise) return outcome.then((o) => published(conn, packet, topic, o));
  published(conn, packet, topic, outcome);
}

/** The broker took the PUBLISH, or refused it: acknowledge, or say no (§3.3.4). */
function published(conn: Connection, packet: IPublishPacket, topic: string, outcome: PublishOutcome): void {
  const broker = conn.broker;
  const v5 = conn.protocolVersion === 5;
  if (conn.closed) return;
  if (!outcome.ok) {
    if (packet.qos > 0) conn.inboundDone();
    broker.metrics.publishDenied();
    broker.log.info({ clientId: conn.clientId, topic, reasonCode: outcome.reasonCode, reason: outcome.reason }, 'MQTT publish refused');
    // MQTT 3.1.1 has no way to say no: close [MQTT-3.3.5-2]; MQTT 5 answers with the reason (QoS 0: dropped)
    if (!v5) return conn.close();
    if (packet.qos > 0) conn.inOrder(() => ack(conn, packet, outcome.reasonCode, outcome.reason));
    return;
  }
  if (packet.qos === 0) return;
  const code = outcome.matched === false && v5 ? rc.noMatchingSubscribers : rc.success;
  if (!outcome.stored) {
    conn.inboundDone();
    return conn.inOrder(() => acknowledge(conn, packet, code));
  }
  // The acknowledgement is a promise that the message survives a crash: it waits for storage, while
  // the next packets are handled; acknowledgements still go out in the order of their PUBLISH
  // packets [MQTT-4.6.0-2]
  if (packet.qos === 2) (conn.pendingQos2 ??= new Set()).add(packet.messageId!);
  conn.afterStored(outcome.stored(), (refusal) => {
    conn.inboundDone();
    if (packet.qos === 2) conn.pendingQos2!.delete(packet.messageId!);
    if (!refusal) return acknowledge(conn, packet, code);
    broker.log.warn({ clientId: conn.clientId, topic, reasonCode: refusal.reasonCode, reason: refusal.reason }, 'MQTT publish not acknowledged: the message was not stored');
    if (!v5) return conn.close(); // MQTT 3.1.1 cannot say no: the client publishes again after it reconnects
    ack(conn, packet, refusal.reasonCode, refusal.reason);
  });
}

function acknowledge(conn: Connection, packet: IPublishPacket, code: number): void {
  if (packet.qos === 2) conn.session!.addIncomingQos2(packet.messageId!);
  ack(conn, packet, code);
}

/** PUBREL: the client releases a QoS 2 packet id; PUBCOMP completes it [MQTT-4.3.3-11]. */
export function handlePubrel(conn: Connection, packet: IPubrelPacket): void {
  const id = packet.messageId!;
  const known = conn.session!.deleteIncomingQos2(id);
  if (conn.protocolVersion === 5 && !known) conn.send({ cmd: 'pubcomp', messageId: id, reasonCode: rc.packetIdNotFound });
  else conn.send({ cmd: 'pubcomp', messageId: id });
}

function isUtf8(b: Buffer): boolean {
  return Buffer.from(b.toString('utf8'), 'utf8').equals(b);
}
