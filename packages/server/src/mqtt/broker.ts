import type { Duplex } from 'node:stream';
import { systemClock, type Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { Connection } from './connection.js';
import { noMetrics, type BrokerMetrics } from './metrics.js';
import type { BrokerPolicy, ConnectionMeta, PublishVerdict, StoredCheck } from './policy.js';
import { MemoryRetainedStore, type RetainedStore } from './retained.js';
import { TokenBuckets } from './rate.js';
import { Session, type SessionLimits } from './session.js';
import { SessionJournal, type SessionChange, type SessionRecord, type SessionStore, type StoredSession } from './store.js';
import type { ClusterLink } from './cluster.js';
import { excluded, SubscriptionIndex } from './subscriptions.js';
import { parseSharedFilter } from './topics.js';
import { ownerOf, rc, type BrokerMessage, type SubscriptionOptions } from './types.js';

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
  /** New connections per second from one address (0: unlimited); bursts up to twice that. */
  maxConnectRate: number;
  /** A connection that has not completed its CONNECT this long after it opened is closed (ms). */
  connectTimeoutMs: number;
  /** Largest packet accepted before CONNECT (bytes): the CONNECT itself, with its will and password. */
  maxPreAuthPacketSize: number;
  /** Connections not yet authenticated at once; a new one beyond this closes the oldest. Not counted in `maxConnections`. */
  maxUnauthenticated: number;
  /** Distinct topic filters (shared ones included) one session may hold; more get SUBACK 0x97 (3.1.1: 0x80). */
  maxSubscriptions: number;
  /**
   * Packets of one connection that may wait behind one whose handling waits (a PUBLISH waiting for
   * room on the bus, an authorization waiting for the database); at this many the connection stops
   * reading its socket, so TCP slows the client down instead of our memory holding its packets.
   */
  maxWaitingPackets: number;
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
  maxConnectRate: 0,
  connectTimeoutMs: 10_000,
  maxPreAuthPacketSize: 64 * 1024,
  maxUnauthenticated: 1000,
  maxSubscriptions: 100,
  maxWaitingPackets: 64,
};

/** Where the broker keeps state beyond its memory, and how it meets other nodes. All optional: an in-memory broker has none. */
export interface BrokerState {
  retained?: RetainedStore;
  /** Persistent sessions (expiry > 0) are written here and restored from it. */
  sessions?: SessionStore;
  /** This process's name in the store and on the cluster link. */
  nodeId?: string;
  /** Other broker processes serving the same clients (NATS). */
  cluster?: ClusterLink;
  /** The time source of expiry (sessions, messages), keep-alive and rate limits: the platform's clock; the system clock by default. */
  clock?: Clock;
}

const neverExpires = 0xffffffff;

/** When a session that went away ends, Unix ms (§3.1.2.11.2); undefined while its client is connected or when it never expires. */
function sessionEnd(s: Pick<SessionRecord, 'disconnectedAt' | 'expirySeconds'>): number | undefined {
  if (s.disconnectedAt === undefined || s.expirySeconds === neverExpires) return undefined;
  return s.disconnectedAt + s.expirySeconds * 1000;
}

/** Why a connection that was accepted ended, as presence tells it (docs/presence.md). */
export type ConnectionEnd = 'client_disconnect' | 'keepalive_timeout' | 'connection_lost' | 'taken_over' | 'kicked' | 'revoked' | 'server_shutdown';

/** Told when a client's CONNECT is accepted (CONNACK sent) and when that connection ends. Must not throw and must not wait. */
export interface PresenceObserver {
  connected(conn: Connection): void;
  closed(conn: Connection, why: ConnectionEnd): void;
}

/** What became of a PUBLISH; `stored` (when the policy stores messages) says when it may be acknowledged. */
export type PublishOutcome = { ok: true; matched?: boolean; stored?: StoredCheck } | { ok: false; reasonCode: number; reason?: string };

/**
 * The MQTT broker core. It takes any duplex stream (`handle`) and knows nothing of sockets; a
 * policy decides who may do what and where messages go.
 */
export class Broker {
  readonly options: BrokerOptions;
  readonly sessions = new Map<string, Session>();
  readonly index = new SubscriptionIndex();
  readonly connections = new Set<Connection>();
  /** Connections whose CONNECT has not been accepted yet, oldest first. */
  readonly unauthenticated = new Set<Connection>();
  private evicted = 0;
  private evictedLoggedAt = 0;
  private readonly publishRate: TokenBuckets<Connection>;
  private readonly connectRate: TokenBuckets<string>;
  private floodRefused = 0;
  /** Subscribers found with a full write buffer while one PUBLISH was routed. */
  private congested: Set<Connection> | undefined;
  private floodLoggedAt = 0;
  private readonly willTimers = new Map<string, NodeJS.Timeout>();
  private closing = false;
  readonly retained: RetainedStore;
  readonly nodeId: string;
  private readonly store: SessionStore | undefined;
  private readonly journal: SessionJournal | undefined;
  private readonly cluster: ClusterLink | undefined;
  private purgeTimer: NodeJS.Timeout | undefined;
  readonly clock: Clock;
  // one of each for all sessions, not one per session
  private readonly sessionLimits: SessionLimits;
  private readonly sessionDropped = (reason: string): void => this.metrics.dropped(reason);
  private readonly presenceObservers = new Set<PresenceObserver>();

  constructor(
    readonly policy: BrokerPolicy,
    readonly log: Logger,
    options: Partial<BrokerOptions> = {},
    readonly metrics: BrokerMetrics = noMetrics,
    state: BrokerState = {},
  ) {
    this.options = { ...defaultBrokerOptions, ...options };
    this.sessionLimits = { maxQueued: this.options.maxQueuedPerSession };
    this.clock = state.clock ?? systemClock;
    this.publishRate = new TokenBuckets(this.options.maxPublishRate, this.options.maxPublishRate * 2);
    this.connectRate = new TokenBuckets(this.options.maxConnectRate, this.options.maxConnectRate * 2);
    this.retained = state.retained ?? new MemoryRetainedStore();
    this.nodeId = state.nodeId ?? 'local';
    this.store = state.sessions;
    this.journal = state.sessions ? new SessionJournal(state.sessions, (e, n) => this.log.error({ err: e, changes: n }, 'writing MQTT session state failed')) : undefined;
    this.cluster = state.cluster;
    this.cluster?.onClaim((clientId, owner) => this.release(clientId, owner));
  }

  /**
   * Restores the persistent sessions this node held when it stopped: their subscriptions feed
   * again and their queued messages wait for the clients. Sessions that expired meanwhile are
   * deleted, here and every minute after.
   */
  async start(): Promise<void> {
    if (!this.store) return;
    const now = this.clock.now();
    const purged = await this.store.purgeExpired(now);
    const stored = await this.store.loadNode(this.nodeId);
    for (const s of stored) this.adopt(s, now);
    if (stored.length > 0 || purged > 0) this.log.info({ restored: stored.length, expired: purged, node: this.nodeId }, 'MQTT persistent sessions restored');
    this.purgeTimer = setInterval(() => {
      this.store!.purgeExpired(this.clock.now()).catch((e: unknown) => this.log.warn({ err: e }, 'deleting expired MQTT sessions failed'));
    }, 60_000);
    this.purgeTimer.unref();
  }

  /** Takes a stored session into memory, offline, with its subscriptions in the index. */
  private adopt(stored: StoredSession, now: number): Session {
    const session = this.newSession(stored.clientId, stored);
    const unsaved = session.restore(stored);
    this.journal!.stored(stored.clientId, stored.messages.map((m) => m.seq));
    session.disconnectedAt ??= now; // its node stopped while the client was connected
    for (const [key, opts] of session.subscriptions) this.indexAdd(session, key, opts);
    const record = this.journal!.record.bind(this.journal);
    session.persistTo(record, this.nodeId, false);
    // what restore() changed (a message whose packet id was taken, queued again without it), as a resume on connect writes it
    for (const change of unsaved) record(change);
    this.sessions.set(stored.clientId, session);
    this.armExpiry(session);
    return session;
  }

  private newSession(clientId: string, who: { identity: Session['identity']; protocolVersion: Session['protocolVersion'] }): Session {
    return new Session(clientId, who.identity, who.protocolVersion, this.sessionLimits, this.sessionDropped);
  }

  private expired(stored: StoredSession, now: number): boolean {
    const end = sessionEnd(stored);
    return end !== undefined && end <= now;
  }

  /** Serves one client over a stream. */
  handle(stream: Duplex, meta: ConnectionMeta): Connection | undefined {
    if (meta.remoteAddress !== undefined && !this.connectRate.take(meta.remoteAddress, this.clock.now())) {
      // connect-flood protection: refused before anything is parsed or authenticated
      stream.destroy();
      this.metrics.connectRefused(rc.connectionRateExceeded);
      this.floodRefused++;
      const now = this.clock.now();
      if (now - this.floodLoggedAt >= 10_000) {
        this.log.warn({ remote: meta.remoteAddress, refused: this.floodRefused, perSecond: this.options.maxConnectRate }, 'MQTT connections refused: too many from one address');
        this.floodLoggedAt = now;
        this.floodRefused = 0;
      }
      return undefined;
    }
    if (this.unauthenticated.size >= this.options.maxUnauthenticated) this.evictOldestUnauthenticated();
    const conn = new Connection(this, stream, meta);
    this.connections.add(conn);
    this.unauthenticated.add(conn);
    return conn;
  }

  /**
   * Too many connections wait for their CONNECT: the oldest is closed to make room. A device's
   * CONNECT takes milliseconds, so whoever holds sockets open without one is the one closed, and
   * cannot keep new devices out by filling the pool first (refusing the newest would let it).
   */
  private evictOldestUnauthenticated(): void {
    const oldest = this.unauthenticated.values().next().value;
    if (!oldest) return;
    this.unauthenticated.delete(oldest);
    this.metrics.unauthenticatedClosed('too_many_unauthenticated');
    oldest.abort();
    this.evicted++;
    const now = this.clock.now();
    if (now - this.evictedLoggedAt >= 10_000) {
      this.log.info({ closed: this.evicted, limit: this.options.maxUnauthenticated }, 'MQTT connections without CONNECT closed: too many waiting');
      this.evictedLoggedAt = now;
      this.evicted = 0;
    }
  }

  /** The connection's CONNECT was accepted: it counts as a connection, no longer as waiting for one. */
  authenticated(conn: Connection): void {
    this.unauthenticated.delete(conn);
  }

  /** Observes accepted connections and how they end (presence). Returns the function that stops it. */
  onPresence(observer: PresenceObserver): () => void {
    this.presenceObservers.add(observer);
    return () => this.presenceObservers.delete(observer);
  }

  /** The connection's CONNACK went out: it counts as present from now on. */
  announceConnected(conn: Connection): void {
    conn.announced = true;
    for (const o of this.presenceObservers) o.connected(conn);
  }

  /** Whether one more client may connect: connections that completed CONNECT count, those still waiting for it do not. */
  acceptingConnections(): boolean {
    return !this.closing && this.connections.size - this.unauthenticated.size < this.options.maxConnections;
  }

  /** Refusals at the connection limit since the last log line, and when that was. */
  private refusedAtLimit = { count: 0, loggedAt: -Infinity };

  /**
   * A CONNECT refused because the limit is reached: counted, and logged at most every 10 s (a
   * reconnecting fleet at the limit would otherwise write a line per attempt).
   */
  refusedAtConnectionLimit(): void {
    const r = this.refusedAtLimit;
    r.count++;
    const now = this.clock.now();
    if (now - r.loggedAt < 10_000) return;
    this.log.warn({ refused: r.count, maxConnections: this.options.maxConnections, sinceMs: Number.isFinite(r.loggedAt) ? now - r.loggedAt : undefined }, `MQTT connections refused at the connection limit (${this.options.maxConnections}, FLEETWIRE_MQTT_MAX_CONNECTIONS)`);
    r.count = 0;
    r.loggedAt = now;
  }

  /** Token bucket per connection: `maxPublishRate` per second, bursts of twice that. */
  rateAllows(conn: Connection): boolean {
    return this.publishRate.take(conn, this.clock.now());
  }

  /**
   * Finds or creates the session for a CONNECT. An existing connection with the same client id is
   * taken over [MQTT-3.1.4-3]; clean start discards the old session [MQTT-3.1.2-4].
   */
  async openSession(conn: Connection, cleanStart: boolean, expirySeconds: number): Promise<{ session: Session; present: boolean } | { refused: string }> {
    const id = conn.clientId;
    const owner = ownerOf(conn.identity);
    const foreign = { refused: 'the client id names a session of another device' };
    let session = this.sessions.get(id);
    if (session && ownerOf(session.identity) !== owner) return foreign;
    if (session?.connection) {
      const old = session.connection;
      this.log.info({ clientId: id }, 'MQTT session taken over by a new connection');
      old.disconnect(rc.sessionTakenOver, 'session taken over');
      session = this.sessions.get(id); // closing the old connection may have ended its session
    }
    this.cancelWill(id); // a new connection cancels a pending delayed will (§3.1.3.2.2)

    // Not held here: it may be stored, and held by another node, which lets go of it first.
    let stored: StoredSession | undefined;
    /** The node holding the stored session, if one is stored. */
    let holder: string | undefined;
    /** Whose the stored session is. */
    let storedOwner: string | undefined;
    const lookUp = async (store: SessionStore): Promise<void> => {
      // clean start discards a stored session [MQTT-3.1.2-4]: where it is held and whose it is matter, not what it holds
      if (cleanStart) {
        const held = await store.holder(id);
        holder = held?.nodeId;
        storedOwner = held && ownerOf(held.identity);
      } else {
        stored = await store.load(id);
        holder = stored?.nodeId;
        storedOwner = stored && ownerOf(stored.identity);
      }
    };
    /** A session coming from another node, subscribed here before that node lets go: nothing published meanwhile is missed. */
    let arriving: Session | undefined;
    if (!session) {
      if (this.store) await lookUp(this.store);
      if (storedOwner !== undefined && storedOwner !== owner) return foreign;
      if (this.cluster) {
        const elsewhere = holder !== undefined && holder !== this.nodeId;
        if (elsewhere && !cleanStart) {
          arriving = this.newSession(id, conn);
          for (const [key, opts] of stored!.subscriptions) arriving.setSubscription(key, opts);
          await Promise.all([...arriving.subscriptions].map(([key, opts]) => this.indexAdd(arriving!, key, opts)));
        }
        await this.cluster.claim(id, owner, elsewhere); // a connection elsewhere is taken over [MQTT-3.1.4-3]
        // the session as the other node left it; a clean start ends it whatever it holds (ending a
        // session that is gone meanwhile deletes nothing)
        if (elsewhere && !cleanStart) await lookUp(this.store!);
      }
      session = this.sessions.get(id); // another connection may have come in meanwhile
      if (session && ownerOf(session.identity) !== owner) return foreign;
      if (session?.connection) session.connection.disconnect(rc.sessionTakenOver, 'session taken over');
      session = this.sessions.get(id);
      if (session) stored = holder = undefined;
    }
    if (arriving && (session || !stored)) {
      this.dropFromIndex(arriving);
      arriving = undefined;
    }
    const now = this.clock.now();
    if (cleanStart ? holder !== undefined : stored && this.expired(stored, now)) {
      this.journal!.record({ op: 'end', clientId: id }); // [MQTT-3.1.2-4]
      stored = undefined;
    }
    /** A restored session: what the store lacks of it. */
    let unsaved: SessionChange[] | undefined;
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
    } else if (stored) {
      present = true;
      session = arriving ?? this.newSession(id, conn);
      const indexed = new Set(session.subscriptions.keys());
      unsaved = session.restore(stored);
      this.journal!.stored(id, stored.messages.map((m) => m.seq));
      for (const [key, opts] of session.subscriptions) if (!indexed.has(key)) void this.indexAdd(session, key, opts);
      this.sessions.set(id, session);
    } else {
      session = this.newSession(id, conn);
      this.sessions.set(id, session);
    }
    session.expirySeconds = expirySeconds;
    session.disconnectedAt = undefined;
    session.connection = conn;
    conn.session = session;
    if (this.journal) {
      if (expirySeconds > 0) {
        const record = this.journal.record.bind(this.journal);
        if (session.persistent) session.saveRecord();
        else if (unsaved) {
          // restored from the store, which holds the rest as it is: its row (node, expiry, connected) and what restore() changed
          session.persistTo(record, this.nodeId, false);
          session.saveRecord();
          for (const change of unsaved) record(change);
        } else session.persistTo(record, this.nodeId, true);
        await this.journal.flush(); // CONNACK promises the session [MQTT-3.2.2-2]
      } else if (session.persistent) {
        session.stopPersisting(true);
      }
    }
    if (conn.closed) this.connectionClosed(conn); // the client went away while we waited
    return { session, present };
  }

  private cancelWill(clientId: string): void {
    const willTimer = this.willTimers.get(clientId);
    if (willTimer) {
      clearTimeout(willTimer);
      this.willTimers.delete(clientId);
    }
  }

  /**
   * Another node claims a client: its connection here is taken over, and a persistent session is
   * written and let go of (not ended), for that node to restore.
   */
  private async release(clientId: string, owner: string): Promise<boolean> {
    const session = this.sessions.get(clientId);
    if (!session) return false;
    if (ownerOf(session.identity) !== owner) {
      // another device connected elsewhere with this client id: refused there once it reads the store, never given this one
      this.log.warn({ clientId }, 'another node claimed an MQTT client id held here by another device; kept');
      return false;
    }
    if (session.connection) {
      this.log.info({ clientId }, 'MQTT session taken over by a connection on another node');
      session.connection.disconnect(rc.sessionTakenOver, 'session taken over');
    }
    this.cancelWill(clientId); // as for a takeover here: a delayed will waits no more
    if (this.sessions.get(clientId) !== session) return true; // it ended with its connection
    if (session.expiryTimer) clearTimeout(session.expiryTimer);
    session.saveRecord();
    session.stopPersisting(false);
    this.dropFromIndex(session);
    this.sessions.delete(clientId);
    await this.journal?.flush();
    return true;
  }

  /** A client's PUBLISH (or will): the policy decides, retained messages are kept, then it is routed. */
  publish(conn: Pick<Connection, 'clientId' | 'identity'>, message: BrokerMessage): PublishOutcome | Promise<PublishOutcome> {
    // synchronous unless the policy or the retained store waits: QoS 0 on the open listener never does
    const verdict = this.policy.publish({ clientId: conn.clientId, identity: conn.identity }, message);
    if (verdict instanceof Promise) return verdict.then((v) => this.accept(v, message));
    return this.accept(verdict, message);
  }

  private accept(verdict: PublishVerdict, message: BrokerMessage): PublishOutcome | Promise<PublishOutcome> {
    if (!verdict.ok) return verdict;
    if (message.retain) {
      const { origin: _origin, ...kept } = message;
      return this.retained.set(kept).then(() => this.deliver(verdict, message)); // [MQTT-3.3.1-5]
    }
    return this.deliver(verdict, message);
  }

  private deliver(verdict: PublishVerdict & { ok: true }, message: BrokerMessage): PublishOutcome {
    if (verdict.route === 'broker') return { ok: true, matched: this.route(message) > 0 };
    return verdict.stored ? { ok: true, stored: verdict.stored } : { ok: true };
  }

  /**
   * Delivers a message to every matching local subscription; returns how many sessions got it.
   * Share groups get it here too, unless the policy feeds them on their own (across nodes).
   */
  route(message: BrokerMessage): number {
    if (message.expiresAt !== undefined && message.expiresAt <= this.clock.now()) return 0;
    const deliveries = this.index.match(message.topic, message.origin, message.qos, !this.policy.feedsShareGroups);
    this.congested = undefined;
    for (const d of deliveries) {
      // [MQTT-3.3.1-9]/[MQTT-3.3.1-13]: forwarded messages carry RETAIN only with Retain As Published
      d.session.deliver(message, d.qos, d.retainAsPublished && message.retain, d.subscriptionIds);
    }
    // flow control: the publisher, when it is connected here, reads no more until its slow subscribers catch up
    const slow = this.congested;
    this.congested = undefined;
    if (slow && message.origin !== undefined) this.sessions.get(message.origin)?.connection?.waitFor(slow);
    return deliveries.length;
  }

  /** Resolves once what a persistent session recorded so far is in the store (at once for any other session). */
  async persisted(session: Session): Promise<void> {
    if (session.persistent) await this.journal?.flush();
  }

  /** A subscriber that does not keep up met the message being routed (Connection.sendPublish, during route). */
  noteCongested(conn: Connection): void {
    (this.congested ??= new Set()).add(conn);
  }

  /** A message for one share group (the policy picked this node for it): one local member gets it (§4.8.2). */
  routeShared(filter: string, group: string, message: BrokerMessage): boolean {
    if (message.expiresAt !== undefined && message.expiresAt <= this.clock.now()) return false;
    const d = this.index.matchGroup(filter, group, message.qos);
    if (!d) return false;
    d.session.deliver(message, d.qos, d.retainAsPublished && message.retain, d.subscriptionIds);
    return true;
  }

  subscribe(session: Session, key: string, filter: string, opts: SubscriptionOptions, group?: string): void {
    session.setSubscription(key, opts);
    session.recordSubscription(key, opts);
    this.indexAdd(session, key, opts, filter, group);
  }

  unsubscribe(session: Session, key: string, filter: string, group?: string): void {
    session.deleteSubscription(key);
    session.recordSubscription(key, undefined);
    this.indexRemove(session, filter, group);
  }

  /** Adds a subscription to the index; the policy starts feeding a filter (or share group) it did not feed yet. */
  private indexAdd(session: Session, key: string, opts: SubscriptionOptions, filter?: string, group?: string): Promise<void> | void {
    if (filter === undefined) ({ filter, group } = splitKey(key));
    const fresh = group === undefined ? !this.index.hasPlain(filter) : !this.index.hasGroup(filter, group);
    this.index.add(session, filter, opts, group);
    if (fresh) return this.policy.watch?.(filter, group);
  }

  private indexRemove(session: Session, filter: string, group?: string): void {
    this.index.remove(session, filter, group);
    if (group === undefined ? !this.index.hasPlain(filter) : !this.index.hasGroup(filter, group)) this.policy.unwatch?.(filter, group);
  }

  private dropFromIndex(session: Session): void {
    for (const key of session.subscriptions.keys()) {
      const { filter, group } = splitKey(key);
      this.indexRemove(session, filter, group);
    }
  }

  /**
   * The policy found a client no longer allowed what it holds: its connection is closed with the
   * reason (MQTT 5: DISCONNECT first), and either the whole session ends (`'session'`: nothing is
   * kept for a later connection) or the session loses the subscriptions given by key.
   */
  cutOff(session: Session, reasonCode: number, reason: string, drop: 'session' | readonly string[], end: 'kicked' | 'revoked' = 'kicked'): void {
    if (drop !== 'session') {
      for (const key of drop) {
        if (!session.subscriptions.has(key)) continue;
        const { filter, group } = splitKey(key);
        this.unsubscribe(session, key, filter, group);
      }
    }
    if (session.connection) {
      this.log.info({ clientId: session.clientId, reasonCode, reason }, 'MQTT client cut off');
      session.connection.endReason = end;
      session.connection.disconnect(reasonCode, reason);
    }
    // a clean session ended with its connection already
    if (drop === 'session' && this.sessions.get(session.clientId) === session) this.endSession(session);
  }

  /** Retained messages matching a new subscription, sent with RETAIN set [MQTT-3.3.1-8]. */
  async sendRetained(conn: Connection, filter: string, opts: SubscriptionOptions): Promise<void> {
    const now = this.clock.now();
    for (const m of await this.retained.match(filter)) {
      if (m.expiresAt !== undefined && m.expiresAt <= now) continue;
      if (m.topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) continue; // [MQTT-4.7.2-1]
      if (excluded(opts, m.topic)) continue;
      conn.session?.deliver(m, Math.min(m.qos, opts.qos) as 0 | 1 | 2, true, opts.subscriptionId ? [opts.subscriptionId] : undefined);
    }
  }

  private endSession(session: Session): void {
    if (session.expiryTimer) clearTimeout(session.expiryTimer);
    session.stopPersisting(true);
    this.dropFromIndex(session);
    session.clearSubscriptions();
    if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId);
  }

  /** Ends an offline session when its expiry interval has passed (§3.1.2.11.2). */
  private armExpiry(session: Session): void {
    const end = sessionEnd(session); // both callers set disconnectedAt first
    if (end === undefined) return;
    session.expiryTimer = setTimeout(() => this.endSession(session), Math.max(0, end - this.clock.now()));
    session.expiryTimer.unref();
  }

  /** Called once per connection when it closes: will message, session expiry. */
  connectionClosed(conn: Connection): void {
    if (conn.announced) {
      conn.announced = false; // told once
      const why = conn.endReason ?? 'connection_lost';
      for (const o of this.presenceObservers) o.closed(conn, why);
    }
    this.connections.delete(conn);
    this.unauthenticated.delete(conn);
    this.publishRate.delete(conn);
    const session = conn.session;
    if (!session || session.connection !== conn) return;
    session.connection = undefined;
    session.disconnectedAt = this.clock.now();
    if (conn.will && !conn.normalDisconnect) this.scheduleWill(conn, session.expirySeconds);
    if (session.expirySeconds === 0) return this.endSession(session);
    session.saveRecord();
    this.armExpiry(session);
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
      if (p.messageExpiryInterval !== undefined) message.expiresAt = this.clock.now() + p.messageExpiryInterval * 1000;
    }
    const who = { clientId: conn.clientId, identity: conn.identity };
    const send = () => {
      this.willTimers.delete(conn.clientId);
      Promise.resolve(this.publish(who, message)).then(
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

  /** Disconnects everyone (MQTT 5: reason 0x8B server shutting down) and writes what persistent sessions hold. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    for (const conn of [...this.connections]) conn.disconnect(rc.serverShuttingDown, 'server shutting down');
    for (const t of this.willTimers.values()) clearTimeout(t);
    for (const s of this.sessions.values()) if (s.expiryTimer) clearTimeout(s.expiryTimer);
    await this.journal?.flush();
    this.cluster?.close();
    this.policy.close?.();
  }
}

/** A subscription key: the filter, or `$share/<group>/<filter>` (§4.8.2; checked at SUBSCRIBE). */
export function splitKey(key: string): { filter: string; group?: string } {
  const shared = parseSharedFilter(key);
  return shared && !('error' in shared) ? shared : { filter: key };
}
