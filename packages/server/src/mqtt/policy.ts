import type { BrokerMessage, ClientIdentity } from './types.js';

/** What a transport knows about a connection before CONNECT. */
export interface ConnectionMeta {
  transport: 'tcp' | 'tls' | 'ws' | 'memory';
  remoteAddress?: string;
  /** Set by the TLS transport when the client presented a certificate the listener's CA verified: its CN. */
  certificateCn?: string;
  /** Set with certificateCn when the platform issued the certificate (docs/identity.md): its serial, lowercase hex. */
  certificateSerial?: string;
}

export interface ConnectRequest {
  clientId: string;
  /** Clean Start (3.1.1: Clean Session): the client keeps no session from an earlier connection. */
  cleanStart: boolean;
  username?: string;
  password?: Buffer;
  meta: ConnectionMeta;
}

export type Verdict = { ok: true } | { ok: false; reasonCode: number; reason?: string };

/** A subscription may be granted without some topics its filter covers (`exclude`: topic filters). */
export type SubscribeVerdict = { ok: true; exclude?: string[] } | { ok: false; reasonCode: number; reason?: string };

/**
 * A policy's answer to a PUBLISH; synchronous when it needs nothing slow (the open listener's ACL).
 * `stored`, when given, says when the message survives a crash: QoS 1/2 acknowledgements wait for it.
 */
export type PublishVerdict = { ok: true; route: 'broker' | 'policy'; stored?: StoredCheck } | Refusal;

export type Refusal = { ok: false; reasonCode: number; reason?: string };

/** Resolves once the message is durable (undefined), or with why it will not be (never rejects). */
export type StoredCheck = () => Promise<Refusal | undefined>;

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
  publish(client: PolicyClient, message: BrokerMessage): PublishVerdict | Promise<PublishVerdict>;
  subscribe(client: PolicyClient, filter: string): Promise<SubscribeVerdict>;
  /**
   * Whether the client may publish to `topic` (a valid topic name), without publishing: asked for
   * the will at CONNECT, which is refused when it says no. The will is decided again, as a PUBLISH,
   * when it is sent. Without this hook every topic is accepted at CONNECT.
   */
  mayPublish?(client: PolicyClient, topic: string): Verdict | Promise<Verdict>;
  /**
   * The first local subscription to `filter` (with `group`: the first local member of that share
   * group) appeared: start feeding matching messages to the broker (`route`, or `routeShared`).
   * Resolves once the feed runs.
   */
  watch?(filter: string, group?: string): void | Promise<void>;
  /** The last local subscription to `filter` (or member of the share group) went away. */
  unwatch?(filter: string, group?: string): void;
  /** A subscription was granted and SUBACK sent (after the retained messages): e.g. send what the filter is owed now. */
  subscribed?(client: PolicyClient, filter: string): void;
  /** A connection was accepted (CONNACK sent, what its session held resent): its session's subscriptions are in place. */
  connected?(client: PolicyClient): void;
  /**
   * True when the policy feeds each share group on its own, so that a message reaches one member
   * across all nodes (`Broker.routeShared`); the broker's `route` then leaves share groups out.
   */
  readonly feedsShareGroups?: boolean;
  /** The broker closes: stop what the policy started (listeners). */
  close?(): void;
}
