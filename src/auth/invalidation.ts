import type { Bus } from '../messaging/bus.js';
import type { AccessInvalidation } from './decision.js';

type Event = { t: 'device'; id: string } | { t: 'connections'; ids: string[] } | { t: 'channel'; id: string } | { t: 'all' };

export const authzTopic = 'authz';

/**
 * Invalidation that reaches every process on the bus: each change is broadcast and every process
 * (this one included, through the same path) drops what its cache holds. With the in-process bus
 * this is a plain local call.
 */
export function broadcastInvalidation(local: AccessInvalidation, bus: Bus): AccessInvalidation & { stop(): void } {
  const sub = bus.onBroadcast(authzTopic, (data) => {
    let e: Event;
    try {
      e = JSON.parse(data) as Event;
    } catch {
      return;
    }
    switch (e.t) {
      case 'device':
        return local.invalidateDevice(e.id);
      case 'connections':
        return local.invalidateConnections(e.ids);
      case 'channel':
        return local.invalidateChannel(e.id);
      case 'all':
        return local.invalidateAll();
    }
  });
  const send = (e: Event) => bus.broadcast(authzTopic, JSON.stringify(e));
  return {
    // Local first, so that this process never answers from a stale entry after its own change.
    invalidateDevice: (id) => (local.invalidateDevice(id), send({ t: 'device', id })),
    invalidateConnections: (ids) => {
      const list = [...ids];
      local.invalidateConnections(list);
      send({ t: 'connections', ids: list });
    },
    invalidateChannel: (id) => (local.invalidateChannel(id), send({ t: 'channel', id })),
    invalidateAll: () => (local.invalidateAll(), send({ t: 'all' })),
    stop: () => sub.unsubscribe(),
  };
}
