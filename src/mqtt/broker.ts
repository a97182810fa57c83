import type { Duplex } from 'node:stream';
import type { Logger } from '../core/logger.js';
import { Connection } from './connection.js';
import { noMetrics, type BrokerMetrics } from './metrics.js';
import type { BrokerPolicy, ConnectionMeta } from './policy.js';
import { MemoryRetainedStore, type RetainedStore } from './retained.js';
import { Session } from './session.js';
import { SubscriptionIndex } from './subscriptions.js';
import { rc, type BrokerMessage, type SubscriptionOptions } from './types.js';

export interface BrokerOptions {
  /** Largest packet accepted (bytes); announced to MQTT 5 clients as Maximum Packet Size. */
  maxPacketSize: number;
  /** QoS 1/2 PUBLISH packets a client may have unacknowledged towards us (Receive Maximum). */
  receiveMaximum: number;
  topicAliasMaximum: number;
  maximumQoS: 0 | 1 | 2;
  /** Keep-alive the server imposes at most (seconds); 0: whatever the client asks. */
  maxKeepAliveSeconds: number;
  /** Longest session expiry granted (seconds); also the lifetime of MQTT 3.1.1 persistent sessions. */
  maxSessionExpirySeconds: number;
  /** Messages queued per session (offline, or over the client's receive maximum). */
  maxQueuedPerSession: number;
  /** Bytes waiting in a connection's write buffer before the client is dropped as a slow consumer. */
  maxWriteBuffer: number;
  maxConnections: number;
  /** PUBLISH packets per second per client (0: unlimited); bursts up to twice that. */
  maxPublishRate: number;
}

export const defaultBrokerOptions: BrokerOptions = {
  maxPacketSize: 256 * 1024 + 1024,
  receiveMaximum: 1024,
  topicAliasMaximum: 64,
  maximumQoS: 2,
  maxKeepAliveSeconds: 0,
  maxSessionExpirySeconds: 7 * 86_400,
  maxQueuedPerSession: 1000,
  maxWriteBuffer: 8 * 1024 * 1024,
  maxConnections: 100_000,
  maxPublishRate: 0,
};

export type PublishOutcome = { ok: true; matched?: boolean } | { ok: false; reasonCode: number; reason?: string };

/**
 * The MQTT broker core. It takes any duplex stream (`handle`) and knows nothing of sockets; a
 * policy decides who may do what and where messages go.
 */
export class Broker {
  readonly options: BrokerOptions;
  readonly sessions = new Map<string, Session>();
  readonly index = new SubscriptionIndex();
  readonly connections = new Set<Connection>();
  private readonly rate = new WeakMap<Connection, { tokens: number; at: number }>();
  private readonly willTimers = new Map<string, NodeJS.Timeout>();
  private closing = false;

  constructor(
    readonly policy: BrokerPolicy,
    readonly log: Logger,
    options: Partial<BrokerOptions> = {},
    readonly metrics: BrokerMetrics = noMetrics,
    readonly retained: RetainedStore = new MemoryRetainedStore(),
  ) {
    this.options = { ...defaultBrokerOptions, ...options };
  }

  /** Serves one client over a stream. */
  handle(stream: Duplex, meta: ConnectionMeta): Connection {
    const conn = new Connection(this, stream, meta);
    this.connections.add(conn);
    return conn;
  }

  acceptingConnections(): boolean {
    return !this.closing && this.connections.size <= this.options.maxConnections;
  }

  /** Token bucket per connection: `maxPublishRate` per second, bursts of twice that. */
  rateAllows(conn: Connection): boolean {
    const limit = this.options.maxPublishRate;
    if (limit <= 0) return true;
    const now = Date.now();
    const b = this.rate.get(conn) ?? { tokens: limit * 2, at: now };
    b.tokens = Math.min(limit * 2, b.tokens + ((now - b.at) / 1000) * limit);
    b.at = now;
    this.rate.set(conn, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /**
   * Finds or creates the session for a CONNECT. An existing connection with the same client id is
   * taken over [MQTT-3.1.4-3]; clean start discards the old session [MQTT-3.1.2-4].
   */
  openSession(conn: Connection, cleanStart: boolean, expirySeconds: number): { session: Session; present: boolean } {
    const id = conn.clientId;
    let session = this.sessions.get(id);
    if (session?.connection) {
      const old = session.connection;
      this.log.info({ clientId: id }, 'MQTT session taken over by a new connection');
      old.disconnect(rc.sessionTakenOver, 'session taken over');
      session = this.sessions.get(id); // closing the old connection may have ended its session
    }
    // a new connection cancels a pending delayed will (§3.1.3.2.2)
    const willTimer = this.willTimers.get(id);
    if (willTimer) {
      clearTimeout(willTimer);
      this.willTimers.delete(id);
    }
    let present = false;
    if (session && cleanStart) {
      this.endSession(session);
      session = undefined;
    }
    if (session) {
      present = true;
      if (session.expiryTimer) clearTimeout(session.expiryTimer);
      session.identity = conn.identity;
      session.protocolVersion = conn.protocolVersion;
    } else {
      session = new Session(id, conn.identity, conn.protocolVersion, { maxQueued: this.options.maxQueuedPerSession }, (reason) => this.metrics.dropped(reason));
      this.sessions.set(id, session);
    }
    session.expirySeconds = expirySeconds;
    session.connection = conn;
    conn.session = session;
    return { session, present };
  }

  /** A client's PUBLISH (or will): the policy decides, retained messages are kept, then it is routed. */
  async publish(conn: Pick<Connection, 'clientId' | 'identity'>, message: BrokerMessage): Promise<PublishOutcome> {
    const verdict = await this.policy.publish({ clientId: conn.clientId, identity: conn.identity }, message);
    if (!verdict.ok) return verdict;
    if (message.retain) await this.retained.set({ ...message, origin: undefined } as BrokerMessage); // [MQTT-3.3.1-5]
    if (verdict.route === 'broker') return { ok: true, matched: this.route(message) > 0 };
    return { ok: true };
  }

  /** Delivers a message to every matching local subscription; returns how many sessions got it. */
  route(message: BrokerMessage): number {
    if (message.expiresAt !== undefined && message.expiresAt <= Date.now()) return 0;
    const deliveries = this.index.match(message.topic, message.origin, message.qos);
    for (const d of deliveries) {
      // [MQTT-3.3.1-9]/[MQTT-3.3.1-13]: forwarded messages carry RETAIN only with Retain As Published
      d.session.deliver(message, d.qos, d.retainAsPublished && message.retain, d.subscriptionIds);
    }
    return deliveries.length;
  }

  subscribe(session: Session, key: string, filter: string, opts: SubscriptionOptions, group?: string): void {
    const fresh = !this.index.hasFilter(filter);
    session.subscriptions.set(key, opts);
    this.index.add(session, filter, opts, group);
    if (fresh) this.policy.watch?.(filter);
  }

  unsubscribe(session: Session, key: string, filter: string, group?: string): void {
    session.subscriptions.delete(key);
    this.index.remove(session, filter, group);
    if (!this.index.hasFilter(filter)) this.policy.unwatch?.(filter);
  }

  /** Retained messages matching a new subscription, sent with RETAIN set [MQTT-3.3.1-8]. */
  async sendRetained(conn: Connection, filter: string, opts: SubscriptionOptions): Promise<void> {
    const now = Date.now();
    for (const m of await this.retained.match(filter)) {
      if (m.expiresAt !== undefined && m.expiresAt <= now) continue;
      if (m.topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) continue; // [MQTT-4.7.2-1]
      conn.session?.deliver(m, Math.min(m.qos, opts.qos) as 0 | 1 | 2, true, opts.subscriptionId ? [opts.subscriptionId] : undefined);
    }
  }

  private endSession(session: Session): void {
    if (session.expiryTimer) clearTimeout(session.expiryTimer);
    for (const key of [...session.subscriptions.keys()]) {
      const shared = key.startsWith('$share/') ? key.split('/') : undefined;
      if (shared) this.unsubscribe(session, key, shared.slice(2).join('/'), shared[1]);
      else this.unsubscribe(session, key, key);
    }
    if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId);
  }

  /** Called once per connection when it closes: will message, session expiry. */
  connectionClosed(conn: Connection): void {
    this.connections.delete(conn);
    const session = conn.session;
    if (!session || session.connection !== conn) return;
    session.connection = undefined;
    if (conn.will && !conn.normalDisconnect) this.scheduleWill(conn, session.expirySeconds);
    if (session.expirySeconds === 0) this.endSession(session);
    else if (session.expirySeconds !== 0xffffffff) {
      session.expiryTimer = setTimeout(() => this.endSession(session), session.expirySeconds * 1000);
      session.expiryTimer.unref();
    }
  }

  /** Publishes the will now, or after the will delay (MQTT 5, capped by the session expiry) unless the client comes back [MQTT-3.1.3-9]. */
  private scheduleWill(conn: Connection, sessionExpirySeconds: number): void {
    const will = conn.will!;
    const delay = Math.min(will.properties?.willDelayInterval ?? 0, sessionExpirySeconds);
    const message: BrokerMessage = {
      topic: will.topic,
      payload: typeof will.payload === 'string' ? Buffer.from(will.payload) : will.payload,
      qos: (will.qos ?? 0) as 0 | 1 | 2,
      retain: will.retain ?? false,
    };
    const p = will.properties;
    if (p) {
      const props: NonNullable<BrokerMessage['properties']> = {};
      if (p.payloadFormatIndicator !== undefined) props.payloadFormatIndicator = p.payloadFormatIndicator;
      if (p.contentType !== undefined) props.contentType = p.contentType;
      if (p.responseTopic !== undefined) props.responseTopic = p.responseTopic;
      if (p.correlationData !== undefined) props.correlationData = p.correlationData;
      if (p.userProperties !== undefined) props.userProperties = p.userProperties;
      if (Object.keys(props).length > 0) message.properties = props;
      if (p.messageExpiryInterval !== undefined) message.expiresAt = Date.now() + p.messageExpiryInterval * 1000;
    }
    const who = { clientId: conn.clientId, identity: conn.identity };
    const send = () => {
      this.willTimers.delete(conn.clientId);
      this.publish(who, message).then(
        (o) => {
          if (!o.ok) this.log.info({ clientId: who.clientId, topic: message.topic }, 'will message refused');
        },
        (e: unknown) => this.log.error({ err: e, clientId: who.clientId }, 'publishing a will failed'),
      );
    };
    if (delay <= 0 || this.closing) return send();
    const timer = setTimeout(send, delay * 1000);
    timer.unref();
    this.willTimers.set(conn.clientId, timer);
  }

  /** Disconnects everyone (MQTT 5: reason 0x8B server shutting down). */
  async close(): Promise<void> {
    this.closing = true;
    for (const conn of [...this.connections]) conn.disconnect(rc.serverShuttingDown, 'server shutting down');
    for (const t of this.willTimers.values()) clearTimeout(t);
    for (const s of this.sessions.values()) if (s.expiryTimer) clearTimeout(s.expiryTimer);
  }
}
