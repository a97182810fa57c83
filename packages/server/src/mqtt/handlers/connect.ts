import { randomBytes } from 'node:crypto';
import type { IConnackPacket, IConnectPacket } from 'mqtt-packet';
import type { Connection, Will } from '../connection.js';
import type { PolicyClient, Verdict } from '../policy.js';
import { checkTopicName } from '../topics.js';
import { rc, v3CodeOf, type ProtocolVersion } from '../types.js';

function refuse(conn: Connection, reasonCode: number, reason?: string, options: { logged?: boolean } = {}): void {
  const packet: IConnackPacket = conn.protocolVersion === 5
    ? { cmd: 'connack', sessionPresent: false, reasonCode, ...(reason ? { properties: { reasonString: reason } } : {}) }
    : { cmd: 'connack', sessionPresent: false, returnCode: v3CodeOf(reasonCode) };
  conn.send(packet);
  conn.broker.metrics.connectRefused(reasonCode);
  if (options.logged !== false) conn.broker.log.info({ clientId: conn.clientId, remote: conn.meta.remoteAddress, reasonCode, reason }, 'MQTT connection refused');
  conn.close(); // [MQTT-3.2.2-5]
}

/** A will is decided like a PUBLISH to its topic, by the topic name rules [MQTT-3.3.2-2] and the policy. */
async function authorizeWill(conn: Connection, client: PolicyClient, will: NonNullable<Will>): Promise<Verdict> {
  const name = checkTopicName(will.topic);
  if (!name.ok) return { ok: false, reasonCode: rc.topicNameInvalid, reason: `will topic: ${name.error}` };
  return (await conn.broker.policy.mayPublish?.(client, will.topic)) ?? { ok: true };
}

/** CONNECT (§3.1): authenticate, take over or resume the session, CONNACK, then resend what is pending. */
export async function handleConnect(conn: Connection, packet: IConnectPacket): Promise<void> {
  const broker = conn.broker;
  const o = broker.options;
  conn.protocolVersion = (packet.protocolVersion ?? 4) as ProtocolVersion; // later packets are decoded at this level
  const v5 = conn.protocolVersion === 5;
  const props = packet.properties ?? {};

  if (!broker.acceptingConnections()) {
    // counted by reason code like every refusal; logged by the broker at most every 10 s
    broker.refusedAtConnectionLimit();
    return refuse(conn, rc.serverBusy, 'too many connections', { logged: false });
  }
  if (props.authenticationMethod) return refuse(conn, 0x8c, 'enhanced authentication is not supported');
  if (v5 && (props.receiveMaximum === 0 || props.maximumPacketSize === 0)) return conn.disconnect(rc.protocolError); // [MQTT-3.1.2-?]: 0 is a protocol error

  // Client identifier (§3.1.3.1): empty means "assign one" — but a 3.1.1 client must then ask for a clean session [MQTT-3.1.3-8]
  let clientId = packet.clientId ?? '';
  let assigned = false;
  if (clientId === '') {
    if (!v5 && packet.clean === false) return refuse(conn, rc.clientIdNotValid, 'an empty client id needs a clean session');
    clientId = `fw-${randomBytes(9).toString('base64url')}`;
    assigned = true;
  }
  if (Buffer.byteLength(clientId) > 256) return refuse(conn, rc.clientIdNotValid, 'client id longer than 256 bytes');
  // [MQTT-1.5.4-2] (3.1.1: [MQTT-1.5.3-2]): no U+0000 in a UTF-8 string; PostgreSQL could not store or look it up either
  if (clientId.includes('\u0000')) return refuse(conn, rc.clientIdNotValid, 'U+0000 is not allowed in a client id');
  if (packet.username?.includes('\u0000')) return refuse(conn, rc.badUsernameOrPassword, 'U+0000 is not allowed in a user name');
  conn.clientId = clientId;

  const auth = await broker.policy.authenticate({ clientId, cleanStart: packet.clean !== false, ...(packet.username !== undefined ? { username: packet.username } : {}), ...(packet.password !== undefined ? { password: packet.password } : {}), meta: conn.meta });
  if (conn.closed) return;
  if (!auth.ok) return refuse(conn, auth.reasonCode, auth.reason);
  conn.identity = auth.identity;

  // Will (§3.1.2.5): refused at CONNECT when its client may not publish there (CONNACK 0x87 or 0x90,
  // §3.2.2.2); kept until the connection ends, and decided again as a PUBLISH when it is sent.
  if (packet.will) {
    const verdict = await authorizeWill(conn, { clientId, identity: auth.identity }, packet.will);
    if (conn.closed) return;
    // MQTT 3.1.1 has no code for a bad topic: 5, not authorized, for any will refused
    if (!verdict.ok) return refuse(conn, v5 ? verdict.reasonCode : rc.notAuthorized, verdict.reason);
    conn.will = packet.will;
  }

  // Keep alive, capped by the server maximum (MQTT 5 tells the client with Server Keep Alive, §3.2.2.3.14)
  let keepAlive = packet.keepalive ?? 0;
  let serverKeepAlive: number | undefined;
  if (o.maxKeepAliveSeconds > 0 && (keepAlive === 0 || keepAlive > o.maxKeepAliveSeconds)) {
    keepAlive = o.maxKeepAliveSeconds;
    serverKeepAlive = keepAlive;
  }

  if (v5) {
    conn.clientReceiveMaximum = props.receiveMaximum ?? 65535;
    conn.clientMaximumPacketSize = props.maximumPacketSize ?? Infinity;
    conn.clientTopicAliasMaximum = props.topicAliasMaximum ?? 0;
  }

  // Session: a 3.1.1 clean session ends at disconnect; a persistent one lasts as long as the broker allows.
  const cleanStart = packet.clean !== false;
  const expirySeconds = v5 ? Math.min(props.sessionExpiryInterval ?? 0, o.maxSessionExpirySeconds) : cleanStart ? 0 : o.maxSessionExpirySeconds;
  const opened = await broker.openSession(conn, cleanStart, expirySeconds);
  if (conn.closed) return;
  if ('refused' in opened) return refuse(conn, rc.clientIdNotValid, opened.refused);
  const { session, present } = opened;

  const connack: IConnackPacket = { cmd: 'connack', sessionPresent: present }; // [MQTT-3.2.2-2], [MQTT-3.2.2-3]
  if (v5) {
    connack.reasonCode = rc.success;
    connack.properties = {
      receiveMaximum: o.receiveMaximum,
      maximumPacketSize: o.maxPacketSize,
      topicAliasMaximum: o.topicAliasMaximum,
      retainAvailable: true,
      wildcardSubscriptionAvailable: true,
      subscriptionIdentifiersAvailable: true,
      sharedSubscriptionAvailable: true,
      ...(assigned ? { assignedClientIdentifier: clientId } : {}),
      ...(serverKeepAlive !== undefined ? { serverKeepAlive } : {}),
      ...(props.sessionExpiryInterval !== undefined && expirySeconds !== props.sessionExpiryInterval ? { sessionExpiryInterval: expirySeconds } : {}),
    };
  } else {
    connack.returnCode = 0;
  }
  conn.connected = true;
  conn.send(connack);
  conn.accepted();
  broker.announceConnected(conn);
  conn.startKeepAlive(keepAlive);
  broker.metrics.connected();
  broker.log.debug({ clientId, protocolVersion: conn.protocolVersion, sessionPresent: present, identity: auth.identity.kind }, 'MQTT client connected');
  // [MQTT-4.4.0-1]: resend unacknowledged messages, then what was queued
  session.resend();
  session.drain(conn.broker.clock.now());
  broker.policy.connected?.({ clientId, identity: auth.identity });
}
