import type { BrokerMessage, ClientIdentity, ProtocolVersion, QoS, SubscriptionOptions } from './types.js';

/** A QoS 1/2 message a session owes its client: queued, or sent and not yet acknowledged. */
export interface StoredMessage {
  /** Order within the session. */
  seq: number;
  /** Set once sent: the PUBLISH packet id to resend with DUP [MQTT-4.4.0-1]. */
  packetId: number | undefined;
  /** QoS 2 after PUBREC: only PUBREL remains. */
  released: boolean;
  qos: QoS;
  retain: boolean;
  subscriptionIds: number[] | undefined;
  message: BrokerMessage;
}

/** What a persistent session is, apart from its subscriptions and messages. */
export interface SessionRecord {
  clientId: string;
  /** The broker process that holds the session. */
  nodeId: string;
  identity: ClientIdentity;
  protocolVersion: ProtocolVersion;
  expirySeconds: number;
  /** Unix ms; undefined while a client is connected. */
  disconnectedAt: number | undefined;
  /** QoS 2 packet ids received, PUBREC sent, PUBREL awaited [MQTT-4.3.3-9]. */
  incomingQos2: number[];
}

export interface StoredSession extends SessionRecord {
  subscriptions: [key: string, options: SubscriptionOptions][];
  /** In `seq` order. */
  messages: StoredMessage[];
}

/** One change to persistent session state, applied in the order recorded. */
export type SessionChange =
  | { op: 'session'; record: SessionRecord }
  | { op: 'end'; clientId: string }
  | { op: 'subscribe'; clientId: string; key: string; options: SubscriptionOptions }
  | { op: 'unsubscribe'; clientId: string; key: string }
  | { op: 'message'; clientId: string; message: StoredMessage }
  | { op: 'done'; clientId: string; seq: number };

/**
 * Where persistent sessions live between connections and across restarts and nodes (SQLite or
 * PostgreSQL, `sql-store.ts`). Sessions that end at disconnect never reach it.
 */
export interface SessionStore {
  load(clientId: string): Promise<StoredSession | undefined>;
  /** The node that holds the stored session of `clientId` and whose it is, undefined when none is stored: all a clean start needs to know. */
  holder(clientId: string): Promise<{ nodeId: string; identity: ClientIdentity } | undefined>;
  /** Every session a node holds (to restore them when it starts). */
  loadNode(nodeId: string): Promise<StoredSession[]>;
  /** Applies changes in order, atomically. */
  apply(changes: readonly SessionChange[]): Promise<void>;
  /** Deletes sessions whose expiry passed since their client went away; returns how many. */
  purgeExpired(now: number): Promise<number>;
}

/**
 * Collects session changes and writes them in batches, a few milliseconds after the first one.
 * A message that is stored and acknowledged within one batch never reaches the database (the
 * common case for a connected client), so persistence costs little on the hot path.
 */
export class SessionJournal {
  private pending: (SessionChange | null)[] = [];
  /** Pending 'message' changes by session and seq, to coalesce. */
  private readonly pendingMessages = new Map<string, number>();
  /** Pending 'session' changes by client, to coalesce: a batch writes a session row once. */
  private readonly pendingSessions = new Map<string, number>();
  /** Messages written and not yet deleted, per client: their 'done' must reach the database. */
  private readonly written = new Map<string, Set<number>>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: SessionStore,
    private readonly onError: (e: unknown, changes: number) => void,
    private readonly delayMs = 5,
    private readonly maxPending = 2000,
  ) {}

  record(change: SessionChange): void {
    if (change.op === 'session') {
      const at = this.pendingSessions.get(change.record.clientId);
      // the newer row replaces the older in its place: nothing between them reads the row, and the batch is atomic
      if (at !== undefined) {
        this.pending[at] = change;
        return;
      }
      this.pendingSessions.set(change.record.clientId, this.pending.length);
    } else if (change.op === 'message') {
      const key = `${change.clientId}\u0000${change.message.seq}`;
      const at = this.pendingMessages.get(key);
      if (at !== undefined) this.pending[at] = null; // the newer state replaces it
      this.pendingMessages.set(key, this.pending.length);
    } else if (change.op === 'done') {
      const key = `${change.clientId}\u0000${change.seq}`;
      const at = this.pendingMessages.get(key);
      if (at !== undefined) {
        this.pending[at] = null;
        this.pendingMessages.delete(key);
        if (!this.written.get(change.clientId)?.has(change.seq)) return; // never written: nothing to delete
      }
    } else if (change.op === 'end') {
      this.written.delete(change.clientId);
      this.pendingSessions.delete(change.clientId); // a row written after the end must follow it
    }
    this.pending.push(change);
    if (this.pending.length >= this.maxPending) this.flushSoon(0);
    else this.flushSoon(this.delayMs);
  }

  private flushSoon(delay: number): void {
    if (this.timer && delay > 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.flush(), delay);
  }

  /** Messages that are in the store already (a restored session's): acknowledging them must delete them. */
  stored(clientId: string, seqs: Iterable<number>): void {
    for (const seq of seqs) this.markWritten(clientId, seq);
  }

  private markWritten(clientId: string, seq: number): void {
    let seqs = this.written.get(clientId);
    if (!seqs) this.written.set(clientId, (seqs = new Set()));
    seqs.add(seq);
  }

  /** Resolves once everything recorded so far is written (or its write failed and was logged). */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending.filter((c): c is SessionChange => c !== null);
    this.pending = [];
    this.pendingMessages.clear();
    this.pendingSessions.clear();
    if (batch.length === 0) return this.writing;
    for (const c of batch) {
      if (c.op === 'message') this.markWritten(c.clientId, c.message.seq);
      else if (c.op === 'done') this.written.get(c.clientId)?.delete(c.seq);
    }
    this.writing = this.writing.then(() =>
      this.store.apply(batch).catch((e: unknown) => this.onError(e, batch.length)),
    );
    return this.writing;
  }

}

/** Message properties as JSON text: correlation data is binary. */
export function encodeProperties(p: BrokerMessage['properties']): string | null {
  if (!p) return null;
  const { correlationData, ...rest } = p;
  return JSON.stringify(correlationData ? { ...rest, correlationData: correlationData.toString('base64') } : rest);
}

export function decodeProperties(text: string | null): BrokerMessage['properties'] {
  if (!text) return undefined;
  const p = JSON.parse(text) as Record<string, unknown>;
  if (typeof p.correlationData === 'string') p.correlationData = Buffer.from(p.correlationData, 'base64');
  return p as BrokerMessage['properties'];
}
