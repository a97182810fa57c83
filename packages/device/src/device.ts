/**
 * A device's connection to Fleetwire over MQTT: it authenticates with the device id and secret (or
 * a client certificate), publishes to and subscribes on channels, and stays connected: when the
 * connection drops it tries again after an exponential, jittered delay, restores its
 * subscriptions, and sends the QoS 1/2 messages it kept in its outbox meanwhile.
 *
 * MQTT.js speaks the protocol; each connection attempt is one MQTT.js client made with
 * `reconnectPeriod: 0`, so that when and whether to try again is decided here, with the CONNACK
 * in hand (bad credentials are not retried for ever).
 */
import { EventEmitter } from 'node:events';
import { connect as mqttConnect, type IClientOptions, type IConnackPacket, type IDisconnectPacket, type IPublishPacket, type MqttClient, type Packet } from 'mqtt';
import { backoffDelay, definedOnly, resolveBackoff, type BackoffOptions } from './backoff.js';
import { ConnectionRefusedError, FleetwireError, OutboxFullError, PublishRefusedError, SubscribeRefusedError } from './errors.js';
import { senmlContentType, validateSenml, type SenmlPack, type SenmlRecord } from './senml.js';
import { messageFilter, messageTopic, parseMessageTopic, topicMatches } from './topics.js';
import { DeviceTwin, type TwinOptions } from './twin.js';

export type QoS = 0 | 1 | 2;

export interface DeviceOptions {
  /** The platform's MQTT address: `mqtt://host:1883`, `mqtts://host:8883`, `ws://host:8080/mqtt` or `wss://…`. */
  url: string;
  /** The device id: the MQTT username. */
  deviceId: string;
  /** The device secret: the MQTT password. Optional when `cert` and `key` authenticate the device. */
  secret?: string;
  /** CA certificate(s) to trust for mqtts/wss (PEM), when the platform's is not publicly trusted. */
  ca?: string | Buffer | string[] | Buffer[];
  /** Client certificate (PEM) whose CN is the device id, for the TLS listener. */
  cert?: string | Buffer;
  /** The client certificate's private key (PEM). */
  key?: string | Buffer;
  /** Check the platform's TLS certificate (default true). */
  rejectUnauthorized?: boolean;
  /** MQTT 5 (default) or 3.1.1 (4). MQTT 3.1.1 carries no content type: see `defaultContentType`. */
  protocolVersion?: 4 | 5;
  /** MQTT client id; defaults to the device id. */
  clientId?: string;
  /** Start a new session on every connection (default true). With false the platform keeps the session while the device is away. */
  clean?: boolean;
  /**
   * With `clean: false` on MQTT 5, how long the platform keeps the session after the device went
   * away, seconds (MQTT 5 Session Expiry Interval; default 604 800, 7 days, the platform's most).
   * MQTT 3.1.1 has no such field: the platform keeps its sessions 7 days.
   */
  sessionExpirySeconds?: number;
  /** MQTT keep-alive, seconds (default 60). */
  keepaliveSeconds?: number;
  /** How long one connection attempt may take until the CONNACK, ms (default 10 000). */
  connectTimeoutMs?: number;
  /** Delays between connection attempts. */
  reconnect?: BackoffOptions;
  /** Most QoS 1/2 messages kept waiting for the platform's acknowledgement, sent or not (default 1000). */
  outboxLimit?: number;
  /** On how many connections a QoS 1/2 message is sent before it fails, when each closes before acknowledging it (default 5). */
  publishAttempts?: number;
  /**
   * The content type the platform assumes for messages without one (its `FLEETWIRE_MQTT_CONTENT_TYPE`,
   * `application/senml+json` by default): messages received without the property get it, and on
   * MQTT 3.1.1 it is the only content type that can be published.
   */
  defaultContentType?: string;
  /** A number in [0, 1) for the jitter (tests fix it); `Math.random` by default. */
  random?: () => number;
}

export interface PublishOptions {
  /** After `messages/`, e.g. `lab/floor-2`. */
  subtopic?: string;
  /** Default 1: the promise resolves once the platform has stored the message. */
  qos?: QoS;
  retain?: boolean;
}

export interface SubscribeOptions {
  /**
   * Which messages of the channel: omitted, all of them (any subtopic or none); `''`, only those
   * without a subtopic; otherwise a subtopic, with `+` for one segment and `#` for the rest.
   */
  subtopic?: string;
  /** Highest QoS to receive at (default 1). */
  qos?: QoS;
}

/** A message received on a subscription. */
export interface DeviceMessage {
  channel: string;
  /** '' when published without one. */
  subtopic: string;
  topic: string;
  /** The MQTT 5 Content Type property, or `defaultContentType` when absent. */
  contentType: string;
  payload: Buffer;
  /** The parsed payload, for JSON content types (`application/json`, `application/senml+json`, any `+json`) that parse. */
  json?: unknown;
  /** The records, for `application/senml+json` that parses as an array. */
  senml?: SenmlPack;
  qos: QoS;
  retain: boolean;
}

export type MessageHandler = (message: DeviceMessage) => void | Promise<void>;

export interface Subscription {
  readonly channel: string;
  /** The MQTT topic filter. */
  readonly filter: string;
  /** Stops this handler; the filter is unsubscribed when no handler is left on it. */
  unsubscribe(): Promise<void>;
}

export type DeviceState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

export interface DeviceEvents {
  /** A connection is up and the subscriptions are in place again. */
  connected: [info: { sessionPresent: boolean; reconnected: boolean }];
  /** The connection went down; the client tries again unless it was closed or refused for good. */
  disconnected: [info: { error?: Error; reasonCode?: number; reason?: string }];
  /** The next attempt starts after `delayMs`; `error` is why the last one ended. */
  reconnecting: [info: { attempt: number; delayMs: number; error?: Error }];
  /**
   * What no promise reports: a refusal that stops the client, a subscription refused when it was
   * restored, a message handler that threw. Emitted only when listened to, so that an unheard
   * error never ends the program.
   */
  error: [error: Error];
  /** The client stopped: `close()`, or a refusal that retrying would not change (`error`). */
  close: [info: { error?: Error }];
  /** A client of `connectEnrolled`: a new certificate is stored, and the client reconnects with it. */
  renewed: [info: { certificateSerial: string; notAfter: Date }];
  /** A client of `connectEnrolled`: a renewal failed; the next try is in `retryInMs`. */
  'renewal-error': [error: Error, info: { attempt: number; retryInMs: number }];
}

/** A client certificate to connect with from the next connection on. */
export interface ClientCertificate {
  cert: string | Buffer;
  key: string | Buffer;
  ca?: DeviceOptions['ca'];
}

/** A QoS 1/2 message waiting for the platform's acknowledgement. */
interface Outgoing {
  topic: string;
  payload: Buffer;
  qos: 1 | 2;
  retain: boolean;
  contentType: string;
  resolve: () => void;
  reject: (e: Error) => void;
  /** The connection it was last sent on, while that connection is up. */
  sentOn: number | undefined;
  attempts: number;
}

interface Subscribed {
  channel: string;
  qos: QoS;
  handlers: Set<MessageHandler>;
  /** A platform topic outside the channels (a twin's): its handlers get the topic and the bytes. */
  raw?: Set<(topic: string, payload: Buffer) => void>;
  /** Granted in the platform's session for this client (kept across connections with `clean: false`). */
  inSession: boolean;
}

/** What became of one SUBSCRIBE: granted, refused, or no answer before the connection closed. */
type SubscribeOutcome = 'granted' | 'lost' | SubscribeRefusedError;

/** Receive Maximum when the CONNACK gives none (MQTT 5 §3.2.2.3.3). */
const defaultReceiveMaximum = 65_535;
/** DISCONNECT reason: another connection with the same client id took over (MQTT 5 §3.14.2.1). */
const sessionTakenOver = 0x8e;
/** How long a graceful close waits for the DISCONNECT to be written, ms. */
const closeGraceMs = 2000;

const jsonType = /^application\/(?:[\w.+-]+\+)?json$/i;

export class FleetwireDevice extends EventEmitter<DeviceEvents> {
  private readonly options: Required<Pick<DeviceOptions, 'url' | 'deviceId' | 'protocolVersion' | 'clientId' | 'clean' | 'sessionExpirySeconds' | 'keepaliveSeconds' | 'connectTimeoutMs' | 'outboxLimit' | 'publishAttempts' | 'defaultContentType' | 'random'>> & DeviceOptions;
  private readonly backoff;
  private currentState: DeviceState = 'idle';
  private client: MqttClient | undefined;
  /** Counts connection attempts: callbacks of an older one are ignored. */
  private generation = 0;
  /** Failed attempts since the last CONNACK that accepted. */
  private failures = 0;
  private everConnected = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private receiveMaximum = defaultReceiveMaximum;
  /** The platform's Maximum Packet Size (MQTT 5 CONNACK), bytes; undefined: none given. */
  private maximumPacketSize: number | undefined;
  private readonly outbox = new Set<Outgoing>();
  private readonly twins = new Map<string, DeviceTwin>();
  private readonly subscriptions = new Map<string, Subscribed>();
  /** Filters unsubscribed while offline that the platform's kept session still holds. */
  private readonly unsubscribedOffline = new Set<string>();
  private waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  /** The connection is being ended to connect again at once (a new certificate). */
  private reconnectAtOnce = false;

  constructor(options: DeviceOptions) {
    super();
    this.options = {
      protocolVersion: 5,
      clientId: options.deviceId,
      clean: true,
      sessionExpirySeconds: 7 * 24 * 3600,
      keepaliveSeconds: 60,
      connectTimeoutMs: 10_000,
      outboxLimit: 1000,
      publishAttempts: 5,
      defaultContentType: senmlContentType,
      random: Math.random,
      ...definedOnly(options),
      url: options.url,
      deviceId: options.deviceId,
    };
    const o = this.options;
    const bad = (what: string) => new FleetwireError('invalid_options', what);
    if (typeof o.url !== 'string' || !/^(mqtts?|wss?):\/\//.test(o.url)) throw bad(`url must start with mqtt://, mqtts://, ws:// or wss://, got ${JSON.stringify(o.url)}`);
    if (typeof o.deviceId !== 'string' || o.deviceId.length === 0) throw bad('deviceId is required');
    if (o.secret === undefined && (o.cert === undefined || o.key === undefined)) throw bad('a secret, or a client certificate (cert and key), is required');
    if (o.protocolVersion !== 4 && o.protocolVersion !== 5) throw bad(`protocolVersion must be 4 (MQTT 3.1.1) or 5, got ${String(o.protocolVersion)}`);
    if (!Number.isInteger(o.sessionExpirySeconds) || o.sessionExpirySeconds < 0 || o.sessionExpirySeconds > 0xffffffff) throw bad(`sessionExpirySeconds must be an integer from 0 to 4294967295, got ${o.sessionExpirySeconds}`);
    if (!Number.isInteger(o.outboxLimit) || o.outboxLimit < 0) throw bad(`outboxLimit must be an integer ≥ 0, got ${o.outboxLimit}`);
    if (!Number.isInteger(o.publishAttempts) || o.publishAttempts < 1) throw bad(`publishAttempts must be an integer ≥ 1, got ${o.publishAttempts}`);
    try {
      this.backoff = resolveBackoff(o.reconnect);
    } catch (e) {
      throw bad((e as Error).message);
    }
  }

  get state(): DeviceState {
    return this.currentState;
  }

  get connected(): boolean {
    return this.currentState === 'connected';
  }

  /** QoS 1/2 messages waiting for the platform's acknowledgement. */
  get outboxSize(): number {
    return this.outbox.size;
  }

  /**
   * Connects, and resolves once connected. Until then failures are retried with backoff (see the
   * `reconnecting` event); it rejects with a `ConnectionRefusedError` when the platform refuses
   * for a reason retrying would not change (bad credentials, not authorized), or when closed.
   */
  connect(): Promise<void> {
    if (this.currentState === 'closed') return Promise.reject(new FleetwireError('closed', 'the client was closed'));
    if (this.currentState === 'connected') return Promise.resolve();
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (this.currentState === 'idle') this.attempt();
    return done;
  }

  /**
   * Publishes SenML records (`application/senml+json`), checked first: a bad pack rejects with a
   * `SenmlError`. QoS 1 (the default) resolves once the platform has stored the message; offline,
   * it waits in the outbox. Every failure, bad input included, comes as a rejection.
   */
  async publishSenml(channel: string, records: SenmlRecord[] | SenmlRecord, options: PublishOptions = {}): Promise<void> {
    const pack = validateSenml(Array.isArray(records) ? records : [records]);
    return this.send(channel, Buffer.from(JSON.stringify(pack)), senmlContentType, options);
  }

  /** Publishes a JSON object or array of objects (`application/json`; needs MQTT 5 unless the platform's default content type is JSON). */
  async publishJson(channel: string, value: object, options: PublishOptions = {}): Promise<void> {
    const isObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
    if (!(isObject(value) || (Array.isArray(value) && value.length > 0 && value.every(isObject)))) {
      throw new FleetwireError('invalid_json', 'a JSON message must be an object or a non-empty array of objects');
    }
    return this.send(channel, Buffer.from(JSON.stringify(value)), 'application/json', options);
  }

  /** Publishes bytes (or text, as UTF-8) with a content type (default `application/octet-stream`: stored as is). */
  async publish(channel: string, payload: Uint8Array | string, options: PublishOptions & { contentType?: string } = {}): Promise<void> {
    const bytes = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    return this.send(channel, bytes, options.contentType ?? 'application/octet-stream', options);
  }

  /**
   * Calls `handler` with each message on the channel (and subtopic filter). The subscription is
   * restored on every new connection. Connected, it resolves once the platform granted it and
   * rejects with a `SubscribeRefusedError` if refused; offline, it resolves at once and a refusal
   * at the next connection comes as an `error` event.
   */
  async subscribe(channel: string, options: SubscribeOptions, handler: MessageHandler): Promise<Subscription>;
  async subscribe(channel: string, handler: MessageHandler): Promise<Subscription>;
  async subscribe(channel: string, optionsOrHandler: SubscribeOptions | MessageHandler, maybeHandler?: MessageHandler): Promise<Subscription> {
    const options = typeof optionsOrHandler === 'function' ? {} : optionsOrHandler;
    const handler = typeof optionsOrHandler === 'function' ? optionsOrHandler : maybeHandler;
    if (typeof handler !== 'function') throw new FleetwireError('invalid_options', 'subscribe needs a message handler');
    this.assertOpen();
    const filter = messageFilter(channel, options.subtopic);
    const qos = options.qos ?? 1;
    let entry = this.subscriptions.get(filter);
    const fresh = entry === undefined;
    const raised = entry !== undefined && qos > entry.qos;
    if (entry === undefined) {
      entry = { channel, qos, handlers: new Set(), inSession: false };
      this.subscriptions.set(filter, entry);
    }
    entry.qos = Math.max(entry.qos, qos) as QoS;
    entry.handlers.add(handler);
    const subscription: Subscription = { channel, filter, unsubscribe: () => this.unsubscribe(filter, handler) };
    this.unsubscribedOffline.delete(filter);
    if (raised) entry.inSession = false;
    if ((fresh || raised) && this.client && this.connected) {
      const outcome = await this.subscribeOn(this.client, filter, entry);
      if (outcome instanceof SubscribeRefusedError) {
        entry.handlers.delete(handler);
        if (entry.handlers.size === 0) this.subscriptions.delete(filter);
        throw outcome;
      }
    }
    return subscription;
  }

  /** The device's twin (`name` omitted: the default one) over this connection (twin.ts, docs/twins.md). */
  twin(name = 'default', options: TwinOptions = {}): DeviceTwin {
    let t = this.twins.get(name);
    if (!t) this.twins.set(name, (t = new DeviceTwin(this, this.options.deviceId, name, options)));
    return t;
  }

  /**
   * Stops: no more attempts, QoS 1/2 messages not yet acknowledged are rejected with a `closed`
   * error, and a live connection ends with a DISCONNECT.
   */
  async close(): Promise<void> {
    if (this.currentState === 'closed') return;
    await this.stop(undefined);
  }

  /**
   * Connects with another client certificate (a renewed one): a live connection is ended
   * gracefully and a new one made at once; subscriptions are restored and the outbox is kept, as
   * on any reconnection. Offline, the next attempt uses it.
   */
  useCertificate(certificate: ClientCertificate): void {
    this.assertOpen();
    this.options.cert = certificate.cert;
    this.options.key = certificate.key;
    if (certificate.ca !== undefined) this.options.ca = certificate.ca;
    const client = this.client;
    if (!client || this.retryTimer !== undefined) return; // not started, or waiting to retry: the next attempt uses it
    this.reconnectAtOnce = true;
    // connected: ended now; still connecting: ended once connected (see onConnect), or retried at once if that attempt fails
    if (this.connected) void endClient(client, true);
  }

  // ---- publishing ----

  private send(channel: string, payload: Buffer, contentType: string, options: PublishOptions): Promise<void> {
    this.assertOpen();
    return this.sendTo(messageTopic(channel, options.subtopic), payload, contentType, options, true);
  }

  /**
   * Publishes to a platform topic outside the channels (a twin's `…/get`, `…/update`), through
   * the outbox as any QoS 1 message: sent once connected, again after a reconnection. For the
   * SDK's own clients (twin.ts), not device programs.
   * @internal
   */
  publishTopic(topic: string, payload: Buffer, options: { qos?: QoS } = {}): Promise<void> {
    this.assertOpen();
    // the platform reads these as JSON whatever their content type: MQTT 3.1.1 may send them too
    return this.sendTo(topic, payload, 'application/json', options, false);
  }

  /**
   * Calls `handler` with each message on a platform topic filter outside the channels (a twin's
   * replies and notifications), restored on every new connection as channel subscriptions are.
   * @internal
   */
  async subscribeTopic(filter: string, handler: (topic: string, payload: Buffer) => void, qos: QoS = 1): Promise<{ unsubscribe(): Promise<void> }> {
    this.assertOpen();
    let entry = this.subscriptions.get(filter);
    const fresh = entry === undefined;
    if (entry === undefined) {
      entry = { channel: '', qos, handlers: new Set(), raw: new Set(), inSession: false };
      this.subscriptions.set(filter, entry);
    }
    const raw = (entry.raw ??= new Set());
    raw.add(handler);
    // its removal goes through the channel path: one handler set per filter
    const marker: MessageHandler = () => {};
    entry.handlers.add(marker);
    this.unsubscribedOffline.delete(filter);
    if (fresh && this.client && this.connected) {
      const outcome = await this.subscribeOn(this.client, filter, entry);
      if (outcome instanceof SubscribeRefusedError) {
        this.subscriptions.delete(filter);
        throw outcome;
      }
    }
    return { unsubscribe: async () => (raw.delete(handler), this.unsubscribe(filter, marker)) };
  }

  private sendTo(topic: string, payload: Buffer, contentType: string, options: PublishOptions, typed: boolean): Promise<void> {
    const qos = options.qos ?? 1;
    if (qos !== 0 && qos !== 1 && qos !== 2) throw new FleetwireError('invalid_options', `qos must be 0, 1 or 2, got ${String(qos)}`);
    // MQTT 3.1.1 has no Content Type property: the platform takes every message as its default type
    if (typed && this.options.protocolVersion === 4 && contentType !== this.options.defaultContentType) {
      throw new FleetwireError('content_type_needs_mqtt5', `MQTT 3.1.1 cannot say a message is ${contentType}: the platform would take it as ${this.options.defaultContentType}; connect with MQTT 5`);
    }
    const retain = options.retain ?? false;
    if (qos === 0) return this.sendAtMostOnce(topic, payload, contentType, retain);
    if (this.outbox.size >= this.options.outboxLimit) return Promise.reject(new OutboxFullError(this.options.outboxLimit));
    return new Promise<void>((resolve, reject) => {
      this.outbox.add({ topic, payload, qos, retain, contentType, resolve, reject, sentOn: undefined, attempts: 0 });
      this.flushOutbox();
    });
  }

  /** QoS 0 is never queued (at most once, MQTT 5 §4.3.1): without a connection it fails at once. */
  private sendAtMostOnce(topic: string, payload: Buffer, contentType: string, retain: boolean): Promise<void> {
    const client = this.client;
    if (!client || !this.connected) return Promise.reject(new FleetwireError('not_connected', `not connected: a QoS 0 message on ${topic} is not queued (use QoS 1 to have it sent after reconnecting)`));
    const tooLarge = this.tooLarge(topic, payload, 0, contentType);
    if (tooLarge) return Promise.reject(tooLarge);
    return new Promise((resolve, reject) => {
      client.publish(topic, payload, this.publishOptions(0, retain, contentType), (err) => (err ? reject(new FleetwireError('not_connected', `the connection closed before the message on ${topic} was written`, { cause: err })) : resolve()));
    });
  }

  private publishOptions(qos: QoS, retain: boolean, contentType: string) {
    // MQTT 5 §3.3.2.3.9: the Content Type property tells the platform how to read the payload
    return { qos, retain, ...(this.options.protocolVersion === 5 ? { properties: { contentType } } : {}) };
  }

  /** Sends the outbox's unsent messages, in order, up to the platform's Receive Maximum in flight. */
  private flushOutbox(): void {
    const client = this.client;
    if (!client || !this.connected) return;
    const gen = this.generation;
    let inFlight = 0;
    for (const m of this.outbox) if (m.sentOn === gen) inFlight++;
    for (const m of this.outbox) {
      if (inFlight >= this.receiveMaximum) return; // [MQTT-3.3.4-7]
      if (m.sentOn === gen) continue;
      const tooLarge = this.tooLarge(m.topic, m.payload, m.qos, m.contentType);
      if (tooLarge) {
        this.outbox.delete(m);
        m.reject(tooLarge);
        continue;
      }
      m.sentOn = gen;
      m.attempts++;
      inFlight++;
      client.publish(m.topic, m.payload, this.publishOptions(m.qos, m.retain, m.contentType), (err, packet) => this.acknowledged(m, gen, err, packet));
    }
  }

  /**
   * Refuses a PUBLISH larger than the platform accepts (MQTT 5 §3.2.2.3.6): sent anyway, it would be
   * answered with DISCONNECT 0x95, and sent again on every new connection.
   */
  private tooLarge(topic: string, payload: Buffer, qos: QoS, contentType: string): FleetwireError | undefined {
    if (this.maximumPacketSize === undefined) return undefined;
    const size = publishPacketSize(topic, payload.length, qos, this.options.protocolVersion === 5 ? contentType : undefined);
    if (size <= this.maximumPacketSize) return undefined;
    return new FleetwireError('message_too_large', `the message on ${topic} makes a ${size}-byte PUBLISH and the platform accepts at most ${this.maximumPacketSize} bytes`);
  }

  private acknowledged(m: Outgoing, gen: number, err: Error | undefined, packet: Packet | undefined): void {
    // a callback from a connection that is gone: the message waits for the next one
    if (m.sentOn !== gen || !this.outbox.has(m)) return;
    const code = (err as { code?: unknown } | undefined)?.code;
    if (err && !(typeof code === 'number' && code >= 0x80)) return;
    this.outbox.delete(m);
    if (err) {
      const reason = (packet as { properties?: { reasonString?: string } } | undefined)?.properties?.reasonString;
      m.reject(new PublishRefusedError(m.topic, code as number, reason));
    } else m.resolve();
    this.flushOutbox();
  }

  /** After a connection closed: its unacknowledged messages wait for the next, unless they used up their attempts. */
  private requeue(gen: number): void {
    for (const m of this.outbox) {
      if (m.sentOn !== gen) continue;
      m.sentOn = undefined;
      if (m.attempts < this.options.publishAttempts) continue;
      this.outbox.delete(m);
      m.reject(new FleetwireError('publish_failed', `the message on ${m.topic} was sent on ${m.attempts} connections and each closed before the platform acknowledged it`));
    }
  }

  // ---- subscribing ----

  /** One SUBSCRIBE for one filter. A filter whose SUBACK was lost with the connection is subscribed on the next. */
  private subscribeOn(client: MqttClient, filter: string, entry: Subscribed): Promise<SubscribeOutcome> {
    return new Promise((resolve) => {
      client.subscribe(filter, { qos: entry.qos }, (_err, granted, packet) => {
        // on a refusal MQTT.js hands over the SUBACK; without one the connection closed first
        const code: unknown = packet?.granted?.[0] ?? (packet ? granted?.[0]?.qos : undefined);
        if (typeof code !== 'number') return resolve('lost');
        if (code >= 0x80) return resolve(new SubscribeRefusedError(filter, code, this.options.protocolVersion)); // [MQTT-3.9.3-1]
        entry.inSession = true;
        resolve('granted');
      });
    });
  }

  private async unsubscribe(filter: string, handler: MessageHandler): Promise<void> {
    const entry = this.subscriptions.get(filter);
    if (!entry || !entry.handlers.delete(handler) || entry.handlers.size > 0) return;
    this.subscriptions.delete(filter);
    const client = this.client;
    // a session the platform keeps would go on delivering there: unsubscribed at the next connection
    if (!client || !this.connected) return void (entry.inSession && this.unsubscribedOffline.add(filter));
    await new Promise<void>((resolve) => client.unsubscribe(filter, () => resolve()));
  }

  /**
   * Brings the platform's session in line on a new connection: a new session gets every
   * subscription again; a kept one [MQTT-3.2.2-2] only those made or dropped while offline. A
   * filter refused now is dropped and reported.
   */
  private async restoreSubscriptions(client: MqttClient, sessionPresent: boolean): Promise<void> {
    if (!sessionPresent) {
      for (const entry of this.subscriptions.values()) entry.inSession = false;
      this.unsubscribedOffline.clear();
    }
    for (const filter of this.unsubscribedOffline) client.unsubscribe(filter);
    this.unsubscribedOffline.clear();
    const restored = [...this.subscriptions].filter(([, entry]) => !entry.inSession).map(async ([filter, entry]) => {
      const outcome = await this.subscribeOn(client, filter, entry);
      if (!(outcome instanceof SubscribeRefusedError)) return;
      if (this.subscriptions.get(filter) === entry) this.subscriptions.delete(filter);
      this.report(outcome);
    });
    await Promise.all(restored);
  }

  private deliver(topic: string, payload: Buffer, packet: IPublishPacket): void {
    const address = parseMessageTopic(topic);
    if (!address) {
      // a platform topic (a twin's): to the SDK clients that subscribed to it
      for (const [filter, entry] of this.subscriptions) {
        if (!entry.raw || !topicMatches(filter, topic)) continue;
        for (const handler of entry.raw) {
          try {
            handler(topic, payload);
          } catch (e) {
            this.report(asError(e));
          }
        }
      }
      return;
    }
    let message: DeviceMessage | undefined;
    for (const [filter, entry] of this.subscriptions) {
      if (entry.raw || !topicMatches(filter, topic)) continue;
      message ??= this.decode(address, topic, payload, packet);
      for (const handler of entry.handlers) {
        try {
          const result = handler(message);
          if (result instanceof Promise) result.catch((e: unknown) => this.report(asError(e)));
        } catch (e) {
          this.report(asError(e));
        }
      }
    }
  }

  private decode(address: { channel: string; subtopic: string }, topic: string, payload: Buffer, packet: IPublishPacket): DeviceMessage {
    const contentType = packet.properties?.contentType ?? this.options.defaultContentType;
    const message: DeviceMessage = { ...address, topic, contentType, payload, qos: packet.qos, retain: packet.retain };
    if (jsonType.test(contentType)) {
      try {
        message.json = JSON.parse(payload.toString('utf8')) as unknown;
        if (contentType.toLowerCase() === senmlContentType && Array.isArray(message.json)) message.senml = message.json as SenmlPack;
      } catch {
        // not JSON after all: the bytes are still there
      }
    }
    return message;
  }

  // ---- the connection ----

  /** Opens one connection attempt with a new MQTT.js client. */
  private attempt(): void {
    const gen = ++this.generation;
    this.retryTimer = undefined;
    this.currentState = this.everConnected ? 'reconnecting' : 'connecting';
    const o = this.options;
    const mqttOptions: IClientOptions = {
      protocolVersion: o.protocolVersion,
      clientId: o.clientId,
      username: o.deviceId,
      clean: o.clean,
      keepalive: o.keepaliveSeconds,
      connectTimeout: o.connectTimeoutMs,
      reconnectPeriod: 0, // reconnection is ours: see reconnectLater()
      resubscribe: false, // so are the subscriptions: see restoreSubscriptions()
      queueQoSZero: false,
      // MQTT 5 §3.1.2.11.2: without a Session Expiry Interval the session ends with the connection, clean or not
      ...(o.protocolVersion === 5 && !o.clean ? { properties: { sessionExpiryInterval: o.sessionExpirySeconds } } : {}),
      ...(o.secret !== undefined ? { password: o.secret } : {}),
      ...(o.ca !== undefined ? { ca: o.ca } : {}),
      ...(o.cert !== undefined ? { cert: o.cert } : {}),
      ...(o.key !== undefined ? { key: o.key } : {}),
      ...(o.rejectUnauthorized !== undefined ? { rejectUnauthorized: o.rejectUnauthorized } : {}),
    };
    const client = mqttConnect(o.url, mqttOptions);
    this.client = client;
    let connack: IConnackPacket | undefined;
    let disconnect: IDisconnectPacket | undefined;
    let lastError: Error | undefined;
    client.on('packetreceive', (p) => {
      if (p.cmd === 'connack') connack = p;
      else if (p.cmd === 'disconnect') disconnect = p;
    });
    client.on('error', (e) => (lastError = e));
    client.on('message', (topic, payload, packet) => {
      if (gen === this.generation) this.deliver(topic, payload, packet);
    });
    client.on('connect', (packet) => void this.onConnect(gen, client, packet));
    client.on('close', () => {
      if (gen !== this.generation) return;
      this.generation++; // this attempt is over: nothing it says later counts
      const code = connack ? (o.protocolVersion === 5 ? connack.reasonCode : connack.returnCode) : undefined;
      const refusal = code !== undefined && code !== 0 ? new ConnectionRefusedError(code, o.protocolVersion, connack?.properties?.reasonString) : undefined;
      this.onClose(gen, client, refusal ?? serverDisconnect(disconnect) ?? lastError ?? new Error('the connection closed'), disconnect);
    });
  }

  private async onConnect(gen: number, client: MqttClient, connack: IConnackPacket): Promise<void> {
    if (gen !== this.generation) return;
    // connected with the certificate that was replaced while this attempt was under way
    if (this.reconnectAtOnce) return void endClient(client, true);
    const reconnected = this.everConnected;
    this.currentState = 'connected';
    this.everConnected = true;
    this.failures = 0;
    this.receiveMaximum = connack.properties?.receiveMaximum ?? defaultReceiveMaximum;
    this.maximumPacketSize = connack.properties?.maximumPacketSize;
    const restoring = this.restoreSubscriptions(client, connack.sessionPresent);
    this.flushOutbox();
    await restoring;
    if (gen !== this.generation || !this.connected) return;
    this.emit('connected', { sessionPresent: connack.sessionPresent, reconnected });
    for (const w of this.waiters.splice(0)) w.resolve();
  }

  private onClose(gen: number, client: MqttClient, error: Error, disconnect: IDisconnectPacket | undefined): void {
    endClient(client, false);
    const wasConnected = this.currentState === 'connected';
    this.requeue(gen);
    if (this.currentState === 'closed') return;
    if (wasConnected) {
      const reason = disconnect?.properties?.reasonString;
      this.emit('disconnected', { error, ...(disconnect?.reasonCode !== undefined ? { reasonCode: disconnect.reasonCode } : {}), ...(reason !== undefined ? { reason } : {}) });
    }
    if (error instanceof ConnectionRefusedError && !error.retryable) {
      void this.stop(error);
      return;
    }
    if (this.reconnectAtOnce) {
      this.reconnectAtOnce = false;
      this.attempt();
      return;
    }
    // [MQTT-3.1.4-3]: another client connected with our client id; taking the session back would
    // have the two take it from each other for ever
    if (disconnect?.reasonCode === sessionTakenOver) {
      void this.stop(new FleetwireError('session_taken_over', `another connection with client id ${JSON.stringify(this.options.clientId)} took the session over: give each connection its own clientId`, { cause: error }));
      return;
    }
    this.reconnectLater(error);
  }

  private reconnectLater(error: Error): void {
    const delayMs = backoffDelay(this.failures, this.backoff, this.options.random);
    this.failures++;
    this.currentState = this.everConnected ? 'reconnecting' : 'connecting';
    this.emit('reconnecting', { attempt: this.failures, delayMs, error });
    this.retryTimer = setTimeout(() => this.attempt(), delayMs);
  }

  private async stop(error: Error | undefined): Promise<void> {
    this.currentState = 'closed';
    clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    this.generation++; // whatever the last client still says is ignored
    const why = error ?? new FleetwireError('closed', 'the client was closed');
    for (const m of this.outbox) m.reject(why);
    this.outbox.clear();
    for (const w of this.waiters.splice(0)) w.reject(why);
    if (error) this.report(error);
    if (client) await endClient(client, client.connected);
    this.emit('close', error ? { error } : {});
  }

  private assertOpen(): void {
    if (this.currentState === 'closed') throw new FleetwireError('closed', 'the client was closed');
  }

  /** An error for the `error` event, when someone listens (see DeviceEvents). */
  private report(error: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }
}

/** Creates a client and connects it: resolves once connected (see `FleetwireDevice.connect`). */
export async function connectDevice(options: DeviceOptions): Promise<FleetwireDevice> {
  const device = new FleetwireDevice(options);
  await device.connect();
  return device;
}

/** Bytes of a Variable Byte Integer (MQTT 5 §1.5.5). */
function varintBytes(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

/** The size of the PUBLISH packet we send (MQTT 5 §3.3): fixed header, topic, packet id, the Content Type property, payload. */
export function publishPacketSize(topic: string, payloadBytes: number, qos: QoS, contentType: string | undefined): number {
  const properties = contentType === undefined ? undefined : 1 + 2 + Buffer.byteLength(contentType);
  const remaining = 2 + Buffer.byteLength(topic) + (qos > 0 ? 2 : 0) + (properties === undefined ? 0 : varintBytes(properties) + properties) + payloadBytes;
  return 1 + varintBytes(remaining) + remaining;
}

/** The platform ended the connection with a DISCONNECT (MQTT 5 §3.14), e.g. 0x98 when an operator changed the device's access. */
function serverDisconnect(packet: IDisconnectPacket | undefined): Error | undefined {
  if (!packet) return undefined;
  const code = packet.reasonCode ?? 0;
  const reason = packet.properties?.reasonString;
  return new Error(`the platform ended the connection: 0x${code.toString(16).padStart(2, '0')}${reason ? ` (${reason})` : ''}`);
}

/** Ends an MQTT.js client: gracefully (DISCONNECT, at most closeGraceMs) or at once. */
function endClient(client: MqttClient, graceful: boolean): Promise<void> {
  client.on('error', () => {}); // late socket errors of a client we are done with
  return new Promise((resolve) => {
    if (!graceful) return void client.end(true, {}, () => resolve());
    const hard = setTimeout(() => client.end(true, {}, () => resolve()), closeGraceMs);
    client.end(false, {}, () => {
      clearTimeout(hard);
      resolve();
    });
  });
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

