import type { PresenceService } from '../presence/index.js';
import type { Broker } from './broker.js';
import type { Connection } from './connection.js';

/**
 * Tells presence of the broker's device connections: each accepted one, and how it ended. Only
 * queues (PresenceService writes in batches): nothing on the CONNECT path waits for the database.
 */
export function reportPresence(broker: Broker, presence: PresenceService): () => void {
  const keys = new WeakMap<Connection, string>();
  return broker.onPresence({
    connected(conn) {
      const id = conn.identity;
      if (id.kind !== 'device') return; // enrolment connections are no device's presence
      keys.set(conn, presence.connected({ deviceId: id.deviceId, orgId: id.orgId, clientId: conn.clientId, protocol: 'mqtt' }));
    },
    closed(conn, why) {
      const key = keys.get(conn);
      if (key === undefined) return;
      keys.delete(conn);
      presence.disconnected(key, why);
    },
  });
}
