import type { IPublishPacket } from 'mqtt-packet';
import type { Connection } from './connection.js';
import type { BrokerMessage, ClientIdentity, ProtocolVersion, SubscriptionOptions } from './types.js';

/** A message on its way to this session's client, QoS 1 or 2, with the state of its handshake (§4.3). */
interface Outgoing {
  message: BrokerMessage;
  qos: 1 | 2;
  retain: boolean;
  subscriptionIds: number[] | undefined;
  /** QoS 2 after PUBREC: only PUBREL remains to be sent/acknowledged. */
  released: boolean;
}

interface Queued {
  message: BrokerMessage;
  qos: 0 | 1 | 2;
  retain: boolean;
  subscriptionIds: number[] | undefined;
}

export interface SessionLimits {
  /** Messages queued for a client that is offline or at its receive maximum; beyond that the oldest are dropped. */
  maxQueued: number;
}

/**
 * Server-side session state (§4.1): subscriptions, QoS 1/2 messages not yet acknowledged, messages
 * queued for later, and the QoS 2 packet ids received but not released. It outlives a connection
 * when the session does not end at disconnect.
 */
export class Session {
  readonly subscriptions = new Map<string, SubscriptionOptions>();
  readonly outgoing = new Map<number, Outgoing>();
  readonly queue: Queued[] = [];
  /** QoS 2 packet ids received from the client, PUBREC sent, waiting for PUBREL [MQTT-4.3.3-9]. */
  readonly incomingQos2 = new Set<number>();
  connection: Connection | undefined;
  /** Session Expiry Interval, seconds (§3.1.2.11.2); 0xFFFFFFFF never expires. */
  expirySeconds = 0;
  expiryTimer: NodeJS.Timeout | undefined;
  private nextPacketId = 1;
  dropped = 0;

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
      if (qos > 0) this.enqueue({ message, qos, retain, subscriptionIds });
      return;
    }
    if (qos === 0) {
      conn.sendPublish(message, 0, retain, undefined, subscriptionIds);
      return;
    }
    if (this.outgoing.size >= conn.clientReceiveMaximum || this.queue.length > 0) {
      this.enqueue({ message, qos, retain, subscriptionIds });
      return;
    }
    this.sendTracked(conn, { message, qos, retain, subscriptionIds });
  }

  private sendTracked(conn: Connection, q: Queued): void {
    const id = this.allocatePacketId();
    if (id === undefined) return this.enqueue(q);
    if (q.qos === 0) {
      conn.sendPublish(q.message, 0, q.retain, undefined, q.subscriptionIds);
      return;
    }
    this.outgoing.set(id, { message: q.message, qos: q.qos, retain: q.retain, subscriptionIds: q.subscriptionIds, released: false });
    conn.sendPublish(q.message, q.qos, q.retain, id, q.subscriptionIds);
  }

  private enqueue(q: Queued): void {
    if (this.queue.length >= this.limits.maxQueued) {
      this.queue.shift();
      this.dropped++;
      this.onDrop('queue_full');
    }
    this.queue.push(q);
  }

  /** Sends what the queue holds, as far as the receive maximum allows; drops expired messages [MQTT-3.3.2-5]. */
  drain(now: number): void {
    const conn = this.connection;
    if (!conn) return;
    while (this.queue.length > 0 && (this.queue[0]!.qos === 0 || this.outgoing.size < conn.clientReceiveMaximum)) {
      const q = this.queue.shift()!;
      if (q.message.expiresAt !== undefined && q.message.expiresAt <= now) {
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
    if (!this.outgoing.delete(id)) return false;
    this.drain(now);
    return true;
  }

  /** PUBREC: the client has it; PUBREL follows. False when no QoS 2 message has this id. */
  received(id: number): boolean {
    const o = this.outgoing.get(id);
    if (!o || o.qos !== 2) return false;
    o.released = true;
    return true;
  }

  /** The PUBLISH packet that was sent for an outgoing id (tests, diagnostics). */
  pending(): number {
    return this.outgoing.size + this.queue.length;
  }
}

export type { IPublishPacket };
