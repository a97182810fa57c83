import type { IPubackPacket, IPubcompPacket, IPubrecPacket } from 'mqtt-packet';
import type { Connection } from '../connection.js';

/** PUBACK from the client: a QoS 1 message we sent is done (§4.3.2). */
export function handlePuback(conn: Connection, packet: IPubackPacket): void {
  conn.session?.acknowledge(packet.messageId!, conn.broker.clock.now());
}

/** PUBREC: the client has our QoS 2 message; we answer PUBREL [MQTT-4.3.3-4]. */
export function handlePubrec(conn: Connection, packet: IPubrecPacket): void {
  const id = packet.messageId!;
  if ((packet.reasonCode ?? 0) >= 0x80) {
    // a failure PUBREC ends the exchange (MQTT 5 §4.3.3)
    conn.session?.acknowledge(id, conn.broker.clock.now());
    return;
  }
  if (conn.session?.received(id)) conn.send({ cmd: 'pubrel', messageId: id });
  else conn.send({ cmd: 'pubrel', messageId: id, ...(conn.protocolVersion === 5 ? { reasonCode: 0x92 } : {}) });
}

/** PUBCOMP: our QoS 2 message is complete. */
export function handlePubcomp(conn: Connection, packet: IPubcompPacket): void {
  conn.session?.acknowledge(packet.messageId!, conn.broker.clock.now());
}
