import type { IDisconnectPacket } from 'mqtt-packet';
import type { Connection } from '../connection.js';
import { rc } from '../types.js';

/** DISCONNECT from the client (§3.14). */
export function handleDisconnect(conn: Connection, packet: IDisconnectPacket): void {
  const expiry = packet.properties?.sessionExpiryInterval;
  if (conn.protocolVersion === 5 && expiry !== undefined && conn.session) {
    // [MQTT-3.14.2-2]: a session that was to end at disconnect may not be given an expiry now
    if (conn.session.expirySeconds === 0 && expiry !== 0) return conn.disconnect(rc.protocolError, 'session expiry cannot be set at disconnect');
    conn.session.expirySeconds = Math.min(expiry, conn.broker.options.maxSessionExpirySeconds);
  }
  // Reason 0x04 asks for the will to be published anyway; any other DISCONNECT discards it [MQTT-3.14.4-3]
  conn.normalDisconnect = (packet.reasonCode ?? 0) !== rc.disconnectWithWill;
  conn.endReason = 'client_disconnect';
  conn.close();
}
