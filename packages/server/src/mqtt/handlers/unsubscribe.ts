import type { IUnsubscribePacket } from 'mqtt-packet';
import type { Connection } from '../connection.js';
import { parseSharedFilter } from '../topics.js';
import { rc } from '../types.js';

/** UNSUBSCRIBE (§3.10): removes each filter; MQTT 5 says per filter whether it existed. */
export function handleUnsubscribe(conn: Connection, packet: IUnsubscribePacket): void {
  const session = conn.session!;
  const codes: number[] = [];
  for (const topic of packet.unsubscriptions) {
    const shared = parseSharedFilter(topic);
    const group = shared && !('error' in shared) ? shared : undefined;
    if (session.subscriptions.has(topic)) {
      conn.broker.unsubscribe(session, topic, group ? group.filter : topic, group?.group);
      codes.push(rc.success);
    } else {
      codes.push(rc.noSubscriptionExisted);
    }
  }
  if (conn.protocolVersion === 5) conn.send({ cmd: 'unsuback', messageId: packet.messageId!, granted: codes });
  else conn.send({ cmd: 'unsuback', messageId: packet.messageId!, granted: [] }); // [MQTT-3.10.4-4]
}
