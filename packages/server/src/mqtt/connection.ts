import type { Duplex } from 'node:stream';
import mqtt, { type IConnectPacket, type IPublishPacket, type Packet } from 'mqtt-packet';
import type { Broker, ConnectionEnd } from './broker.js';
import type { ConnectionMeta } from './policy.js';
import type { Session } from './session.js';
import { rc, type BrokerMessage, type ClientIdentity, type ProtocolVersion } from './types.js';
import { handlePacket } from './handlers/index.js';
import { connectLevel, decodePacket, headerSize, lengthIncomplete, lengthMalformed, readRemainingLength } from './packets.js';
import { encodeAck, encodePublish } from './wire.js';

export type Will = IConnectPacket['will'];

/** How long a closed connection keeps reading (and discarding) what the peer sends, before it is destroyed. */
const lingerMs = 2000;

/** QoS 0 PUBLISH bytes of a message, kept on it per protocol level (3.1/3.1.1 alike, 5) and RETAIN. */
function encodedOnce(m: BrokerMessage, protocolVersion: ProtocolVersion, retain: boolean): Buffer {
  const slot = (protocolVersion === 5 ? 2 : 0) + (retain ? 1 : 0);
  const bufs = (m.encoded ??= []);
  return (bufs[slot] ??= encodePublish(m.topic, m.payload, 0, retain, false, undefined, protocolVersion === 5));
}

function uncork(conn: Connection): void {
  conn.uncork();
}

/**
 * Packets one connection handles from a read before the event loop serves the others: a 64 KiB
 * read holds about a thousand small PUBLISHes, which took a flood's `/health` p99 to seconds.
 */
const packetsPerTurn = 64;

/** Where a connection's packets wait while an earlier one is handled: a settled promise, one for all. */
const nothingWaiting: Promise<void> = Promise.resolve();

/** The connection a stream serves, for the stream listeners all connections share. */
const servedBy = Symbol('mqtt connection');
type Served = Duplex & { [servedBy]: Connection };

/**
 * One client connection over any duplex stream (TCP, TLS, WebSocket, or an in-memory pair in
 * tests). Parses packets, runs them through the handlers one after another, writes replies, and
 * enforces keep-alive, packet size and write-buffer limits.
 */
export class Connection {
  protocolVersion: ProtocolVersion = 4;
  clientId = '';
  identity: ClientIdentity = { kind: 'anonymous' };
  session: Session | undefined;
  connected = false;
  closed = false;
  will: Will | undefined;
  /** Set by a DISCONNECT that ends the connection normally: no will [MQTT-3.14.4-3]. */
  normalDisconnect = false;
  /** Why the connection ends, once that is known (presence); a stream that just goes away is `connection_lost`. */
  endReason: ConnectionEnd | undefined;
  /** Presence observers were told it connected (Broker.announceConnected), and are told once when it ends. */
  announced = false;
  /** The client's limits (CONNECT properties, MQTT 5). */
  clientReceiveMaximum = 65535;
  clientMaximumPacketSize = Infinity;
  clientTopicAliasMaximum = 0;
  // The collections below are made when first needed: most connections never use them, and an
  // idle fleet pays for every byte a connection holds (an empty Map is about 190 bytes, a Set 160)
  /** Topic aliases the client set up for its PUBLISH packets (§3.3.2.3.4). */
  inboundAliases: Map<number, string> | undefined;
  /** Aliases this server assigned for topics it sends to the client. */
  private outboundAliases: Map<string, number> | undefined;
  /** QoS 1/2 PUBLISH packets received and not yet acknowledged (our Receive Maximum, §3.3.4). */
  inboundInFlight = 0;
  /** QoS 2 packet ids whose PUBREC waits for the message to be stored. */
  pendingQos2: Set<number> | undefined;
  /** Acknowledgements waiting for storage; the ones after them wait too, to keep their order. */
  private acksWaiting = 0;
  private ackChain: Promise<void> = nothingWaiting;
  /** Not reading while an MQTT 3.1.1 client has as many unacknowledged QoS 1/2 messages as we take. */
  private ackPaused = false;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  /** Closes the connection if its CONNECT is not accepted in time (`connectTimeoutMs`). */
  private connectTimer: NodeJS.Timeout | undefined;
  /** The first packet, CONNECT, has arrived: packets may be as large as `maxPacketSize` from now on. */
  private connectReceived = false;
  private lastPacketAt: number;
  /** Packets whose handling waits (e.g. for the database); the next ones queue behind them. */
  private chain: Promise<void> = nothingWaiting;
  private waiting = 0;
  /**
   * The reads of a packet received in part (it spans socket reads), undefined between packets;
   * `partialBytes` in them, of the packet's `partialLength` (0 while its fixed header is split).
   * Only what has arrived is held: a fixed header announcing a large packet allocates nothing.
   */
  private partial: Buffer[] | undefined;
  private partialBytes = 0;
  private partialLength = 0;
  /**
   * The rest of a read when reading stopped in it (a queue at its limit, a CONNECT being checked):
   * its packets are handled when reading goes on, so a paused client gets no further than the
   * packet that paused it (a 64 KiB read holds a thousand small PUBLISHes).
   */
  private unread: Buffer | undefined;
  /** Handed the event loop back after `packetsPerTurn` packets of one read; the rest follows on its next turn. */
  private yielded = false;
  /** Writes are corked until the event loop's next turn: many packets, one system call. */
  private corked = false;
  /** Not reading while slow subscribers catch up (waitFor). */
  private readingPaused = false;
  /** Not reading while `maxWaitingPackets` packets wait their turn (queue). */
  private queuePaused = false;

  constructor(
    readonly broker: Broker,
    readonly stream: Duplex,
    readonly meta: ConnectionMeta,
  ) {
    this.lastPacketAt = broker.clock.now();
    // listeners shared by all connections: a closure per connection and event would cost an
    // idle connection about 60 bytes each
    (stream as Served)[servedBy] = this;
    stream.on('data', onStreamData);
    stream.on('error', onStreamGone);
    stream.on('close', onStreamGone);
    stream.on('end', onStreamGone);
    stream.on('drain', onStreamDrain);
    this.connectTimer = setTimeout(connectTimedOut, broker.options.connectTimeoutMs, this);
    this.connectTimer.unref();
  }

  /** Packets up to this size are accepted now: a small one before CONNECT, whoever sends it. */
  private get packetSizeLimit(): number {
    const o = this.broker.options;
    return this.connectReceived ? o.maxPacketSize : Math.min(o.maxPreAuthPacketSize, o.maxPacketSize);
  }

  /** Bytes from the client: the packets they complete are handled in order; the rest waits for the next read. */
  onData(chunk: Buffer): void {
    if (this.closed) return;
    this.lastPacketAt = this.broker.clock.now();
    this.broker.metrics.bytesIn(chunk.length);
    if (this.unread) {
      // a stream that still emits after pause(): behind what waits
      this.unread = Buffer.concat([this.unread, chunk]);
      return;
    }
    const partial = this.partial;
    if (!partial) return this.splitPackets(chunk);
    partial.push(chunk);
    this.partialBytes += chunk.length;
    if (this.partialLength > 0 && this.partialBytes < this.partialLength) return;
    this.partial = undefined;
    this.splitPackets(Buffer.concat(partial, this.partialBytes)); // one copy, once the packet is whole
  }

  /** Handles the whole packets in `data`; keeps a copy of an incomplete last one. */
  private splitPackets(data: Buffer): void {
    let at = 0;
    let handled = 0;
    while (at < data.length && !this.closed) {
      if (handled === packetsPerTurn) {
        // the others (connections, HTTP requests, timers) have their turn before the rest of this read
        this.unread = data.subarray(at);
        this.yielded = true;
        this.stream.pause();
        setImmediate(nextTurn, this);
        return;
      }
      const length = readRemainingLength(data, at);
      if (length === lengthMalformed) return this.onMalformed(new Error('Invalid Remaining Length'));
      const bodyAt = at + headerSize(length);
      // A packet larger than we accept is refused once its fixed header says so, before its bytes are buffered (§3.1.2.11.4)
      if (length !== lengthIncomplete && length > this.packetSizeLimit) return this.refuseTooLarge(connectLevel(data, at, bodyAt));
      const end = bodyAt + length;
      if (length === lengthIncomplete || end > data.length) {
        // copied: a view would keep the whole read alive for its last few bytes
        this.partial = [Buffer.from(data.subarray(at))];
        this.partialBytes = data.length - at;
        this.partialLength = length === lengthIncomplete ? 0 : end - at;
        return;
      }
      this.onBytes(data.subarray(at, end));
      at = end;
      handled++;
      if (!this.reading && at < data.length && !this.closed) {
        this.unread = data.subarray(at);
        return;
      }
    }
  }

  /** Whether packets are taken from the client now (none is: before its CONNECT is accepted, or while a reason to stop holds). */
  private get reading(): boolean {
    return !this.closed && this.connected && !this.readingPaused && !this.ackPaused && !this.queuePaused && !this.yielded;
  }

  /** The event loop's next turn after yielding: the rest of the read, then the socket again. */
  continueReading(): void {
    this.yielded = false;
    this.resumeReading();
  }

  /** One whole packet's bytes. */
  private onBytes(bytes: Buffer): void {
    const packet = decodePacket(bytes, this.protocolVersion);
    if (packet instanceof Error) return this.onMalformed(packet);
    this.onPacket(packet);
  }

  private onPacket(packet: Packet): void {
    if (this.closed) return;
    if ((packet.length ?? 0) > this.packetSizeLimit) {
      this.refuseTooLarge(packet.cmd === 'connect' ? packet.protocolVersion : undefined);
      return;
    }
    if (!this.connectReceived && packet.cmd === 'connect') {
      this.connectReceived = true;
      // Nothing more is read until the CONNECT is accepted: an unauthenticated client holds one
      // CONNECT in our memory, not the packets it sends after it (§3.1.4: none is processed before)
      this.stream.pause();
    }
    this.broker.metrics.packetIn(packet.cmd);
    // Packets are handled strictly in order: a PUBLISH's authorization may wait for the database,
    // and what comes after it waits too. Nothing waiting: handled at once, without a promise.
    if (this.waiting === 0) {
      let pending: void | Promise<void>;
      try {
        pending = handlePacket(this, packet);
      } catch (e) {
        return this.handlerFailed(e, packet);
      }
      if (pending) this.queue(pending, packet);
      return;
    }
    this.queue(this.chain.then(() => (this.closed ? undefined : handlePacket(this, packet))), packet);
  }

  private queue(work: Promise<void>, packet: Packet): void {
    this.waiting++;
    if (this.waiting >= this.broker.options.maxWaitingPackets && !this.queuePaused) {
      // nothing more is read, from the socket or from the read in hand (unread)
      this.queuePaused = true;
      this.stream.pause();
    }
    this.chain = work
      .catch((e: unknown) => this.handlerFailed(e, packet))
      .then(() => {
        // the last one handled: the chain lets go of its promises (an idle connection holds none)
        if (--this.waiting === 0) this.chain = nothingWaiting;
        // reading goes on once half the queue is handled, not at every packet around the limit
        if (this.queuePaused && this.waiting <= this.broker.options.maxWaitingPackets / 2) {
          this.queuePaused = false;
          this.resumeReading();
        }
      });
  }

  /** Reads the socket again unless another reason to stop still holds (or the CONNECT is not accepted yet). */
  private resumeReading(): void {
    if (!this.reading) return;
    const unread = this.unread;
    if (unread) {
      this.unread = undefined;
      this.splitPackets(unread);
      if (!this.reading) return;
    }
    this.stream.resume();
  }

  /** A packet over the size limit: MQTT 5 clients get the reason (a CONNACK before CONNECT is accepted, §3.2.2.2). */
  private refuseTooLarge(connectLevel: number | undefined): void {
    if (this.connected) return this.disconnect(rc.packetTooLarge, 'packet too large');
    this.broker.metrics.unauthenticatedClosed('packet_too_large');
    this.broker.log.info({ remote: this.meta.remoteAddress, transport: this.meta.transport, limit: this.packetSizeLimit }, 'MQTT packet before CONNECT was accepted is too large');
    if (connectLevel !== 5) return this.abort();
    this.protocolVersion = 5;
    this.writeRaw({ cmd: 'connack', sessionPresent: false, reasonCode: rc.packetTooLarge });
    this.close();
  }

  /** The CONNECT deadline passed: the client did not complete a CONNECT in time. */
  connectTimedOut(): void {
    if (this.closed || this.connected) return;
    this.broker.metrics.unauthenticatedClosed('connect_timeout');
    this.broker.log.info({ remote: this.meta.remoteAddress, transport: this.meta.transport, connectReceived: this.connectReceived, timeoutMs: this.broker.options.connectTimeoutMs }, 'MQTT connection closed: no CONNECT accepted in time');
    this.abort();
  }

  /** Closes a connection that was never accepted and has nothing to read from us: over TCP and TLS destroyed at once, without the lingering close. */
  abort(): void {
    this.close();
    // over WebSocket the close frame goes out (a client sees why, not an abnormal 1006) and ws
    // bounds what it still reads (its frame size limit, its closing handshake's timeout)
    if (this.meta.transport !== 'ws') this.stream.destroy();
  }

  /** The CONNECT was accepted (CONNACK sent): the deadline stops, reading goes on, and the broker counts it as a connection. */
  accepted(): void {
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined; // a cleared Timeout still holds its ~200 bytes while referenced
    this.broker.authenticated(this);
    this.resumeReading();
  }

  private handlerFailed(e: unknown, packet: Packet): void {
    this.broker.log.error({ err: e, clientId: this.clientId, cmd: packet.cmd }, 'MQTT handler failed');
    this.disconnect(rc.unspecified, 'internal error');
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
    if (seconds === 0) return;
    const grace = seconds * 1000 * 1.5;
    const check = () => {
      if (this.closed) return;
      const idle = this.broker.clock.now() - this.lastPacketAt;
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

  /**
   * Sends an acknowledgement once `stored` resolves and every acknowledgement before it has gone:
   * PUBACKs and PUBRECs go out in the order of their PUBLISH packets [MQTT-4.6.0-2], while later
   * packets are handled meanwhile. `stored` must not reject.
   */
  afterStored<T>(stored: Promise<T>, send: (result: T) => void): void {
    this.acksWaiting++;
    this.ackChain = Promise.all([this.ackChain, stored]).then(([, result]) => {
      this.acksWaiting--;
      if (this.closed) return;
      try {
        send(result);
      } catch (e) {
        this.broker.log.error({ err: e, clientId: this.clientId }, 'MQTT acknowledgement failed');
        this.disconnect(rc.unspecified, 'internal error');
      }
    });
  }

  /** Sends an acknowledgement now, or after those still waiting for storage. */
  inOrder(send: () => void): void {
    if (this.acksWaiting === 0) return send();
    this.afterStored(Promise.resolve(), send);
  }

  /** Stops reading until acknowledgements go out (an MQTT 3.1.1 client at our Receive Maximum). */
  pauseForAcks(): void {
    if (this.ackPaused || this.closed) return;
    this.ackPaused = true;
    this.stream.pause();
  }

  /** A QoS 1/2 PUBLISH was acknowledged or refused: one fewer in flight; reading goes on when it was paused for that. */
  inboundDone(): void {
    this.inboundInFlight--;
    if (!this.ackPaused || this.inboundInFlight + (this.session?.incomingQos2.size ?? 0) >= this.broker.options.receiveMaximum) return;
    this.ackPaused = false;
    this.resumeReading();
  }

  /** Writes a packet; a client that does not read its socket is dropped instead of growing our memory. */
  send(packet: Packet): void {
    if (this.closed) return;
    this.writeRaw(packet);
    this.checkSlowConsumer();
  }

  /** Writes packet bytes made already (the same QoS 0 PUBLISH to many subscribers is encoded once). */
  private sendBytes(buf: Buffer): void {
    if (this.closed) return;
    this.broker.metrics.packetOut('publish', buf.length);
    this.write(buf);
    this.checkSlowConsumer();
  }

  private checkSlowConsumer(): void {
    if (this.stream.writableLength > this.broker.options.maxWriteBuffer) {
      this.broker.metrics.slowConsumer();
      this.broker.log.warn({ clientId: this.clientId, buffered: this.stream.writableLength }, 'closing a slow MQTT consumer');
      this.disconnect(rc.quotaExceeded, 'slow consumer');
    }
  }

  private writeRaw(packet: Packet): void {
    const fast = (packet.cmd === 'puback' || packet.cmd === 'pubrec' || packet.cmd === 'pubrel' || packet.cmd === 'pubcomp') && !packet.reasonCode && !packet.properties;
    const buf = fast ? encodeAck(packet.cmd, packet.messageId!) : mqtt.generate(packet, { protocolVersion: this.protocolVersion });
    this.broker.metrics.packetOut(packet.cmd, buf.length);
    this.write(buf);
  }

  /** Sends what was corked (once the packets handled together have been written). */
  uncork(): void {
    this.corked = false;
    this.stream.uncork();
  }

  private write(buf: Buffer): void {
    if (!this.corked) {
      this.corked = true;
      this.stream.cork();
      process.nextTick(uncork, this);
    }
    this.stream.write(buf);
  }

  /** Sends a PUBLISH for a message, honouring the client's maximum packet size and topic aliases (MQTT 5). */
  sendPublish(m: BrokerMessage, qos: 0 | 1 | 2, retain: boolean, messageId: number | undefined, subscriptionIds: number[] | undefined, dup = false): void {
    const v5 = this.protocolVersion === 5;
    const buffered = this.stream.writableLength;
    if (buffered > this.broker.options.maxWriteBuffer / 8) {
      // a subscriber that does not keep up: the publisher of this message waits for it (handlePublish)
      this.broker.noteCongested(this);
      if (qos === 0 && buffered > this.broker.options.maxWriteBuffer / 2) {
        // still more: it loses QoS 0 messages (at most once) before it is cut off
        this.broker.metrics.dropped('slow_consumer');
        return;
      }
    }
    if (qos === 0 && (!v5 || (!m.properties && m.expiresAt === undefined && !subscriptionIds && this.clientTopicAliasMaximum === 0 && this.clientMaximumPacketSize === Infinity))) {
      // nothing in this PUBLISH depends on the subscriber but the protocol level and RETAIN
      this.sendBytes(encodedOnce(m, this.protocolVersion, retain));
      this.broker.metrics.delivered();
      return;
    }
    let topic = m.topic;
    let props: NonNullable<IPublishPacket['properties']> | undefined;
    let newAlias: number | undefined;
    if (v5) {
      props = m.properties ? { ...m.properties } : {};
      if (m.expiresAt !== undefined) props.messageExpiryInterval = Math.max(0, Math.ceil((m.expiresAt - this.broker.clock.now()) / 1000)); // [MQTT-3.3.2-6]
      if (subscriptionIds && subscriptionIds.length > 0) props.subscriptionIdentifier = subscriptionIds.length === 1 ? subscriptionIds[0]! : subscriptionIds;
      if (this.clientTopicAliasMaximum > 0) {
        const aliases = (this.outboundAliases ??= new Map());
        const alias = aliases.get(m.topic);
        if (alias !== undefined) {
          topic = '';
          props.topicAlias = alias;
        } else if (aliases.size < this.clientTopicAliasMaximum) {
          newAlias = aliases.size + 1;
          props.topicAlias = newAlias;
        }
      }
      if (Object.keys(props).length === 0) props = undefined;
    }
    const buf = props
      ? mqtt.generate({ cmd: 'publish', topic, payload: m.payload, qos, retain, dup, properties: props, ...(messageId !== undefined ? { messageId } : {}) }, { protocolVersion: 5 })
      : encodePublish(topic, m.payload, qos, retain, dup, messageId, v5);
    if (buf.length > this.clientMaximumPacketSize) {
      // [MQTT-3.1.2-25]: discard a packet larger than the client accepts, as if sent
      this.broker.metrics.dropped('client_max_packet_size');
      if (messageId !== undefined) this.session?.acknowledge(messageId, this.broker.clock.now());
      return;
    }
    if (newAlias !== undefined) this.outboundAliases!.set(m.topic, newAlias);
    this.sendBytes(buf);
    this.broker.metrics.delivered();
  }

  /**
   * Stops reading from this client until the given subscribers have written out what waits for
   * them (or 250 ms pass): a publisher cannot fill the memory of subscribers slower than it.
   */
  waitFor(subscribers: Set<Connection>): void {
    if (this.readingPaused || this.closed) return;
    this.readingPaused = true;
    this.stream.pause();
    // only a stream whose write() returned false emits 'drain' (its buffer passed the stream's
    // high-water mark: 64 KiB on Node 24); one below it is not waited for
    const waitingOn = new Set([...subscribers].filter((s) => !s.closed && s.stream.writableNeedDrain));
    const resume = () => {
      if (!this.readingPaused) return;
      this.readingPaused = false;
      clearTimeout(timer);
      for (const s of waitingOn) s.drainWaiters?.delete(drained);
      this.resumeReading();
    };
    const drained = (s: Connection) => {
      waitingOn.delete(s);
      if (waitingOn.size === 0) resume();
    };
    const timer = setTimeout(resume, 250);
    if (waitingOn.size === 0) return resume();
    for (const s of waitingOn) (s.drainWaiters ??= new Set()).add(drained);
  }

  /** Publishers waiting for this subscriber's write buffer to empty. */
  private drainWaiters: Set<(s: Connection) => void> | undefined;

  releaseWaiters(): void {
    if (!this.drainWaiters || this.drainWaiters.size === 0) return;
    const waiters = [...this.drainWaiters];
    this.drainWaiters.clear();
    for (const w of waiters) w(this);
  }

  /** Ends the connection: MQTT 5 clients get a DISCONNECT with the reason first (§3.14). */
  disconnect(reasonCode: number, reason?: string): void {
    if (this.closed) return;
    this.endReason ??= endOf(reasonCode);
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
    clearTimeout(this.connectTimer);
    this.partial = undefined;
    this.unread = undefined;
    this.stream.resume(); // not reading while a CONNECT was handled: read, and discard, until the client closes
    // A lingering close: our FIN follows the last packet we wrote (a DISCONNECT with its reason,
    // [MQTT-3.14.4-2]) and we go on reading, and discarding, what the client still sends until it
    // closes too. Destroying the socket at once would answer its packets in flight with a TCP
    // reset, which can throw away our last packets before the client has read them.
    this.stream.end();
    setTimeout(() => this.stream.destroy(), lingerMs).unref();
    this.broker.connectionClosed(this);
    this.releaseWaiters();
  }
}

/** Why a connection we close ends, by the reason code we close it with (§2.4). */
function endOf(reasonCode: number): ConnectionEnd {
  switch (reasonCode) {
    case rc.sessionTakenOver:
      return 'taken_over';
    case rc.keepAliveTimeout:
      return 'keepalive_timeout';
    case rc.serverShuttingDown:
      return 'server_shutdown';
    case rc.administrativeAction:
      return 'kicked';
    default:
      return 'connection_lost'; // a protocol error, a slow consumer: the server dropped the connection
  }
}

function onStreamData(this: Served, chunk: Buffer): void {
  this[servedBy].onData(chunk);
}

function onStreamGone(this: Served): void {
  this[servedBy].close();
}

function onStreamDrain(this: Served): void {
  this[servedBy].releaseWaiters();
}

function nextTurn(conn: Connection): void {
  conn.continueReading();
}

function connectTimedOut(conn: Connection): void {
  conn.connectTimedOut();
}
