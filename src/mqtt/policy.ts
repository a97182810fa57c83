import type { BrokerMessage, ClientIdentity } from './types.js';

/** What a transport knows about a connection before CONNECT. */
export interface ConnectionMeta {
  transport: 'tcp' | 'tls' | 'ws' | 'memory';
  remoteAddress?: string;
  /** Set by the TLS transport when the client presented a certificate the listener's CA verified: its CN. */
  certificateCn?: string;
}

export interface ConnectRequest {
  clientId: string;
  username?: string;
  password?: Buffer;
  meta: ConnectionMeta;
}

export type Verdict = { ok: true } | { ok: false; reasonCode: number; reason?: string };

/** The client a policy decides for. */
export interface PolicyClient {
  clientId: string;
  identity: ClientIdentity;
}

/**
 * Who may connect, publish and subscribe, and where published messages go. The broker core knows
 * nothing of devices or channels; a policy does (Fleetwire's, or the open listener's ACL file).
 */
export interface BrokerPolicy {
  authenticate(req: ConnectRequest): Promise<{ ok: true; identity: ClientIdentity } | { ok: false; reasonCode: number; reason?: string }>;
  /**
   * Decides on a PUBLISH and takes the message on. `route: 'broker'` asks the broker to deliver it
   * to its subscribers itself; `route: 'policy'` means the policy delivers it (e.g. through the
   * message bus, which feeds it back to every node's broker).
   */
  publish(client: PolicyClient, message: BrokerMessage): Promise<({ ok: true; route: 'broker' | 'policy' }) | { ok: false; reasonCode: number; reason?: string }>;
  subscribe(client: PolicyClient, filter: string): Promise<Verdict>;
  /** The first local subscription to `filter` appeared: start feeding matching messages to the broker. */
  watch?(filter: string): void;
  /** The last local subscription to `filter` went away. */
  unwatch?(filter: string): void;
}
