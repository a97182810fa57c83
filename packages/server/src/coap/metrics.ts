import { Counter, Gauge, type Registry } from 'prom-client';

/** What only the CoAP edge has: observations, uploads in progress, retransmissions, duplicates. */
export class CoapMetrics {
  readonly refused: Counter<'reason'>;
  readonly duplicates: Counter;
  readonly retransmissions: Counter;
  readonly observersFreed: Counter<'reason'>;

  constructor(registry: Registry | undefined, gauges: { observers: () => number; transfers: () => number }) {
    const registers = registry ? [registry] : [];
    this.refused = new Counter({ name: 'fleetwire_coap_datagrams_refused_total', help: 'Datagrams dropped or answered with RST/4.xx before reaching the messaging service, by reason (malformed, bad_option, too_many_observers, too_many_transfers, …)', labelNames: ['reason'], registers });
    this.duplicates = new Counter({ name: 'fleetwire_coap_duplicates_total', help: 'Requests recognised as duplicates (same source and message ID within the exchange lifetime) and not processed again', registers });
    this.retransmissions = new Counter({ name: 'fleetwire_coap_retransmissions_total', help: 'Confirmable notifications and pings sent again for want of an acknowledgement', registers });
    this.observersFreed = new Counter({ name: 'fleetwire_coap_observers_freed_total', help: 'Observations ended, by reason (deregistered, reset, unanswered, replaced, closed, forbidden: access withdrawn)', labelNames: ['reason'], registers });
    new Gauge({ name: 'fleetwire_coap_observers', help: 'Observations (CoAP subscriptions) held', registers, collect() { this.set(gauges.observers()); } });
    new Gauge({ name: 'fleetwire_coap_transfers', help: 'Block-wise uploads in progress', registers, collect() { this.set(gauges.transfers()); } });
  }
}
