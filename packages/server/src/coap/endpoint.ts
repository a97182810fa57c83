import { randomInt } from 'node:crypto';
import { AppError, isAppError } from '../core/errors.js';
import { concerns, type AccessChange, type AccessChanges } from '../auth/invalidation.js';
import type { Logger } from '../core/logger.js';
import type { Bus } from '../messaging/bus.js';
import type { MessagingMetrics } from '../messaging/metrics.js';
import type { Client, MessagingService } from '../messaging/service.js';
import { normaliseSubtopic, addressForms, notServed, parseAddress } from '../core/address.js';
import { encodeBlock, parseBlock, Transfers, type BlockOption } from './block.js';
import { CoapRefusal, mapError } from './errors.js';
import { Confirmables, type TransmissionParameters } from './confirmable.js';
import { contentTypeOf } from './content-format.js';
import type { CoapMetrics } from './metrics.js';
import { decode, encode, headerOf, option, peerKey, readOptions, reset, uint, type OutOption, type Packet, type Peer, type RequestOptions } from './message.js';
import { Observers, type Observer } from './observers.js';
import { RecentMap } from './recent.js';
import type { DeviceAuthorizer } from '../auth/decision.js';
import type { TwinService } from '../twins/index.js';
import { deltaFeed, getTwin, twinDevice, twinResource, updateTwin } from './twins.js';

export interface CoapOptions extends TransmissionParameters {
  maxObserversPerAddress: number;
  maxTransfersPerAddress: number;
  /** See FLEETWIRE_COAP_CONFIRM_INTERVAL. */
  confirmIntervalMs: number;
  /**
   * RFC 7252 §4.8.2 EXCHANGE_LIFETIME, ms: how long a request's message ID is remembered, so that
   * a retransmission is answered from memory instead of publishing twice (the duplicate window).
   */
  exchangeLifetimeMs: number;
  /** Requests remembered for duplicate detection, at most (the oldest are forgotten first). */
  maxRememberedRequests: number;
  /** A block-wise upload with no block for this long is dropped, ms. */
  transferIdleMs: number;
  /** Refusals logged per second at most; the rest are counted and summed up in one line. */
  refusalLogsPerSecond: number;
}

export const defaultCoapOptions: CoapOptions = {
  ackTimeoutMs: 2000,
  ackRandomFactor: 1.5,
  maxRetransmit: 4,
  maxObserversPerAddress: 64,
  maxTransfersPerAddress: 8,
  confirmIntervalMs: 60_000,
  exchangeLifetimeMs: 247_000,
  maxRememberedRequests: 100_000,
  transferIdleMs: 60_000,
  refusalLogsPerSecond: 20,
};

export interface CoapDeps {
  messaging: MessagingService;
  /** Where access changes are heard: observations no longer allowed end with 4.03. */
  accessChanges?: AccessChanges;
  bus: Bus;
  log: Logger;
  metrics: MessagingMetrics;
  coapMetrics: CoapMetrics;
  now(): number;
  /** Device twins (coap/twins.ts); without them, twin paths are not served. */
  twins?: TwinService;
  authorizer?: DeviceAuthorizer;
  /**
   * A device's heartbeat (`POST devices/<id>/presence?auth=<secret>`, docs/presence.md): checks the
   * secret names the device in the path and tells presence. Without it the path is not served.
   */
  heartbeat?: (secret: string, deviceId: string, intervalSeconds: number | undefined) => Promise<void>;
}

/** Where a request goes, from its Uri-Path and Uri-Query. */
interface Target {
  channel: string;
  subtopic: string;
  auth: string | undefined;
  /** Path and query: names a block-wise upload, and the observation a Block2 follow-up asks about. */
  uri: string;
}

/** What a request is answered with. */
interface Reply {
  code: string;
  options?: OutOption[];
  payload?: Buffer;
}

/** A remembered request: its reply once there is one, and how many confirmable duplicates came before it. */
interface Remembered {
  reply: Buffer | undefined;
  early?: number;
}

/** Duplicates answered at most when they came while their request was still in progress (one reply each, never more). */
const maxEarlyDuplicates = 4;

const retryLaterSeconds = 30; // Max-Age on 5.03 refusals of a per-address limit (RFC 7252 §5.9.3.4)

/**
 * The CoAP adapter (RFC 7252), independent of sockets: `receive` takes each datagram, `send`
 * writes one. `POST /channels/{id}/messages[/{subtopic…}]?auth=<device secret>` publishes;
 * `GET` with Observe (RFC 7641) subscribes. Block-wise uploads (RFC 7959) are reassembled here.
 */
export class CoapEndpoint {
  readonly observers: Observers;
  readonly transfers: Transfers;
  private readonly confirmables: Confirmables;
  private readonly requests: RecentMap<Remembered>;
  private messageId = randomInt(0x10000);
  private readonly timer: NodeJS.Timeout;
  private refusalWindow = { start: 0, logged: 0, suppressed: 0 };
  private readonly stopListening: (() => void) | undefined;

  constructor(
    private readonly deps: CoapDeps,
    private readonly options: CoapOptions,
    private readonly send: (datagram: Buffer, peer: Peer) => void,
  ) {
    this.confirmables = new Confirmables(options, send, () => deps.coapMetrics.retransmissions.inc());
    this.requests = new RecentMap(options.exchangeLifetimeMs, options.maxRememberedRequests, deps.now);
    this.transfers = new Transfers({ maxPerAddress: options.maxTransfersPerAddress, maxBytes: deps.messaging.maxPayloadBytes, idleMs: options.transferIdleMs });
    this.observers = new Observers({
      bus: deps.bus,
      log: deps.log,
      metrics: deps.metrics,
      coapMetrics: deps.coapMetrics,
      confirmables: this.confirmables,
      send,
      nextMessageId: () => this.nextMessageId(),
      now: deps.now,
      maxPerAddress: options.maxObserversPerAddress,
      confirmIntervalMs: options.confirmIntervalMs,
    });
    this.timer = setInterval(() => this.housekeeping(), Math.max(50, Math.min(1000, options.confirmIntervalMs / 4)));
    this.timer.unref();
    this.stopListening = deps.accessChanges?.onChange((change) => this.accessChanged(change));
  }

  /** Re-authorises the observations an access change concerns; those no longer allowed end with 4.03. */
  private accessChanged(change: AccessChange): void {
    const checks: Promise<void>[] = [];
    for (const o of this.observers.all()) if (o.client && concerns(change, o.deviceId, o.channel)) checks.push(this.recheck(o, o.client));
    if (checks.length > 0) void Promise.all(checks).catch((e: unknown) => this.deps.log.error({ err: e }, 're-checking CoAP observations after an access change failed'));
  }

  private async recheck(o: Observer, client: Client): Promise<void> {
    try {
      if (o.kind === 'twin') {
        const who = client.kind === 'device' && this.deps.authorizer ? await this.deps.authorizer.identify(client.credential) : undefined;
        if (!who?.ok || who.device.id !== o.deviceId) throw new AppError('auth.invalid_credentials', 'the device or its credentials are no longer valid');
      } else await this.deps.messaging.authorize(client, o.channel, 'subscribe');
    } catch (e) {
      if (!isAppError(e)) throw e;
      if (this.observers.get(o.key) !== o) return; // ended or replaced meanwhile
      this.deps.log.info({ channel: o.channel, address: o.peer.address, port: o.peer.port, code: e.code }, 'CoAP observation ended: access withdrawn');
      this.observers.forbid(o.key, `${e.code}: access withdrawn`);
    }
  }

  private nextMessageId(): number {
    this.messageId = (this.messageId + 1) & 0xffff;
    return this.messageId;
  }

  private housekeeping(): void {
    this.requests.sweep();
    this.transfers.sweep(this.deps.now());
    this.observers.check();
  }

  /** Takes one datagram. Never throws: a datagram is answered, refused or dropped. */
  receive(datagram: Buffer, peer: Peer): void {
    const packet = decode(datagram);
    if (!packet) {
      this.refuse('malformed', peer, 'not a CoAP message');
      // RFC 7252 §4.2: a confirmable message we cannot parse is rejected with RST
      const header = headerOf(datagram);
      if (header?.confirmable) this.send(reset(header.messageId), peer);
      return;
    }
    this.dispatch(packet, peer).catch((e: unknown) => this.deps.log.error({ err: e, address: peer.address }, 'CoAP request failed'));
  }

  private async dispatch(p: Packet, peer: Peer): Promise<void> {
    if (p.ack || p.reset) {
      const settled = this.confirmables.settle(peer, p.messageId, p.reset ? 'reset' : 'ack');
      if (!settled && p.reset) this.observers.onReset(peer, p.messageId);
      return;
    }
    if (p.code === '0.00') {
      // RFC 7252 §4.3: an empty confirmable message is a ping, answered with RST
      if (p.confirmable) this.send(reset(p.messageId), peer);
      return;
    }
    if (!p.code.startsWith('0.')) {
      // a response outside any exchange of ours (we send no requests)
      if (p.confirmable) this.send(reset(p.messageId), peer);
      return;
    }
    // RFC 7252 §4.5: a request with a message ID seen from this endpoint is a duplicate
    const id = `${peerKey(peer)}:${p.messageId}`;
    const seen = this.requests.get(id);
    if (seen) {
      this.deps.coapMetrics.duplicates.inc();
      if (seen.reply && p.confirmable) this.send(seen.reply, peer);
      // still in progress (a publish waits for storage): answered with the same reply once there is one
      else if (p.confirmable) seen.early = Math.min(maxEarlyDuplicates, (seen.early ?? 0) + 1);
      return;
    }
    const remembered: Remembered = { reply: undefined };
    this.requests.set(id, remembered);
    const reply = await this.handle(p, peer);
    const datagram = this.encodeReply(p, reply);
    // only a confirmable duplicate is answered again (above): a NON reply need not be kept
    if (p.confirmable) remembered.reply = datagram;
    this.send(datagram, peer);
    for (let i = 0; i < (remembered.early ?? 0); i++) this.send(datagram, peer);
  }

  /** RFC 7252 §5.2: piggybacked on the ACK of a confirmable request; a non-confirmable one gets a NON reply. */
  private encodeReply(p: Packet, reply: Reply): Buffer {
    const base = { code: reply.code, token: p.token, options: reply.options ?? [], payload: reply.payload ?? Buffer.alloc(0) };
    return p.confirmable ? encode({ ...base, messageId: p.messageId, ack: true }) : encode({ ...base, messageId: this.nextMessageId() });
  }

  private async handle(p: Packet, peer: Peer): Promise<Reply> {
    try {
      return await this.route(p, peer);
    } catch (e) {
      const m = mapError(e, this.deps.messaging.maxPayloadBytes);
      if (m.code === '5.00') this.deps.log.error({ err: e, address: peer.address }, 'CoAP request failed');
      else this.refuse(m.reason, peer, m.diagnostic, m.code);
      if (!(e instanceof CoapRefusal)) this.deps.metrics.rejected.inc({ protocol: 'coap', code: m.reason });
      const options: OutOption[] = [];
      if (m.maxAge !== undefined) options.push({ name: option.maxAge, value: uint(m.maxAge) });
      if (m.size1 !== undefined) options.push({ name: option.size1, value: uint(m.size1) });
      return { code: m.code, options, payload: Buffer.from(m.diagnostic) };
    }
  }

  private async route(p: Packet, peer: Peer): Promise<Reply> {
    // one pass over the options: the checks below, publish and get read `opts`, never the packet again
    const opts = readOptions(p);
    // RFC 7252 §5.7.2, §5.10.2: we are no proxy
    if (opts.proxy) throw new CoapRefusal('5.05', 'coap.proxying_not_supported', 'This endpoint is not a proxy');
    // RFC 7252 §5.4.1: an unrecognised critical option makes the request a 4.02
    if (opts.unknownCritical !== undefined) throw new CoapRefusal('4.02', 'coap.bad_option', `Option ${opts.unknownCritical} is not supported`);
    const path = opts.uriPath;
    const address = parseAddress(path);
    if (!address.ok) throw new AppError('route.not_found', `CoAP resources are /${addressForms}`);
    const query = opts.uriQuery;
    if (address.address.kind === 'device' && address.address.family === 'presence' && address.address.rest.length === 0 && this.deps.heartbeat) {
      if (p.code !== '0.02') throw new CoapRefusal('4.05', 'coap.method_not_allowed', 'POST sends a heartbeat; the presence is read over HTTP');
      return this.heartbeat(address.address.device, query, p.payload, this.deps.heartbeat);
    }
    if (address.address.kind === 'device' && address.address.family === 'twin' && this.deps.twins) {
      const auth = query.find((q) => q.startsWith('auth='))?.slice('auth='.length);
      return this.twin(p, opts, peer, twinResource(address.address.device, address.address.rest), auth, `${path.join('/')}?${query.join('&')}`);
    }
    if (address.address.kind !== 'channel.messages') throw new AppError('route.not_found', notServed(address.address));
    const target: Target = {
      channel: address.address.channel,
      subtopic: address.address.subtopic,
      auth: query.find((q) => q.startsWith('auth='))?.slice('auth='.length),
      uri: `${path.join('/')}?${query.join('&')}`,
    };
    switch (p.code) {
      case '0.02':
        return this.publish(p, opts, peer, target);
      case '0.01':
        return this.get(p, opts, peer, target);
      default:
        throw new CoapRefusal('4.05', 'coap.method_not_allowed', 'POST publishes, GET with Observe subscribes');
    }
  }

  /** A device's twin: GET, POST/PATCH/iPATCH (RFC 8132) an update, GET + Observe the delta (coap/twins.ts). */
  private async twin(p: Packet, opts: RequestOptions, peer: Peer, target: ReturnType<typeof twinResource>, auth: string | undefined, uri: string): Promise<Reply> {
    const twins = this.deps.twins!;
    const who = await twinDevice(this.deps.authorizer!, auth, target);
    if (p.code === '0.02' || p.code === '0.06' || p.code === '0.07') {
      if (opts.block1 !== undefined) throw new CoapRefusal('4.13', 'coap.bad_block', 'a twin update fits one datagram: block-wise updates are not taken');
      return updateTwin(twins, who, target, p.payload, opts.contentFormat);
    }
    if (p.code !== '0.01') throw new CoapRefusal('4.05', 'coap.method_not_allowed', 'GET reads (Observe the …/update/delta), POST or PATCH updates');
    const observe = opts.observe;
    if (observe === 1) {
      this.observers.remove(Observers.key(peer, p.token), 'deregistered');
      return getTwin(twins, who, target);
    }
    if (observe === undefined || !target.delta) return getTwin(twins, who, target);
    if (observe !== 0) throw new CoapRefusal('4.00', 'coap.bad_observe', 'Observe must be 0 (register) or 1 (deregister)');
    const key = Observers.key(peer, p.token);
    if (!this.observers.get(key) && !this.observers.canAdd(peer.address)) {
      throw new CoapRefusal('5.03', 'coap.too_many_observers', `At most ${this.options.maxObserversPerAddress} observations per address`, { maxAge: retryLaterSeconds });
    }
    // the answer is the delta now; the feed sends only newer versions after it (RFC 7641 §3.4)
    const now = await getTwin(twins, who, target);
    const since = (JSON.parse(now.payload!.toString()) as { version: number }).version;
    const client: Client = { kind: 'device', credential: { kind: 'secret', secret: auth! } };
    const o = await this.observers.add({ peer, token: p.token, channel: '', filter: '', uri, deviceId: who.deviceId, client, feed: deltaFeed(twins, who, target, since) });
    return { ...now, options: [{ name: option.observe, value: uint(this.observers.nextSeq(o)) }, ...(now.options ?? [])] };
  }

  /** A heartbeat: the interval from `?interval=<seconds>` or a JSON payload `{"interval": <seconds>}`, or none. */
  private async heartbeat(deviceId: string, query: readonly string[], payload: Buffer, heartbeat: NonNullable<CoapDeps['heartbeat']>): Promise<Reply> {
    const auth = query.find((q) => q.startsWith('auth='))?.slice('auth='.length);
    if (!auth) throw new AppError('auth.required', 'Send the device secret as ?auth=<secret>');
    let interval: unknown = query.find((q) => q.startsWith('interval='))?.slice('interval='.length);
    if (interval !== undefined) interval = /^\d{1,9}$/.test(interval as string) ? Number(interval) : interval;
    else if (payload.length > 0) {
      let body: unknown;
      try {
        body = JSON.parse(payload.toString('utf8'));
      } catch {
        throw new AppError('request.invalid', 'The payload of a heartbeat is empty or JSON: {"interval": <seconds>}');
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body) || Object.keys(body).some((k) => k !== 'interval')) throw new AppError('request.invalid', 'The payload of a heartbeat is empty or JSON: {"interval": <seconds>}');
      interval = (body as { interval?: unknown }).interval;
    }
    if (interval !== undefined && typeof interval !== 'number') throw new AppError('presence.invalid_interval', `interval must be a whole number of seconds, got ${JSON.stringify(interval)}`);
    await heartbeat(auth, deviceId, interval);
    return { code: '2.04' };
  }

  private client(auth: string | undefined): Client {
    if (!auth) throw new AppError('auth.required', 'Send the device secret as ?auth=<secret>');
    return { kind: 'device', credential: { kind: 'secret', secret: auth } };
  }

  private block1(opts: RequestOptions): BlockOption | undefined {
    if (opts.block1 === undefined) return undefined;
    const b = parseBlock(opts.block1);
    if (!b || b.szx === 7) throw new CoapRefusal('4.00', 'coap.bad_block', 'Block1 must be 0 to 3 bytes with a size exponent of 0 to 6 (RFC 7959 §2.2)');
    return b;
  }

  private async publish(p: Packet, opts: RequestOptions, peer: Peer, target: Target): Promise<Reply> {
    const client = this.client(target.auth);
    let format = opts.contentFormat;
    let payload = p.payload;
    const block = this.block1(opts);
    const options: OutOption[] = [];
    if (block && (block.num > 0 || block.more)) {
      const key = `${peerKey(peer)} ${target.uri}`;
      if (block.num === 0) {
        const size1 = opts.size1;
        // RFC 7959 §4: Size1 announces the whole body; refuse early what we would refuse at the end
        if (size1 !== undefined && size1 > this.deps.messaging.maxPayloadBytes) throw new AppError('message.too_large', `The payload is ${size1} bytes; at most ${this.deps.messaging.maxPayloadBytes} are accepted`);
        if (!this.transfers.has(key) && !this.transfers.canStart(peer.address)) {
          throw new CoapRefusal('5.03', 'coap.too_many_transfers', `At most ${this.options.maxTransfersPerAddress} block-wise uploads per address at once`, { maxAge: retryLaterSeconds });
        }
        // no state for anyone who may not publish here
        checkFormat(format);
        await this.deps.messaging.authorize(client, target.channel, 'publish');
      }
      const r = this.transfers.add(key, peer.address, block, payload, format, this.deps.now());
      switch (r.kind) {
        case 'continue':
          // RFC 7959 §2.3: 2.31 Continue acknowledges the block
          return { code: '2.31', options: [{ name: option.block1, value: encodeBlock(block) }] };
        case 'incomplete':
          throw new CoapRefusal('4.08', 'coap.request_entity_incomplete', r.why);
        case 'too_large':
          throw new AppError('message.too_large', `The payload is more than ${this.deps.messaging.maxPayloadBytes} bytes`);
        case 'complete':
          payload = r.payload;
          format = r.contentFormat;
      }
      options.push({ name: option.block1, value: encodeBlock(block) });
    }
    await this.deps.messaging.publish({ client, channel: target.channel, subtopic: target.subtopic, contentType: checkFormat(format), payload, protocol: 'coap' });
    this.deps.metrics.received.inc({ protocol: 'coap' });
    return { code: '2.04', options };
  }

  private async get(p: Packet, opts: RequestOptions, peer: Peer, target: Target): Promise<Reply> {
    const observe = opts.observe;
    if (observe === 1) {
      // RFC 7641 §3.6: deregistration; the GET is then answered as a plain one
      this.observers.remove(Observers.key(peer, p.token), 'deregistered');
      return { code: '2.05' };
    }
    if (observe === undefined) {
      const block = opts.block2 === undefined ? undefined : parseBlock(opts.block2);
      if (block && block.szx < 7) {
        const part = this.observers.block(peer, target.uri, block);
        if (part) return { code: '2.05', ...part };
        throw new CoapRefusal('4.04', 'coap.no_representation', 'No notification of this observation has that block');
      }
      throw new CoapRefusal('4.00', 'coap.observe_required', 'GET needs Observe: 0 to subscribe (1 to cancel); stored messages are read over HTTP');
    }
    if (observe !== 0) throw new CoapRefusal('4.00', 'coap.bad_observe', 'Observe must be 0 (register) or 1 (deregister)');
    const client = this.client(target.auth);
    const sub = normaliseSubtopic(target.subtopic, true);
    if (!sub.ok) throw new AppError('message.invalid_subtopic', sub.error);
    const granted = await this.deps.messaging.authorize(client, target.channel, 'subscribe');
    const key = Observers.key(peer, p.token);
    if (!this.observers.get(key) && !this.observers.canAdd(peer.address)) {
      throw new CoapRefusal('5.03', 'coap.too_many_observers', `At most ${this.options.maxObserversPerAddress} observations per address`, { maxAge: retryLaterSeconds });
    }
    // the bare channel path observes every message of the channel, as on WebSocket
    const o = await this.observers.add({ peer, token: p.token, channel: target.channel, filter: sub.subtopic === '' ? '#' : sub.subtopic, uri: target.uri, deviceId: granted.publisher, client });
    return { code: '2.05', options: [{ name: option.observe, value: uint(this.observers.nextSeq(o)) }] };
  }

  /** Counts a refusal and logs it, at most `refusalLogsPerSecond` lines a second. */
  private refuse(reason: string, peer: Peer, detail: string, code?: string): void {
    if (reason.startsWith('coap.') || reason === 'malformed') this.deps.coapMetrics.refused.inc({ reason: reason.replace(/^coap\./, '') });
    const now = this.deps.now();
    const w = this.refusalWindow;
    if (now - w.start >= 1000) {
      if (w.suppressed > 0) this.deps.log.info({ suppressed: w.suppressed }, 'CoAP refusals not logged in the last second');
      this.refusalWindow = { start: now, logged: 0, suppressed: 0 };
    }
    if (this.refusalWindow.logged >= this.options.refusalLogsPerSecond) {
      this.refusalWindow.suppressed++;
      return;
    }
    this.refusalWindow.logged++;
    this.deps.log.info({ reason, code, detail, address: peer.address, port: peer.port }, 'CoAP request refused');
  }

  close(): void {
    this.stopListening?.();
    clearInterval(this.timer);
    this.observers.close();
    this.confirmables.close();
    this.transfers.clear();
    this.requests.clear();
  }
}

/** The content type of a Content-Format option; 4.15 for a number we do not know. */
function checkFormat(format: number | undefined): string | undefined {
  if (format === undefined) return undefined;
  const type = contentTypeOf(format);
  if (type === undefined) throw new AppError('message.unsupported_content_type', `Content-Format ${format} is not supported; use 110 (SenML JSON), 112 (SenML CBOR), 50 (JSON), 60 (CBOR), 42 (octet-stream) or 0 (text)`);
  return type;
}
