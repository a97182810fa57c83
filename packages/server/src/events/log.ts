import type { Broadcasts } from '../core/broadcast.js';
import { iso, type Clock } from '../core/clock.js';
import { uuidv7 } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { EventQuery, EventStore } from './store.js';
import { toRow } from './store.js';
import type { EventRecorder, FleetEvent, NewEvent } from './types.js';
import type { FleetEventsTable } from '../db/schema.js';

/** The broadcast topic live events travel on between processes (a batch of events, JSON, per message). */
export const eventsTopic = 'fleet-events';

export interface EventLogOptions {
  /** Events waiting that start a write at once (else the interval does). */
  batchSize: number;
  /** Events per transaction at most (default batchSize): smaller ones let others' writes go between. */
  transactionSize?: number;
  /** How long a recorded event waits for others before its batch is written, ms. */
  flushIntervalMs: number;
  /** Events kept for this long, ms; 0 keeps every event. */
  retentionMs: number;
  /** How often old events are pruned, ms. */
  pruneIntervalMs: number;
  /** Events waiting to be written at most: beyond it (the database is away) the oldest are dropped, and counted. */
  maxBuffered: number;
}

export const defaultEventLogOptions: EventLogOptions = { batchSize: 500, flushIntervalMs: 100, retentionMs: 30 * 86_400_000, pruneIntervalMs: 5 * 60_000, maxBuffered: 100_000 };

/** Largest broadcast of live events, bytes: NATS takes 1 MiB per message by default. */
const maxBroadcastBytes = 256 * 1024;

/** The id after a UUID v7 in sort order: its last 48 random bits plus one (they are not all ones in practice). */
function following(id: string): string {
  const tail = Number.parseInt(id.slice(24), 16);
  return tail >= 0xffffffffffff ? id : id.slice(0, 24) + (tail + 1).toString(16).padStart(12, '0');
}

export type EventListener = (event: FleetEvent) => void;

/**
 * The fleet event stream. `record` is fire and forget: it never throws into its caller and never
 * waits; events are written in batches, and go live at once to every process on the bus (a
 * WebSocket or MQTT subscriber on node B sees what node A recorded). Live delivery is at most
 * once; the table is the record.
 */
export class EventLog implements EventRecorder {
  private buffer: FleetEventsTable[] = [];
  private outgoing: FleetEvent[] = [];
  private outgoingScheduled = false;
  private flushTimer: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private readonly listeners = new Set<EventListener>();
  private readonly subscription: { unsubscribe(): void };
  private closed = false;
  /** The last id given: ids of one process increase, so events of the same millisecond list in the order recorded. */
  private lastId = '';
  /** Writers waiting for the backlog to shrink (below): each with its limit. */
  private waiters: { limit: number; resolve(): void }[] = [];
  /** Events lost: refused by the database (their organization is gone) or dropped while it was away. */
  dropped = 0;

  constructor(
    private readonly store: EventStore,
    private readonly broadcasts: Broadcasts,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly options: EventLogOptions = defaultEventLogOptions,
  ) {
    this.subscription = broadcasts.onBroadcast(eventsTopic, (data) => this.received(data));
    if (options.retentionMs > 0) {
      this.pruneTimer = setInterval(() => void this.prune(), options.pruneIntervalMs);
      this.pruneTimer.unref();
    }
  }

  record(input: NewEvent): void {
    try {
      if (this.closed) return;
      const now = this.clock.now();
      let id = uuidv7(now);
      if (id <= this.lastId) id = following(this.lastId);
      this.lastId = id;
      const event: FleetEvent = {
        id,
        org_id: input.orgId,
        type: input.type,
        time: iso(now),
        actor: { kind: input.actor.kind, id: input.actor.id ?? null },
        subject: { kind: input.subject.kind, id: input.subject.id },
        data: input.data ?? {},
      };
      // serialised now: data that is no JSON is the caller's mistake, refused here rather than in a batch
      this.buffer.push(toRow(event, JSON.stringify(event.data)));
      if (this.buffer.length > this.options.maxBuffered) {
        const over = this.buffer.length - this.options.maxBuffered;
        this.buffer.splice(0, over);
        this.dropped += over;
        this.log.warn({ dropped: over }, 'fleet events dropped: the database is not taking them');
      }
      this.outgoing.push(event);
      if (!this.outgoingScheduled) {
        this.outgoingScheduled = true;
        // events recorded in the same turn go to the other processes in one broadcast
        setImmediate(() => this.sendLive());
      }
      if (this.buffer.length >= this.options.batchSize) void this.flush();
      else if (!this.flushTimer) {
        this.flushTimer = setTimeout(() => void this.flush(), this.options.flushIntervalMs);
        this.flushTimer.unref();
      }
    } catch (e) {
      this.log.error({ err: e, type: input?.type }, 'could not record a fleet event');
    }
  }

  /** Live events of every organization, recorded on any node; returns the way to stop. */
  onEvent(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** One page of an organization's stored events; what this process recorded until now is in it. */
  async list(orgId: string, q: EventQuery): Promise<{ total: number; items: FleetEvent[] }> {
    await this.flush();
    return this.store.list(orgId, q);
  }

  /** Writes what is buffered; resolves once it is written (or was given up on, and logged). */
  flush(): Promise<void> {
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    // one write at a time, in order
    this.writing = this.writing.then(() => this.writeAll());
    return this.writing;
  }

  /**
   * Undefined while fewer than `limit` events wait to be written; otherwise a promise that resolves
   * once fewer do, or after `maxWaitMs` (a writer that makes events holds back, never for ever).
   * The twins' writes wait on it (platform.ts): events keep up with the changes they record.
   */
  below(limit: number, maxWaitMs = 1000): Promise<void> | undefined {
    if (this.buffer.length < limit || this.closed) return undefined;
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, maxWaitMs);
      timer.unref();
      this.waiters.push({ limit, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  private release(): void {
    if (this.waiters.length === 0) return;
    const still = this.waiters.filter((w) => this.buffer.length >= w.limit && !this.closed);
    for (const w of this.waiters) if (!still.includes(w)) w.resolve();
    this.waiters = still;
  }

  /** Stops pruning and taking events, sends and writes what is left. */
  async close(): Promise<void> {
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    this.sendLive();
    this.closed = true;
    this.release();
    this.subscription.unsubscribe();
    await this.flush();
  }

  /** Deletes events older than the retention, in chunks; never throws. */
  async prune(): Promise<number> {
    if (this.options.retentionMs <= 0) return 0;
    const before = iso(this.clock.now() - this.options.retentionMs);
    let total = 0;
    try {
      for (;;) {
        const n = await this.store.pruneBefore(before, 5000);
        total += n;
        if (n < 5000) break;
      }
      if (total > 0) this.log.info({ events: total }, 'retention pruned old fleet events');
    } catch (e) {
      this.log.error({ err: e }, 'pruning old fleet events failed');
    }
    return total;
  }

  private async writeAll(): Promise<void> {
    while (this.buffer.length > 0) {
      const batch = this.buffer.splice(0, this.options.transactionSize ?? this.options.batchSize);
      this.release();
      const rows = batch;
      try {
        await this.store.insertMany(rows);
      } catch (e) {
        // one row the database refuses (an organization deleted meanwhile) must not cost the others
        try {
          const refused = await this.store.insertEach(rows);
          this.dropped += refused;
          if (refused === rows.length) throw e;
          this.log.info({ refused }, 'fleet events of deleted organizations not stored');
        } catch (again) {
          this.log.error({ err: again, events: rows.length }, 'could not store fleet events');
          if (!(await this.store.reachable())) {
            // the database is away: keep them for the next flush (maxBuffered bounds what is kept)
            this.buffer.unshift(...batch);
            if (!this.closed && !this.flushTimer) {
              this.flushTimer = setTimeout(() => void this.flush(), 1000);
              this.flushTimer.unref();
            }
            return;
          }
        }
      }
    }
  }

  private sendLive(): void {
    this.outgoingScheduled = false;
    if (this.outgoing.length === 0) return;
    const events = this.outgoing;
    this.outgoing = [];
    try {
      // chunks small enough for any bus
      let chunk: string[] = [];
      let bytes = 0;
      for (const e of events) {
        const json = JSON.stringify(e);
        if (chunk.length > 0 && bytes + json.length > maxBroadcastBytes) {
          this.broadcasts.broadcast(eventsTopic, `[${chunk.join(',')}]`);
          chunk = [];
          bytes = 0;
        }
        chunk.push(json);
        bytes += json.length + 1;
      }
      if (chunk.length > 0) this.broadcasts.broadcast(eventsTopic, `[${chunk.join(',')}]`);
    } catch (e) {
      this.log.error({ err: e }, 'could not send fleet events live');
    }
  }

  private received(data: string): void {
    if (this.listeners.size === 0) return;
    let events: FleetEvent[];
    try {
      events = JSON.parse(data) as FleetEvent[];
      if (!Array.isArray(events)) return;
    } catch {
      return;
    }
    for (const e of events) {
      for (const listener of this.listeners) {
        try {
          listener(e);
        } catch (err) {
          this.log.error({ err }, 'a fleet event listener failed');
        }
      }
    }
  }
}
