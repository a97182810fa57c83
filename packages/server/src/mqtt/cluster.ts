import { randomBytes } from 'node:crypto';
import type { Logger } from '../core/logger.js';
import type { Bus, LiveSubscription } from '../messaging/bus.js';

/**
 * How broker processes serving the same clients meet: when a client connects to one node, the
 * others take over its old connection and let go of its session, which the new node then reads
 * from the shared store.
 */
export interface ClusterLink {
  /**
   * Tells the other nodes that `clientId` connected here. With `wait`, resolves once a node that
   * held the session has written and released it (or after the timeout: that node may be gone).
   */
  claim(clientId: string, owner: string, wait: boolean): Promise<void>;
  /** What this node does when another claims a client for `owner` (ownerOf); resolves true when it held the client and let go of it, and the link then announces the release. */
  onClaim(handler: (clientId: string, owner: string) => Promise<boolean>): void;
  close(): void;
}

interface ClaimEvent {
  clientId: string;
  node: string;
  owner?: string;
}

/** The cluster link over the message bus's control broadcasts (NATS). */
export function busClusterLink(bus: Bus, nodeId: string, log: Logger, options: { releaseTimeoutMs?: number } = {}): ClusterLink {
  const timeoutMs = options.releaseTimeoutMs ?? 3000;
  const instance = randomBytes(6).toString('hex');
  const waiting = new Map<string, Set<() => void>>();
  let handler: ((clientId: string, owner: string) => Promise<boolean>) | undefined;
  const subs: LiveSubscription[] = [];

  const parse = (data: string): ClaimEvent | undefined => {
    try {
      const e = JSON.parse(data) as Partial<ClaimEvent>;
      return typeof e.clientId === 'string' && typeof e.node === 'string' ? (e as ClaimEvent) : undefined;
    } catch {
      return undefined;
    }
  };

  subs.push(
    bus.onBroadcast('mqtt.claim', (data) => {
      const e = parse(data);
      if (!e || e.node === nodeId || !handler) return;
      handler(e.clientId, e.owner ?? '').then(
        (held) => {
          if (held) bus.broadcast('mqtt.released', JSON.stringify({ clientId: e.clientId, node: nodeId }));
        },
        (err: unknown) => log.error({ err, clientId: e.clientId }, 'releasing an MQTT session to another node failed'),
      );
    }),
    bus.onBroadcast('mqtt.released', (data) => {
      const e = parse(data);
      if (!e || e.node === nodeId) return;
      const ws = waiting.get(e.clientId);
      if (ws) for (const wake of ws) wake();
    }),
    // Two processes under one node id would restore each other's sessions: say so loudly.
    bus.onBroadcast('mqtt.hello', (data) => {
      const [node, from] = data.split(' ');
      if (node === nodeId && from !== instance) log.error({ node: nodeId }, 'another broker process uses this node id: set FLEETWIRE_NODE_ID to a different value in each process');
    }),
  );
  bus.broadcast('mqtt.hello', `${nodeId} ${instance}`);

  return {
    claim(clientId, owner, wait) {
      if (!wait) {
        bus.broadcast('mqtt.claim', JSON.stringify({ clientId, node: nodeId, owner }));
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => {
        let ws = waiting.get(clientId);
        if (!ws) waiting.set(clientId, (ws = new Set()));
        const set = ws;
        const done = () => {
          clearTimeout(timer);
          set.delete(done);
          if (set.size === 0 && waiting.get(clientId) === set) waiting.delete(clientId);
          resolve();
        };
        const timer = setTimeout(() => {
          log.warn({ clientId, timeoutMs }, 'no node released the MQTT session in time; going on with what the store holds');
          done();
        }, timeoutMs);
        set.add(done);
        bus.broadcast('mqtt.claim', JSON.stringify({ clientId, node: nodeId, owner }));
      });
    },
    onClaim(h) {
      handler = h;
    },
    close() {
      for (const s of subs) s.unsubscribe();
    },
  };
}
