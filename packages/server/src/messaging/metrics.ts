import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Bus } from './bus.js';

/** Message counters shared by every adapter and the writer. */
export class MessagingMetrics {
  readonly received: Counter<'protocol'>;
  readonly rejected: Counter<'protocol' | 'code'>;
  readonly delivered: Counter<'protocol'>;
  readonly stored: Counter<'kind'>;
  readonly dropped: Counter<'reason'>;
  readonly deadLettered: Counter;
  readonly writeSeconds: Histogram;

  constructor(registry: Registry, bus: Bus) {
    const registers = [registry];
    this.received = new Counter({ name: 'fleetwire_messages_received_total', help: 'Messages accepted from clients, by protocol', labelNames: ['protocol'], registers });
    this.rejected = new Counter({ name: 'fleetwire_messages_rejected_total', help: 'Messages refused, by protocol and error code', labelNames: ['protocol', 'code'], registers });
    this.delivered = new Counter({ name: 'fleetwire_messages_delivered_total', help: 'Messages sent to live subscribers, by protocol', labelNames: ['protocol'], registers });
    this.stored = new Counter({ name: 'fleetwire_messages_stored_total', help: 'Rows written by the message writer, by kind (senml, json, opaque)', labelNames: ['kind'], registers });
    this.dropped = new Counter({ name: 'fleetwire_messages_dropped_total', help: 'Messages lost, by reason (slow_consumer, bus_overloaded)', labelNames: ['reason'], registers });
    this.deadLettered = new Counter({ name: 'fleetwire_messages_dead_lettered_total', help: 'Messages the writer could not store while the database took others, set aside in the dead letters', registers });
    this.writeSeconds = new Histogram({ name: 'fleetwire_writer_batch_seconds', help: 'Time to write one batch to the database', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers });
    new Gauge({
      name: 'fleetwire_writer_lag_messages',
      help: 'Messages waiting on the bus for the writer',
      registers,
      collect() {
        this.set(bus.stats().pending.writer ?? 0);
      },
    });
  }
}
