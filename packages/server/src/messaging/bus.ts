import type { Broadcasts } from '../core/broadcast.js';
import type { Envelope } from './envelope.js';

export interface LiveSubscription {
  unsubscribe(): void;
}

export interface DurableConsumer {
  /** Stops taking messages; what was not acknowledged is redelivered to the next member. */
  stop(): Promise<void>;
}

export interface SubscribeOptions {
  /**
   * Queue group: of all live subscriptions sharing this name, in this process or any other on the
   * bus, each message goes to one (MQTT shared subscriptions across nodes).
   */
  queue?: string;
}

export interface ConsumeOptions {
  /** Largest batch handed to the handler. */
  maxBatch?: number;
}

export interface BusStats {
  /** Messages waiting for each durable consumer (the writer's lag). */
  pending: Record<string, number>;
  /** Messages a durable consumer lost because its queue stayed full past the publish timeout. */
  dropped: number;
}

/**
 * A message the bus has taken: live subscribers have it, and `stored()` says when it is durable.
 * Adapters acknowledge a message to its publisher only once `stored()` resolves (an HTTP 202, a
 * PUBACK, a CoAP 2.04): that acknowledgement is a promise the message survives a crash.
 */
export interface Accepted {
  /**
   * Resolves once the message survives a `kill -9` of this process: on the in-process bus, when
   * every durable consumer (the writer) has committed it; on NATS, when JetStream has stored it.
   * Rejects when the bus closes first. Made on demand: nothing waits for QoS 0 messages.
   */
  stored(): Promise<void>;
}

/** An Accepted that is durable already. */
export const alreadyStored: Accepted = { stored: () => Promise.resolve() };

/** The bus refused a message because its consumers are too far behind (backpressure). */
export class BusOverloadedError extends Error {
  override name = 'BusOverloadedError';
}

/**
 * The message bus every adapter publishes to and every reader of live traffic subscribes on.
 * Two implementations share one contract suite: in-process (default) and NATS JetStream.
 */
export interface Bus extends Broadcasts {
  readonly kind: 'memory' | 'nats';
  /**
   * Resolves once the bus has taken the message (live subscribers got it; it waits for room when the
   * durable consumers are behind, and rejects with BusOverloadedError when none comes in time). The
   * result tells when the message is durable.
   */
  publish(env: Envelope): Promise<Accepted>;
  /**
   * Live delivery of a channel's messages whose subtopic matches `filter` (`#` all, `+` one
   * segment, '' only messages without subtopic). At most once: for connected clients.
   */
  subscribe(channel: string, filter: string, handler: (env: Envelope) => void, options?: SubscribeOptions): Promise<LiveSubscription>;
  /**
   * Durable, at-least-once delivery in batches to the consumer group `name`: messages published
   * while no member runs are kept. The batch is acknowledged when the handler resolves and
   * redelivered when it rejects.
   */
  consume(name: string, handler: (batch: Envelope[]) => Promise<void>, options?: ConsumeOptions): Promise<DurableConsumer>;
  onBroadcast(topic: string, handler: (data: string) => void): LiveSubscription;
  stats(): BusStats;
  /** Whether the bus can take messages now (NATS: connected); a bus without it always can. */
  health?(): { ok: true } | { ok: false; reason: string };
  close(): Promise<void>;
}
