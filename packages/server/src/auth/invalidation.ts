import { onJsonBroadcast, type Broadcasts } from '../core/broadcast.js';
import type { AccessInvalidation } from './decision.js';

type Event = { t: 'device'; id: string } | { t: 'connections'; ids: string[] } | { t: 'channel'; id: string } | { t: 'all' };

export const authzTopic = 'authz';

/**
 * Something that may have taken access away: these devices changed (status, secret, deletion,
 * connections), a channel was deleted, or everything (an organization was deleted). Transports
 * re-check the live sessions it concerns through the DeviceAuthorizer, which reads fresh by then,
 * and end those no longer allowed. A change that grants access is announced too: the re-check
 * then ends nothing. Anything else that takes access away (a revoked certificate) only needs the
 * authorizer to refuse the credential and a call to invalidateDevice: the sessions follow.
 */
export type AccessChange = { kind: 'devices'; deviceIds: ReadonlySet<string> } | { kind: 'channel'; channelId: string } | { kind: 'all' };

/** Whether a change may concern a session of this device (undefined: a user's session) on this channel. */
export function concerns(change: AccessChange, deviceId: string | undefined, channelId: string): boolean {
  switch (change.kind) {
    case 'devices':
      return deviceId !== undefined && change.deviceIds.has(deviceId);
    case 'channel':
      return change.channelId === channelId;
    case 'all':
      return true;
  }
}

/** Where transports hear of access changes, in every process, after this process's cache dropped what they concern. */
export interface AccessChanges {
  /** Returns the function that stops listening. */
  onChange(listener: (change: AccessChange) => void): () => void;
}

function changeOf(e: Event): AccessChange {
  switch (e.t) {
    case 'device':
      return { kind: 'devices', deviceIds: new Set([e.id]) };
    case 'connections':
      return { kind: 'devices', deviceIds: new Set(e.ids) };
    case 'channel':
      return { kind: 'channel', channelId: e.id };
    case 'all':
      return { kind: 'all' };
  }
}

/**
 * Invalidation that reaches every process on the bus: each change is broadcast and every process
 * (this one included, through the same path) drops what its cache holds, then tells its access
 * listeners, at once and again after `settleMs`. With the in-process bus this is a plain local call.
 */
export function broadcastInvalidation(local: AccessInvalidation, bus: Broadcasts, options: { settleMs: number } = { settleMs: 500 }): AccessInvalidation & AccessChanges & { stop(): void } {
  const listeners = new Set<(change: AccessChange) => void>();
  const tell = (change: AccessChange) => {
    for (const l of listeners) {
      try {
        l(change);
      } catch {
        // one listener's failure is its own
      }
    }
  };
  const sub = onJsonBroadcast<Event>(bus, authzTopic, (e) => {
    switch (e.t) {
      case 'device':
        local.invalidateDevice(e.id);
        break;
      case 'connections':
        local.invalidateConnections(e.ids);
        break;
      case 'channel':
        local.invalidateChannel(e.id);
        break;
      case 'all':
        local.invalidateAll();
        break;
      default:
        return;
    }
    const change = changeOf(e);
    tell(change);
    // once more a moment later, for the sessions that were being opened (authorised before the
    // change, not yet registered) while it happened
    setTimeout(tell, options.settleMs, change).unref();
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
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop: () => {
      sub.unsubscribe();
      listeners.clear();
    },
  };
}
