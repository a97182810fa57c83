import { connect, headers, nanos, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import type { Accepted, Bus, BusStats, ConsumeOptions, DurableConsumer, LiveSubscription, SubscribeOptions } from './bus.js';
import type { Envelope, Protocol } from './envelope.js';

export interface NatsBusOptions {
  url: string;
  /** JetStream stream holding every message (subjects `<prefix>.>`). */
  stream: string;
  subjectPrefix: string;
  /** How long the stream keeps messages (ms); consumers that fall further behind lose them. */
  maxAgeMs: number;
  /** Durable consumer groups created at connect, so that they keep messages before their first member runs. */
  durable: string[];
  /** Wait before redelivering a batch whose handler failed (ms). */
  retryDelayMs: number;
  /** Subjects of control broadcasts (outside the stream: not stored). */
  controlPrefix: string;
  /**
   * How long JetStream waits for a consumer's ack before it redelivers (ms). Short, so that what a
   * process held when it was killed is stored again within seconds of its restart (or by another
   * member); messages a live member still holds are kept alive with progress acks meanwhile.
   */
  ackWaitMs: number;
  /** Publishes awaiting JetStream's ack at once; past this, publish waits (bounded memory). */
  maxInFlight: number;
}

const defaults = { stream: 'FLEETWIRE_MESSAGES', subjectPrefix: 'fw.msg', controlPrefix: 'fw.ctl', maxAgeMs: 24 * 3_600_000, durable: [] as string[], retryDelayMs: 1000, ackWaitMs: 5000, maxInFlight: 8192 };

const h = {
  id: 'Fw-Id',
  org: 'Fw-Org',
  channel: 'Fw-Channel',
  subtopic: 'Fw-Subtopic',
  publisher: 'Fw-Publisher',
  protocol: 'Fw-Protocol',
  contentType: 'Content-Type',
  receivedAt: 'Fw-Received-At',
  mqtt: 'Fw-Mqtt',
};

/** MQTT extras as one JSON header (correlation data in base64). */
function encodeMqtt(m: NonNullable<Envelope['mqtt']>): string {
  const p = m.properties;
  return JSON.stringify({ ...m, properties: p ? { ...p, correlationData: p.correlationData?.toString('base64') } : undefined });
}

function decodeMqtt(text: string): Envelope['mqtt'] {
  try {
    const m = JSON.parse(text) as NonNullable<Envelope['mqtt']> & { properties?: { correlationData?: string } };
    const p = m.properties;
    return { ...m, properties: p ? { ...p, correlationData: p.correlationData === undefined ? undefined : Buffer.from(p.correlationData, 'base64') } : undefined } as Envelope['mqtt'];
  } catch {
    return undefined;
  }
}

function encodeHeaders(env: Envelope): MsgHdrs {
  const hdrs = headers();
  hdrs.set(h.id, env.id);
  hdrs.set(h.org, env.org);
  hdrs.set(h.channel, env.channel);
  if (env.subtopic) hdrs.set(h.subtopic, env.subtopic);
  hdrs.set(h.publisher, env.publisher);
  hdrs.set(h.protocol, env.protocol);
  hdrs.set(h.contentType, env.contentType);
  hdrs.set(h.receivedAt, String(env.receivedAt));
  if (env.mqtt) hdrs.set(h.mqtt, encodeMqtt(env.mqtt));
  return hdrs;
}

function decode(hdrs: MsgHdrs | undefined, data: Uint8Array): Envelope | undefined {
  if (!hdrs) return undefined;
  const id = hdrs.get(h.id);
  if (!id) return undefined;
  const mqtt = hdrs.get(h.mqtt);
  return {
    ...(mqtt ? { mqtt: decodeMqtt(mqtt) } : {}),
    id,
    org: hdrs.get(h.org),
    channel: hdrs.get(h.channel),
    subtopic: hdrs.get(h.subtopic),
    publisher: hdrs.get(h.publisher),
    protocol: hdrs.get(h.protocol) as Protocol,
    contentType: hdrs.get(h.contentType),
    payload: Buffer.from(data.buffer, data.byteOffset, data.byteLength),
    receivedAt: Number(hdrs.get(h.receivedAt)),
  };
}

/** Subtopic segments are NATS tokens (topic.ts keeps `.`, `*`, `>` out of them). */
function subjectOf(prefix: string, channel: string, subtopic: string): string {
  return subtopic ? `${prefix}.${channel}.${subtopic.replaceAll('/', '.')}` : `${prefix}.${channel}`;
}

/** The NATS subjects covering a subscription filter. MQTT's `a/#` also matches `a` itself, NATS's `a.>` does not: subscribe to both. */
function filterSubjects(prefix: string, channel: string, filter: string): string[] {
  if (filter === '') return [`${prefix}.${channel}`];
  const segs = filter.split('/').map((s) => (s === '+' ? '*' : s === '#' ? '>' : s));
  const full = `${prefix}.${channel}.${segs.join('.')}`;
  if (segs[segs.length - 1] !== '>') return [full];
  const parent = segs.length === 1 ? `${prefix}.${channel}` : `${prefix}.${channel}.${segs.slice(0, -1).join('.')}`;
  return [parent, full];
}

/** NATS JetStream: one stream for all messages, durable pull consumers for writers, core subscriptions for live delivery. */
export class NatsBus implements Bus {
  readonly kind = 'nats' as const;
  private readonly consumers = new Set<{ stop(): Promise<void> }>();
  private readonly pendingByConsumer = new Map<string, number>();
  /** Publishes whose JetStream ack has not come yet, and publishers waiting for one of them to end. */
  private inFlight = 0;
  private readonly slotWaiters: (() => void)[] = [];
  /** Since when the connection to NATS is lost (it reconnects on its own); undefined while connected. */
  private disconnectedSince: number | undefined;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly options: NatsBusOptions,
  ) {}

  static async connect(options: Partial<NatsBusOptions> & { url: string }): Promise<NatsBus> {
    const o: NatsBusOptions = { ...defaults, ...options };
    const nc = await connect({ servers: o.url, name: 'fleetwire', maxReconnectAttempts: -1 });
    try {
      const jsm = await jetstreamManager(nc);
      const config = { name: o.stream, subjects: [`${o.subjectPrefix}.>`], max_age: nanos(o.maxAgeMs), duplicate_window: nanos(120_000) };
      try {
        await jsm.streams.info(o.stream);
        await jsm.streams.update(o.stream, { subjects: config.subjects, max_age: config.max_age });
      } catch {
        await jsm.streams.add(config);
      }
      const bus = new NatsBus(nc, jetstream(nc), jsm, o);
      void bus.watchConnection();
      for (const name of o.durable) await bus.ensureConsumer(name);
      return bus;
    } catch (e) {
      await nc.close();
      throw e;
    }
  }

  private async watchConnection(): Promise<void> {
    try {
      for await (const s of this.nc.status()) {
        if (s.type === 'disconnect') this.disconnectedSince ??= Date.now();
        else if (s.type === 'reconnect') this.disconnectedSince = undefined;
      }
    } catch {
      // the iterator ends with the connection; isClosed() tells from then on
    }
  }

  health(): { ok: true } | { ok: false; reason: string } {
    if (this.nc.isClosed()) return { ok: false, reason: 'the connection to NATS is closed' };
    if (this.disconnectedSince !== undefined) return { ok: false, reason: `NATS does not answer (disconnected since ${new Date(this.disconnectedSince).toISOString()}; reconnecting)` };
    return { ok: true };
  }

  private async ensureConsumer(name: string): Promise<void> {
    const ackWait = nanos(this.options.ackWaitMs);
    let info;
    try {
      info = await this.jsm.consumers.info(this.options.stream, name);
    } catch {
      await this.jsm.consumers.add(this.options.stream, {
        durable_name: name,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: ackWait,
        max_ack_pending: 20_000,
      });
      return;
    }
    // consumers made by earlier versions waited 30 s before redelivering what a killed process held
    if (info.config.ack_wait !== ackWait) await this.jsm.consumers.update(this.options.stream, name, { ack_wait: ackWait });
  }

  async publish(env: Envelope): Promise<Accepted> {
    while (this.inFlight >= this.options.maxInFlight) await new Promise<void>((r) => this.slotWaiters.push(r));
    this.inFlight++;
    const ack = this.js.publish(subjectOf(this.options.subjectPrefix, env.channel, env.subtopic), env.payload, { msgID: env.id, headers: encodeHeaders(env) });
    const done = () => {
      this.inFlight--;
      this.slotWaiters.shift()?.();
    };
    // JetStream's ack is the durability: the message is in the stream, replicated as it is configured
    const stored = ack.then(done, (e: unknown) => {
      done();
      throw e;
    });
    stored.catch(() => {}); // a QoS 0 publisher never asks; its failure is not an unhandled rejection
    return { stored: () => stored };
  }

  async subscribe(channel: string, filter: string, handler: (env: Envelope) => void, options: SubscribeOptions = {}): Promise<LiveSubscription> {
    const subs: Subscription[] = filterSubjects(this.options.subjectPrefix, channel, filter).map((subject) =>
      this.nc.subscribe(subject, {
        ...(options.queue !== undefined ? { queue: options.queue } : {}),
        callback: (err, msg) => {
          if (err) return;
          const env = decode(msg.headers, msg.data);
          if (!env) return;
          try {
            handler(env);
          } catch {
            // a subscriber's failure is its own
          }
        },
      }),
    );
    await this.nc.flush(); // the subscription is known to the server before we return
    return { unsubscribe: () => subs.forEach((s) => s.unsubscribe()) };
  }

  async consume(name: string, handler: (batch: Envelope[]) => Promise<void>, options: ConsumeOptions = {}): Promise<DurableConsumer> {
    const maxBatch = options.maxBatch ?? 1000;
    await this.ensureConsumer(name);
    const consumer = await this.js.consumers.get(this.options.stream, name);
    const messages = await consumer.consume({ max_messages: maxBatch * 2 });
    const buffer: JsMsg[] = [];
    let handling: JsMsg[] = [];
    // progress acks for what this member holds, so JetStream redelivers only what a dead member held
    const heartbeat = setInterval(() => {
      for (const m of handling) m.working();
      for (const m of buffer) m.working();
    }, Math.max(250, this.options.ackWaitMs / 2.5));
    heartbeat.unref();
    let wakeReader: (() => void) | undefined;
    let flushing: Promise<void> | undefined;
    let stopped = false;
    const retryMs = this.options.retryDelayMs;

    const flush = async () => {
      while (buffer.length > 0 && !stopped) {
        const batch = buffer.splice(0, maxBatch);
        handling = batch;
        wakeReader?.();
        const envs: Envelope[] = [];
        for (const m of batch) {
          const env = decode(m.headers, m.data);
          if (env) envs.push(env);
          else m.term(); // not ours: never redeliver
        }
        try {
          if (envs.length > 0) await handler(envs);
          for (const m of batch) m.ack();
        } catch {
          for (const m of batch) m.nak(retryMs);
        }
        handling = [];
        this.pendingByConsumer.set(name, buffer.length + messages.getPending());
      }
      flushing = undefined;
    };

    const reader = (async () => {
      for await (const m of messages) {
        buffer.push(m);
        flushing ??= flush();
        // bounded memory: stop pulling while the handler is behind
        if (buffer.length >= maxBatch * 2) await new Promise<void>((r) => (wakeReader = r));
        wakeReader = undefined;
      }
    })();

    const handle = {
      stop: async () => {
        stopped = true;
        clearInterval(heartbeat);
        wakeReader?.();
        await messages.close();
        await reader.catch(() => {});
        await flushing;
        for (const m of buffer.splice(0)) m.nak();
        this.consumers.delete(handle);
      },
    };
    this.consumers.add(handle);
    return handle;
  }

  broadcast(topic: string, data: string): void {
    this.nc.publish(`${this.options.controlPrefix}.${topic}`, data);
  }

  onBroadcast(topic: string, handler: (data: string) => void): LiveSubscription {
    const sub = this.nc.subscribe(`${this.options.controlPrefix}.${topic}`, {
      callback: (err, msg) => {
        if (err) return;
        try {
          handler(msg.string());
        } catch {
          // one handler's failure is its own
        }
      },
    });
    return { unsubscribe: () => sub.unsubscribe() };
  }

  stats(): BusStats {
    return { pending: Object.fromEntries(this.pendingByConsumer), dropped: 0 };
  }

  async close(): Promise<void> {
    for (const c of [...this.consumers]) await c.stop();
    await this.nc.drain().catch(() => {});
  }
}
