import type { Logger } from '../core/logger.js';
import type { Bus, LiveSubscription } from '../messaging/bus.js';
import type { Envelope } from '../messaging/envelope.js';
import type { MessagingMetrics } from '../messaging/metrics.js';
import type { Client } from '../messaging/service.js';
import { blockSize, encodeBlock, sendSzx, type BlockOption } from './block.js';
import type { Confirmables, Outcome } from './confirmable.js';
import { contentFormatOf } from './content-format.js';
import type { CoapMetrics } from './metrics.js';
import { encode, option, peerKey, uint, type OutOption, type Peer } from './message.js';
import { PerAddressCount } from './per-address.js';
import { RecentMap } from './recent.js';

/** Observe sequence numbers are 24 bits (RFC 7641 §4.4). */
const observeModulus = 2 ** 24;
/** RFC 7252 §4.8.2 NON_LIFETIME: how long an RST may still answer a non-confirmable notification, ms. */
const nonLifetimeMs = 145_000;
/** Non-confirmable notifications remembered for matching RSTs, at most. */
const maxRememberedNotifications = 65_536;

/** What an observation is sent: a channel's message, or a notification the platform makes (a twin delta). */
export type Notification = Pick<Envelope, 'id' | 'payload' | 'contentType'>;

export interface Observer {
  /** Endpoint and token: what identifies an observation (RFC 7641 §3.1). */
  key: string;
  /** A channel's messages (from the bus), or a device's twin delta (`channel` is then empty). */
  kind: 'channel' | 'twin';
  peer: Peer;
  token: Buffer;
  channel: string;
  filter: string;
  /** The device that registered it and the credential it proved that with: re-checked when access changes. */
  deviceId: string | undefined;
  client: Client | undefined;
  /** Endpoint, path and query of the registration: where it stands in the index of Block2 follow-ups. */
  resource: string;
  subscription: LiveSubscription | undefined;
  seq: number;
  /** When the client last acknowledged a confirmable message (or registered), ms. */
  lastConfirmed: number;
  /** A confirmable notification or ping is in flight: at most one per observer (RFC 7641 §4.5). */
  confirming: boolean;
  closed: boolean;
  /** The last notification too large for one datagram: its blocks are served on request (RFC 7959 §2.6). */
  representation: { etag: Buffer; payload: Buffer; contentFormat: number | undefined } | undefined;
}

export type FreeReason = 'deregistered' | 'reset' | 'unanswered' | 'replaced' | 'closed' | 'forbidden';

export interface ObserversContext {
  bus: Bus;
  log: Logger;
  metrics: MessagingMetrics;
  coapMetrics: CoapMetrics;
  confirmables: Confirmables;
  send(datagram: Buffer, peer: Peer): void;
  nextMessageId(): number;
  now(): number;
  maxPerAddress: number;
  confirmIntervalMs: number;
}

/**
 * Observations (RFC 7641): one bus subscription each, notifications sent as they come. Most are
 * non-confirmable; once `confirmIntervalMs` passed without an acknowledgement the next one is
 * confirmable, or an empty ping (RFC 7252 §4.3) is sent when the channel is quiet, so that an
 * observer that went away is found and freed. State per observer: the subscription, one message in
 * flight and at most one large representation; per source address: `maxPerAddress` observers.
 * `add` and `remove` are the only ways in and out, and keep the maps below in step.
 */
export class Observers {
  private readonly byKey = new Map<string, Observer>();
  /**
   * Observations by endpoint and URI, in registration order: a Block2 follow-up GET carries neither
   * token nor Observe, only the URI (RFC 7959 §2.6), and must not scan every observation to find its own.
   */
  private readonly byResource = new Map<string, Set<Observer>>();
  private readonly perAddress: PerAddressCount;
  /** Non-confirmable notifications still answerable by RST: `<endpoint>:<message id>` → observer key. */
  private readonly sentNon: RecentMap<string>;

  constructor(private readonly ctx: ObserversContext) {
    this.sentNon = new RecentMap(nonLifetimeMs, maxRememberedNotifications, ctx.now);
    this.perAddress = new PerAddressCount(ctx.maxPerAddress);
  }

  get size(): number {
    return this.byKey.size;
  }

  static key(peer: Peer, token: Buffer): string {
    return `${peerKey(peer)}/${token.toString('hex')}`;
  }

  private static resource(peer: Peer, uri: string): string {
    return `${peerKey(peer)} ${uri}`;
  }

  canAdd(address: string): boolean {
    return this.perAddress.canAdd(address);
  }

  /** Registers an observation and subscribes it on the bus; resolves once messages flow to it. */
  /** Registers an observation of a channel (on the bus), or of what `feed` gives (`kind: 'twin'`); resolves once notifications flow to it. */
  async add(spec: { peer: Peer; token: Buffer; channel: string; filter: string; uri: string; deviceId?: string; client?: Client; feed?: (deliver: (n: Notification) => void) => LiveSubscription }): Promise<Observer> {
    const key = Observers.key(spec.peer, spec.token);
    // RFC 7641 §4.1: a registration from the same endpoint with the same token replaces the entry
    if (this.byKey.has(key)) this.remove(key, 'replaced');
    const { uri, deviceId, client, feed, ...kept } = spec;
    const resource = Observers.resource(spec.peer, uri);
    const o: Observer = { key, kind: feed ? 'twin' : 'channel', ...kept, deviceId, client, resource, subscription: undefined, seq: 0, lastConfirmed: this.ctx.now(), confirming: false, closed: false, representation: undefined };
    this.byKey.set(key, o);
    const same = this.byResource.get(resource);
    if (same) same.add(o);
    else this.byResource.set(resource, new Set([o]));
    this.perAddress.add(spec.peer.address);
    try {
      const sub = feed ? feed((n) => this.notify(o, n)) : await this.ctx.bus.subscribe(spec.channel, spec.filter, (env) => this.notify(o, env));
      if (o.closed) sub.unsubscribe();
      else o.subscription = sub;
    } catch (e) {
      this.remove(key, 'closed');
      throw e;
    }
    return o;
  }

  get(key: string): Observer | undefined {
    return this.byKey.get(key);
  }

  /** The next Observe value of an observer, for its registration response and notifications. */
  nextSeq(o: Observer): number {
    o.seq = (o.seq + 1) % observeModulus;
    return o.seq;
  }

  remove(key: string, reason: FreeReason): boolean {
    const o = this.byKey.get(key);
    if (!o) return false;
    o.closed = true;
    o.subscription?.unsubscribe();
    o.representation = undefined;
    this.byKey.delete(key);
    const same = this.byResource.get(o.resource);
    if (same?.delete(o) && same.size === 0) this.byResource.delete(o.resource);
    this.perAddress.remove(o.peer.address);
    this.ctx.coapMetrics.observersFreed.inc({ reason });
    if (reason === 'unanswered' || reason === 'reset') this.ctx.log.info({ channel: o.channel, address: o.peer.address, port: o.peer.port, reason }, 'CoAP observation freed');
    return true;
  }

  /** Every observation, for re-checking them (their order is registration order). */
  all(): IterableIterator<Observer> {
    return this.byKey.values();
  }

  /**
   * Ends an observation its client may no longer hold: a last, confirmable notification with 4.03
   * Forbidden and no Observe option tells the client it ended (RFC 7641 §3.2, §4.2).
   */
  forbid(key: string, diagnostic: string): boolean {
    const o = this.byKey.get(key);
    if (!o) return false;
    this.remove(key, 'forbidden');
    const messageId = this.ctx.nextMessageId();
    const datagram = encode({ code: '4.03', messageId, token: o.token, confirmable: true, payload: Buffer.from(diagnostic) });
    this.ctx.confirmables.start(o.peer, messageId, datagram, () => {});
    return true;
  }

  /** Sends a notification to one observation (a twin delta: `feed` notifications come here too). */
  notify(o: Observer, env: Notification): void {
    if (o.closed) return;
    const options: OutOption[] = [{ name: option.observe, value: uint(this.nextSeq(o)) }];
    const format = contentFormatOf(env.contentType);
    if (format !== undefined) options.push({ name: option.contentFormat, value: uint(format) });
    let payload = env.payload;
    const size = blockSize(sendSzx);
    if (payload.length > size) {
      // RFC 7959 §2.6: the notification carries the first block; the client GETs the others
      const etag = Buffer.from(env.id.replace(/-/g, '').slice(-16), 'hex');
      o.representation = { etag, payload, contentFormat: format };
      options.push({ name: option.etag, value: etag }, { name: option.block2, value: encodeBlock({ num: 0, more: true, szx: sendSzx }) }, { name: option.size2, value: uint(payload.length) });
      payload = payload.subarray(0, size);
    }
    const now = this.ctx.now();
    const confirm = !o.confirming && now - o.lastConfirmed >= this.ctx.confirmIntervalMs;
    const messageId = this.ctx.nextMessageId();
    let datagram: Buffer;
    try {
      datagram = encode({ code: '2.05', messageId, token: o.token, confirmable: confirm, options, payload });
    } catch (e) {
      this.ctx.metrics.dropped.inc({ reason: 'coap_encode' });
      this.ctx.log.warn({ err: e, channel: o.channel }, 'CoAP notification could not be encoded');
      return;
    }
    if (confirm) this.confirm(o, messageId, datagram);
    else {
      this.sentNon.set(`${peerKey(o.peer)}:${messageId}`, o.key);
      this.ctx.send(datagram, o.peer);
    }
    this.ctx.metrics.delivered.inc({ protocol: 'coap' });
  }

  private confirm(o: Observer, messageId: number, datagram: Buffer, ping = false): void {
    o.confirming = true;
    this.ctx.confirmables.start(o.peer, messageId, datagram, (outcome: Outcome) => {
      o.confirming = false;
      if (o.closed) return;
      if (outcome === 'timeout') this.remove(o.key, 'unanswered');
      // RFC 7252 §4.3: a ping is answered with RST; RFC 7641 §3.6: an RST to a notification cancels it
      else if (outcome === 'reset' && !ping) this.remove(o.key, 'reset');
      else o.lastConfirmed = this.ctx.now();
    });
  }

  /** An RST that matched no confirmable message: maybe one for a non-confirmable notification. */
  onReset(peer: Peer, messageId: number): void {
    const id = `${peerKey(peer)}:${messageId}`;
    const key = this.sentNon.get(id);
    if (key === undefined) return;
    this.sentNon.delete(id);
    this.remove(key, 'reset');
  }

  /** Periodic: pings observers that acknowledged nothing for the confirm interval. */
  check(): void {
    const now = this.ctx.now();
    this.sentNon.sweep();
    for (const o of this.byKey.values()) {
      if (o.confirming || now - o.lastConfirmed < this.ctx.confirmIntervalMs) continue;
      const messageId = this.ctx.nextMessageId();
      this.confirm(o, messageId, encode({ code: '0.00', messageId, confirmable: true }), true);
    }
  }

  /** A block of the large representation last sent to the observer registered by this endpoint on `uri`. */
  block(peer: Peer, uri: string, block: BlockOption): { options: OutOption[]; payload: Buffer } | undefined {
    const same = this.byResource.get(Observers.resource(peer, uri));
    if (!same) return undefined;
    // several tokens may observe one URI: the first registered that holds a large representation answers
    for (const o of same) {
      if (!o.representation) continue;
      const { payload, etag, contentFormat } = o.representation;
      // we send at most 1024-byte blocks; a client may ask for smaller ones (RFC 7959 §2.4)
      const szx = Math.min(block.szx, sendSzx);
      const size = blockSize(szx);
      const start = block.num * size;
      if (start >= payload.length) return undefined;
      const more = start + size < payload.length;
      const options: OutOption[] = [{ name: option.etag, value: etag }, { name: option.block2, value: encodeBlock({ num: block.num, more, szx }) }];
      if (contentFormat !== undefined) options.push({ name: option.contentFormat, value: uint(contentFormat) });
      return { options, payload: payload.subarray(start, start + size) };
    }
    return undefined;
  }

  close(): void {
    for (const key of [...this.byKey.keys()]) this.remove(key, 'closed');
  }
}
