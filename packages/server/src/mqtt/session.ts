import type { IPublishPacket } from 'mqtt-packet';
import type { Connection } from './connection.js';
import type { SessionChange, SessionRecord, StoredSession } from './store.js';
import type { BrokerMessage, ClientIdentity, ProtocolVersion, SubscriptionOptions } from './types.js';

/** A message on its way to this session's client, QoS 1 or 2, with the state of its handshake (§4.3). */
interface Outgoing {
  seq: number;
  message: BrokerMessage;
  qos: 1 | 2;
  retain: boolean;
  subscriptionIds: number[] | undefined;
  /** QoS 2 after PUBREC: only PUBREL remains to be sent/acknowledged. */
  released: boolean;
}

interface Queued {
  seq: number;
  message: BrokerMessage;
  qos: 0 | 1 | 2;
  retain: boolean;
  subscriptionIds: number[] | undefined;
}

export interface SessionLimits {
  /** Messages queued for a client that is offline or at its receive maximum; beyond that the oldest are dropped. */
  maxQueued: number;
}

// What a session reads before it has any: an idle fleet's sessions mostly never hold a subscription
// or a QoS 1/2 message, and an empty Map or Set costs about 200 bytes (its hash table) per session
const noSubscriptions: ReadonlyMap<string, SubscriptionOptions> = new Map();
const noOutgoing: ReadonlyMap<number, Outgoing> = new Map();
const noPacketIds: ReadonlySet<number> = new Set();

/**
 * Server-side session state (§4.1): subscriptions, QoS 1/2 messages not yet acknowledged, messages
 * queued for later, and the QoS 2 packet ids received but not released. It outlives a connection
 * when the session does not end at disconnect.
 */
export class Session {
  // made at their first entry (see noSubscriptions)
  private subscriptionMap: Map<string, SubscriptionOptions> | undefined;
  private outgoingMap: Map<number, Outgoing> | undefined;
  private incomingQos2Ids: Set<number> | undefined;
  readonly queue: Queued[] = [];
  connection: Connection | undefined;
  /** Session Expiry Interval, seconds (§3.1.2.11.2); 0xFFFFFFFF never expires. */
  expirySeconds = 0;
  expiryTimer: NodeJS.Timeout | undefined;
  /** Unix ms when the client went away (undefined while connected). */
  disconnectedAt: number | undefined;
  private nextPacketId = 1;
  private nextSeq = 1;
  /** Set while the session is persistent: every change of its state is recorded here. */
  private journal: ((change: SessionChange) => void) | undefined;
  private nodeId = '';

  constructor(
    readonly clientId: string,
    public identity: ClientIdentity,
    public protocolVersion: ProtocolVersion,
    private readonly limits: SessionLimits,
    private readonly onDrop: (reason: string) => void,
  ) {}

  get connected(): boolean {
    return this.connection !== undefined;
  }

  /** Subscription key (filter, or `$share/<group>/<filter>`) → options. */
  get subscriptions(): ReadonlyMap<string, SubscriptionOptions> {
    return this.subscriptionMap ?? noSubscriptions;
  }

  setSubscription(key: string, options: SubscriptionOptions): void {
    (this.subscriptionMap ??= new Map()).set(key, options);
  }

  deleteSubscription(key: string): boolean {
    return this.subscriptionMap?.delete(key) ?? false;
  }

  clearSubscriptions(): void {
    this.subscriptionMap = undefined;
  }

  /** QoS 1/2 messages sent and not yet acknowledged, by packet id. */
  get outgoing(): ReadonlyMap<number, Outgoing> {
    return this.outgoingMap ?? noOutgoing;
  }

  /** QoS 2 packet ids received from the client, PUBREC sent, waiting for PUBREL [MQTT-4.3.3-9]. */
  get incomingQos2(): ReadonlySet<number> {
    return this.incomingQos2Ids ?? noPacketIds;
  }

  /** A QoS 2 PUBLISH was received (PUBREC follows); a persistent session writes its record again. */
  addIncomingQos2(id: number): void {
    const ids = (this.incomingQos2Ids ??= new Set());
    if (ids.has(id)) return;
    ids.add(id);
    this.saveRecord();
  }

  /** PUBREL released a QoS 2 packet id; false when it was not held. */
  deleteIncomingQos2(id: number): boolean {
    if (!this.incomingQos2Ids?.delete(id)) return false;
    this.saveRecord();
    return true;
  }

  /** A packet id not in use by an unacknowledged outgoing message [MQTT-2.2.1-3]. */
  private allocatePacketId(): number | undefined {
    for (let i = 0; i < 65535; i++) {
      const id = this.nextPacketId;
      this.nextPacketId = id === 65535 ? 1 : id + 1;
      if (!this.outgoing.has(id)) return id;
    }
    return undefined;
  }

  /** Sends now, or queues when offline or at the client's receive maximum. */
  deliver(message: BrokerMessage, qos: 0 | 1 | 2, retain: boolean, subscriptionIds: number[] | undefined): void {
    const conn = this.connection;
    if (!conn) {
      // QoS 0 messages to an offline client may be dropped (§4.1: optional to store them)
      if (qos > 0) this.enqueue({ seq: this.nextSeq++, message, qos, retain, subscriptionIds });
      return;
    }
    if (qos === 0) {
      conn.sendPublish(message, 0, retain, undefined, subscriptionIds);
      return;
    }
    if (this.outgoing.size >= conn.clientReceiveMaximum || this.queue.length > 0) {
      this.enqueue({ seq: this.nextSeq++, message, qos, retain, subscriptionIds });
      return;
    }
    this.sendTracked(conn, { seq: this.nextSeq++, message, qos, retain, subscriptionIds });
  }

  private sendTracked(conn: Connection, q: Queued): void {
    const id = this.allocatePacketId();
    if (id === undefined) return this.enqueue(q);
    if (q.qos === 0) {
      conn.sendPublish(q.message, 0, q.retain, undefined, q.subscriptionIds);
      return;
    }
    const o: Outgoing = { seq: q.seq, message: q.message, qos: q.qos, retain: q.retain, subscriptionIds: q.subscriptionIds, released: false };
    (this.outgoingMap ??= new Map()).set(id, o);
    this.record(o, id);
    conn.sendPublish(q.message, q.qos, q.retain, id, q.subscriptionIds);
  }

  private enqueue(q: Queued): void {
    if (this.queue.length >= this.limits.maxQueued) {
      const lost = this.queue.shift()!;
      this.journal?.({ op: 'done', clientId: this.clientId, seq: lost.seq });
      this.onDrop('queue_full');
    }
    this.queue.push(q);
    this.record(q, undefined);
  }

  private record(q: Queued | Outgoing, packetId: number | undefined): void {
    if (this.journal && q.qos > 0) this.journal(this.messageChange(q, packetId));
  }

  private messageChange(q: Queued | Outgoing, packetId: number | undefined): SessionChange {
    return { op: 'message', clientId: this.clientId, message: { seq: q.seq, packetId, released: 'released' in q && q.released, qos: q.qos, retain: q.retain, subscriptionIds: q.subscriptionIds, message: q.message } };
  }

  /** Sends what the queue holds, as far as the receive maximum allows; drops expired messages [MQTT-3.3.2-5]. */
  drain(now: number): void {
    const conn = this.connection;
    if (!conn) return;
    while (this.queue.length > 0 && (this.queue[0]!.qos === 0 || this.outgoing.size < conn.clientReceiveMaximum)) {
      const q = this.queue.shift()!;
      if (q.message.expiresAt !== undefined && q.message.expiresAt <= now) {
        this.journal?.({ op: 'done', clientId: this.clientId, seq: q.seq });
        this.onDrop('expired');
        continue;
      }
      this.sendTracked(conn, q);
    }
  }

  /** On reconnect with a session: resend unacknowledged PUBLISH (DUP=1) and PUBREL in order [MQTT-4.4.0-1]. */
  resend(): void {
    const conn = this.connection;
    if (!conn) return;
    for (const [id, o] of this.outgoing) {
      if (o.released) conn.send({ cmd: 'pubrel', messageId: id });
      else conn.sendPublish(o.message, o.qos, o.retain, id, o.subscriptionIds, true);
    }
  }

  /** PUBACK (QoS 1) or PUBCOMP (QoS 2): the message is done; room for a queued one. */
  acknowledge(id: number, now: number): boolean {
    const o = this.outgoingMap?.get(id);
    if (!o) return false;
    this.outgoingMap!.delete(id);
    this.journal?.({ op: 'done', clientId: this.clientId, seq: o.seq });
    this.drain(now);
    return true;
  }

  /** PUBREC: the client has it; PUBREL follows. False when no QoS 2 message has this id. */
  received(id: number): boolean {
    const o = this.outgoing.get(id);
    if (!o || o.qos !== 2) return false;
    o.released = true;
    this.record(o, id);
    return true;
  }

  get persistent(): boolean {
    return this.journal !== undefined;
  }

  /** What the store keeps of this session apart from subscriptions and messages. */
  toRecord(): SessionRecord {
    return {
      clientId: this.clientId,
      nodeId: this.nodeId,
      identity: this.identity,
      protocolVersion: this.protocolVersion,
      expirySeconds: this.expirySeconds,
      disconnectedAt: this.disconnectedAt,
      incomingQos2: [...this.incomingQos2],
    };
  }

  /** Writes the session's record again (after a change of expiry, connection or QoS 2 state). */
  saveRecord(): void {
    this.journal?.({ op: 'session', record: this.toRecord() });
  }

  /**
   * Makes the session persistent: every change from here on is recorded, and with `writeNow` its
   * whole state now (a client connected with a session expiry to a session the store does not hold).
   */
  persistTo(journal: (change: SessionChange) => void, nodeId: string, writeNow: boolean): void {
    this.journal = journal;
    this.nodeId = nodeId;
    if (!writeNow) return; // restored from the store as it is
    journal({ op: 'session', record: this.toRecord() });
    for (const [key, options] of this.subscriptions) journal({ op: 'subscribe', clientId: this.clientId, key, options });
    for (const [id, o] of this.outgoing) this.record(o, id);
    for (const q of this.queue) this.record(q, undefined);
  }

  /** Stops recording changes; `forget` also deletes what the store holds (the session ended). */
  stopPersisting(forget: boolean): void {
    if (forget) this.journal?.({ op: 'end', clientId: this.clientId });
    this.journal = undefined;
  }

  recordSubscription(key: string, options: SubscriptionOptions | undefined): void {
    if (!this.journal) return;
    if (options) this.journal({ op: 'subscribe', clientId: this.clientId, key, options });
    else this.journal({ op: 'unsubscribe', clientId: this.clientId, key });
  }

  /**
   * Takes over the state of a stored session (restart, or a session coming from another node).
   * Messages already queued here (arrived meanwhile) stay after the stored ones; a message that is
   * in both (the same bus envelope) is kept once. Returns the changes that bring the store to the
   * state now held: the rest is in the store as it is.
   */
  restore(stored: StoredSession): SessionChange[] {
    const unsaved: SessionChange[] = [];
    this.expirySeconds = stored.expirySeconds;
    this.disconnectedAt = stored.disconnectedAt;
    // taken as the store holds them: nothing to record
    if (stored.incomingQos2.length > 0) {
      const ids = (this.incomingQos2Ids ??= new Set());
      for (const id of stored.incomingQos2) ids.add(id);
    }
    const storedKeys = new Set<string>();
    for (const [key, options] of stored.subscriptions) {
      this.setSubscription(key, options);
      storedKeys.add(key);
    }
    // subscribed here from an earlier read of the store, gone from it since: kept, so written again
    for (const [key, options] of this.subscriptions) if (!storedKeys.has(key)) unsaved.push({ op: 'subscribe', clientId: this.clientId, key, options });
    const seen = new Set<string>();
    const restored: Queued[] = [];
    for (const m of stored.messages) {
      if (m.message.id !== undefined) seen.add(m.message.id);
      this.nextSeq = Math.max(this.nextSeq, m.seq + 1);
      if (m.packetId !== undefined && m.qos > 0 && !this.outgoing.has(m.packetId)) {
        (this.outgoingMap ??= new Map()).set(m.packetId, { seq: m.seq, message: m.message, qos: m.qos as 1 | 2, retain: m.retain, subscriptionIds: m.subscriptionIds, released: m.released });
      } else {
        const q: Queued = { seq: m.seq, message: m.message, qos: m.qos, retain: m.retain, subscriptionIds: m.subscriptionIds };
        if (m.packetId !== undefined && m.qos > 0) unsaved.push(this.messageChange(q, undefined)); // its packet id is taken: queued again without it
        restored.push(q);
      }
    }
    const arrived = this.queue.splice(0).filter((q) => q.message.id === undefined || !seen.has(q.message.id));
    for (const q of arrived) {
      q.seq = this.nextSeq++; // after the restored ones
      if (q.qos > 0) unsaved.push(this.messageChange(q, undefined)); // never written: it came while the session was elsewhere
    }
    this.queue.push(...restored, ...arrived);
    return unsaved;
  }

}

export type { IPublishPacket };
