import type { Packet } from 'mqtt-packet';
import type { Connection } from '../connection.js';
import { rc } from '../types.js';
import { handleConnect } from './connect.js';
import { handlePublish, handlePubrel } from './publish.js';
import { handlePuback, handlePubcomp, handlePubrec } from './acks.js';
import { handleSubscribe } from './subscribe.js';
import { handleUnsubscribe } from './unsubscribe.js';
import { handleDisconnect } from './disconnect.js';

/** Dispatches one packet. The first packet must be CONNECT [MQTT-3.1.0-1], and only the first [MQTT-3.1.0-2]. */
export function handlePacket(conn: Connection, packet: Packet): void | Promise<void> {
  if (!conn.connected) {
    if (packet.cmd !== 'connect') return conn.close();
    return handleConnect(conn, packet);
  }
  switch (packet.cmd) {
    case 'publish':
      return handlePublish(conn, packet);
    case 'puback':
      return handlePuback(conn, packet);
    case 'pubrec':
      return handlePubrec(conn, packet);
    case 'pubrel':
      return handlePubrel(conn, packet);
    case 'pubcomp':
      return handlePubcomp(conn, packet);
    case 'subscribe':
      return handleSubscribe(conn, packet);
    case 'unsubscribe':
      return handleUnsubscribe(conn, packet);
    case 'pingreq':
      return conn.send({ cmd: 'pingresp' }); // [MQTT-3.12.4-1]
    case 'disconnect':
      return handleDisconnect(conn, packet);
    case 'connect':
      return conn.disconnect(rc.protocolError, 'second CONNECT'); // [MQTT-3.1.0-2]
    default:
      // AUTH without an authentication method, or a packet only a server sends
      return conn.disconnect(rc.protocolError, `unexpected ${packet.cmd}`);
  }
}
