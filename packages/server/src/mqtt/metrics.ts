import { Counter, Gauge, type Registry } from 'prom-client';

/** What the broker counts. A no-op implementation keeps the core free of prom-client in tests. */
export interface BrokerMetrics {
  bytesIn(n: number): void;
  packetIn(cmd: string): void;
  packetOut(cmd: string, bytes: number): void;
  malformed(): void;
  connected(): void;
  connectRefused(reasonCode: number): void;
  publishDenied(): void;
  delivered(): void;
  dropped(reason: string): void;
  slowConsumer(): void;
  /** A connection closed before its CONNECT was accepted: `connect_timeout`, `too_many_unauthenticated` or `packet_too_large`. */
  unauthenticatedClosed(reason: string): void;
}

export const noMetrics: BrokerMetrics = {
  bytesIn: () => {},
  packetIn: () => {},
  packetOut: () => {},
  malformed: () => {},
  connected: () => {},
  connectRefused: () => {},
  publishDenied: () => {},
  delivered: () => {},
  dropped: () => {},
  slowConsumer: () => {},
  unauthenticatedClosed: () => {},
};

export function promBrokerMetrics(registry: Registry, connections: () => number, sessions: () => number, unauthenticated: () => number): BrokerMetrics {
  const registers = [registry];
  const packetsIn = new Counter({ name: 'fleetwire_mqtt_packets_received_total', help: 'MQTT packets received, by type', labelNames: ['type'], registers });
  const packetsOut = new Counter({ name: 'fleetwire_mqtt_packets_sent_total', help: 'MQTT packets sent, by type', labelNames: ['type'], registers });
  const bytesIn = new Counter({ name: 'fleetwire_mqtt_bytes_received_total', help: 'MQTT bytes received', registers });
  const bytesOut = new Counter({ name: 'fleetwire_mqtt_bytes_sent_total', help: 'MQTT bytes sent', registers });
  const malformed = new Counter({ name: 'fleetwire_mqtt_malformed_packets_total', help: 'Connections closed for a malformed packet', registers });
  const connects = new Counter({ name: 'fleetwire_mqtt_connects_total', help: 'Accepted MQTT connections', registers });
  const refused = new Counter({ name: 'fleetwire_mqtt_connects_refused_total', help: 'Refused MQTT connections, by reason code', labelNames: ['reason_code'], registers });
  const denied = new Counter({ name: 'fleetwire_mqtt_publishes_denied_total', help: 'PUBLISH packets refused by authorization', registers });
  const delivered = new Counter({ name: 'fleetwire_mqtt_messages_delivered_total', help: 'PUBLISH packets sent to subscribers', registers });
  const dropped = new Counter({ name: 'fleetwire_mqtt_messages_dropped_total', help: 'Messages not delivered, by reason (queue_full, expired, slow_consumer, rate_limited, client_max_packet_size)', labelNames: ['reason'], registers });
  new Gauge({ name: 'fleetwire_mqtt_connections', help: 'Open MQTT connections', registers, collect() { this.set(connections()); } });
  const unauthenticatedClosed = new Counter({ name: 'fleetwire_mqtt_unauthenticated_closed_total', help: 'Connections closed before their CONNECT was accepted, by reason (connect_timeout, too_many_unauthenticated, packet_too_large)', labelNames: ['reason'], registers });
  new Gauge({ name: 'fleetwire_mqtt_unauthenticated_connections', help: 'Open MQTT connections whose CONNECT has not been accepted yet (not counted in the connection limit)', registers, collect() { this.set(unauthenticated()); } });
  new Gauge({ name: 'fleetwire_mqtt_sessions', help: 'MQTT sessions held (connected or not)', registers, collect() { this.set(sessions()); } });
  return {
    bytesIn: (n) => bytesIn.inc(n),
    packetIn: (cmd) => packetsIn.inc({ type: cmd }),
    packetOut: (cmd, bytes) => {
      packetsOut.inc({ type: cmd });
      bytesOut.inc(bytes);
    },
    malformed: () => malformed.inc(),
    connected: () => connects.inc(),
    connectRefused: (code) => refused.inc({ reason_code: `0x${code.toString(16).padStart(2, '0')}` }),
    publishDenied: () => denied.inc(),
    delivered: () => delivered.inc(),
    dropped: (reason) => dropped.inc({ reason }),
    slowConsumer: () => dropped.inc({ reason: 'slow_consumer' }),
    unauthenticatedClosed: (reason) => unauthenticatedClosed.inc({ reason }),
  };
}
