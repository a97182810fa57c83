import type { Duplex } from 'node:stream';
import mqtt, { type IConnectPacket, type IPublishPacket, type Packet, type Parser } from 'mqtt-packet';
import type { Broker } from './broker.js';
import type { ConnectionMeta } from './policy.js';
import type { Session } from './session.js';
import { rc, type BrokerMessage, type ClientIdentity, type ProtocolVersion } from './types.js';
import { handlePacket } from './handlers/index.js';

export type Will = IConnectPacket['will'];

/**
 * One client connection over any duplex stream (TCP, TLS, WebSocket, or an in-memory pair in
 * tests). Parses packets, runs them through the handlers one after another, writes replies, and
 * enforces keep-alive, packet size and write-buffer limits.
 */
export class Connection {
  readonly parser: Parser;
  protocolVersion: ProtocolVersion = 4;
  clientId = '';
  identity: ClientIdentity = { kind: 'anonymous' };
  session: Session | undefined;
  connected = false;
  closed = false;
  will: Will | undefined;
  /** Set by a DISCONNECT that ends the connection normally: no will [MQTT-3.14.4-3]. */
  normalDisconnect = false;
  /** The client's limits (CONNECT properties, MQTT 5). */
  clientReceiveMaximum = 65535;
  clientMaximumPacketSize = Infinity;
  clientTopicAliasMaximum = 0;
  /** Topic aliases the client set up for its PUBLISH packets (§3.3.2.3.4). */
  readonly inboundAliases = new Map<number, string>();
  /** Aliases this server assigned for topics it sends to the client. */
  readonly outboundAliases = new Map<string, number>();
  /** QoS 1/2 PUBLISH packets received and not yet acknowledged (our Receive Maximum, §3.3.4). */
  inboundInFlight = 0;
  keepAliveMs = 0;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private lastPacketAt = Date.now();
  private chain: Promise<void> = Promise.resolve();

  constructor(
    readonly broker: Broker,
    readonly stream: Duplex,
    readonly meta: ConnectionMeta,
  ) {
    this.parser = mqtt.parser();
    this.parser.on('packet', (p: Packet) => this.onPacket(p));
    this.parser.on('error', (e: Error) => this.onMalformed(e));
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', () => this.close());
    stream.on('close', () => this.close());
    stream.on('end', () => this.close());
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.lastPacketAt = Date.now();
    this.broker.metrics.bytesIn(chunk.length);
    this.parser.parse(chunk);
    // A partial packet larger than we accept is refused before it is buffered whole [MQTT-3.2.2-?, §3.1.2.11.4]
    const buffered = (this.parser as unknown as { _list?: { length: number } })._list?.length ?? 0;
    if (buffered > this.broker.options.maxPacketSize + 8) this.disconnect(rc.packetTooLarge, 'packet too large');
  }

  private onPacket(packet: Packet): void {
    if (this.closed) return;
    if ((packet.length ?? 0) > this.broker.options.maxPacketSize) {
      this.disconnect(rc.packetTooLarge, 'packet too large');
      return;
    }
    this.broker.metrics.packetIn(packet.cmd);
    // Packets are handled strictly in order: a PUBLISH's authorization may wait for the database.
    this.chain = this.chain.then(() => (this.closed ? undefined : handlePacket(this, packet))).catch((e: unknown) => {
      this.broker.log.error({ err: e, clientId: this.clientId, cmd: packet.cmd }, 'MQTT handler failed');
      this.disconnect(rc.unspecified, 'internal error');
    });
  }

  private onMalformed(e: Error): void {
    if (this.closed) return;
    this.broker.log.info({ clientId: this.clientId || undefined, remote: this.meta.remoteAddress, err: e.message }, 'malformed MQTT packet');
    this.broker.metrics.malformed();
    if (!this.connected && /protocol version/i.test(e.message)) {
      // [MQTT-3.1.2-2]: unacceptable protocol level → CONNACK 0x01, then close
      this.writeRaw({ cmd: 'connack', returnCode: 1, sessionPresent: false });
      this.close();
      return;
    }
    this.disconnect(rc.malformedPacket, e.message); // [MQTT-4.8.0-1] / §4.13
  }

  /** Starts the keep-alive watch: 1.5 × the keep-alive without a packet closes the connection [MQTT-3.1.2-24]. */
  startKeepAlive(seconds: number): void {
    this.keepAliveMs = seconds * 1000;
    if (seconds === 0) return;
    const grace = this.keepAliveMs * 1.5;
    const check = () => {
      if (this.closed) return;
      const idle = Date.now() - this.lastPacketAt;
      if (idle >= grace) {
        this.broker.log.info({ clientId: this.clientId, keepAlive: seconds }, 'keep-alive timeout');
        this.disconnect(rc.keepAliveTimeout, 'keep alive timeout');
        return;
      }
      this.keepAliveTimer = setTimeout(check, grace - idle);
      this.keepAliveTimer.unref();
    };
    this.keepAliveTimer = setTimeout(check, grace);
    this.keepAliveTimer.unref();
  }

  /** Writes a packet; a client that does not read its socket is dropped instead of growing our memory. */
  send(packet: Packet): void {
    if (this.closed) return;
    this.writeRaw(packet);
    if (this.stream.writableLength > this.broker.options.maxWriteBuffer) {
      this.broker.metrics.slowConsumer();
      this.broker.log.warn({ clientId: this.clientId, buffered: this.stream.writableLength }, 'closing a slow MQTT consumer');
      this.disconnect(rc.quotaExceeded, 'slow consumer');
    }
  }

  private writeRaw(packet: Packet): void {
    const buf = mqtt.generate(packet, { protocolVersion: this.protocolVersion });
    this.broker.metrics.packetOut(packet.cmd, buf.length);
    this.stream.write(buf);
  }

  /** Sends a PUBLISH for a message, honouring the client's maximum packet size and topic aliases (MQTT 5). */
  sendPublish(m: BrokerMessage, qos: 0 | 1 | 2, retain: boolean, messageId: number | undefined, subscriptionIds: number[] | undefined, dup = false): void {
    const packet: IPublishPacket = { cmd: 'publish', topic: m.topic, payload: m.payload, qos, retain, dup };
    if (messageId !== undefined) packet.messageId = messageId;
    if (this.protocolVersion === 5) {
      const props: NonNullable<IPublishPacket['properties']> = m.properties ? { ...m.properties } : {};
      if (m.expiresAt !== undefined) props.messageExpiryInterval = Math.max(0, Math.ceil((m.expiresAt - Date.now()) / 1000)); // [MQTT-3.3.2-6]
      if (subscriptionIds && subscriptionIds.length > 0) props.subscriptionIdentifier = subscriptionIds.length === 1 ? subscriptionIds[0]! : subscriptionIds;
      if (this.clientTopicAliasMaximum > 0) {
        const alias = this.outboundAliases.get(m.topic);
        if (alias !== undefined) {
          packet.topic = '';
          props.topicAlias = alias;
        } else if (this.outboundAliases.size < this.clientTopicAliasMaximum) {
          const next = this.outboundAliases.size + 1;
          this.outboundAliases.set(m.topic, next);
          props.topicAlias = next;
        }
      }
      if (Object.keys(props).length > 0) packet.properties = props;
      if (this.clientMaximumPacketSize !== Infinity) {
        const size = mqtt.generate(packet, { protocolVersion: 5 }).length;
        if (size > this.clientMaximumPacketSize) {
          // [MQTT-3.1.2-25]: discard a packet larger than the client accepts, as if sent
          this.broker.metrics.dropped('client_max_packet_size');
          if (messageId !== undefined) this.session?.acknowledge(messageId, Date.now());
          return;
        }
      }
    }
    this.send(packet);
    this.broker.metrics.delivered();
  }

  /** Ends the connection: MQTT 5 clients get a DISCONNECT with the reason first (§3.14). */
  disconnect(reasonCode: number, reason?: string): void {
    if (this.closed) return;
    if (this.protocolVersion === 5 && this.connected) {
      const packet: Packet = { cmd: 'disconnect', reasonCode };
      if (reason) packet.properties = { reasonString: reason };
      try {
        this.writeRaw(packet);
      } catch {
        // the stream may be gone already
      }
    }
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.keepAliveTimer) clearTimeout(this.keepAliveTimer);
    this.stream.end();
    this.stream.destroySoon?.();
    setTimeout(() => this.stream.destroy(), 1000).unref();
    this.broker.connectionClosed(this);
  }
}

declare module 'node:stream' {
  interface Duplex {
    destroySoon?: () => void;
  }
}
