import { subtopicMatches } from '../core/address.js';
import { BusOverloadedError, alreadyStored, type Accepted, type Bus, type BusStats, type ConsumeOptions, type DurableConsumer, type LiveSubscription, type SubscribeOptions } from './bus.js';
import type { Envelope } from './envelope.js';

export interface MemoryBusOptions {
  /** Durable consumer groups that keep messages from the start, even before their first member runs. */
  durable: string[];
  /** Messages a durable queue holds before publishers wait. */
  maxQueued: number;
  /** How long a publisher waits for queue space before the message is refused (ms). */
  publishTimeoutMs: number;
  /** Wait before redelivering a batch whose handler failed (ms). */
  retryDelayMs: number;
}

const defaults: MemoryBusOptions = { durable: [], maxQueued: 100_000, publishTimeoutMs: 5000, retryDelayMs: 500 };

interface Live {
  filter: string;
  handler: (env: Envelope) => void;
  queue: string | undefined;
}

class DurableQueue {
  readonly items: Envelope[] = [];
  head = 0;
  handler: ((batch: Envelope[]) => Promise<void>) | undefined;
  maxBatch = 1000;
  running = false;
  timer: NodeJS.Timeout | undefined;
  /** Publishers waiting for space. */
  readonly waiters: (() => void)[] = [];
  /** Messages ever queued, and ever handled (the handler resolved for their batch). */
  pushed = 0;
  handled = 0;
  /** Publishers waiting for their message to be handled, in queue order: `upTo` is its position + 1. */
  readonly storedWaiters: { upTo: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  storedHead = 0;

  get length(): number {
    return this.items.length - this.head;
  }
}

function deliverLive(s: Live, env: Envelope): void {
  try {
    s.handler(env);
  } catch {
    // a subscriber's failure is its own: the others still get the message
  }
}

/**
 * The in-process bus: one process, no persistence of its own. A message is durable once the durable
 * consumers (the writer) have committed it, so `Accepted.stored()` waits for their handlers.
 */
export class MemoryBus implements Bus {
  readonly kind = 'memory' as const;
  private readonly live = new Map<string, Set<Live>>();
  private readonly queues = new Map<string, DurableQueue>();
  private readonly options: MemoryBusOptions;
  private dropped = 0;
  private closed = false;
  /** Round-robin position per queue group. */
  private readonly queueTurn = new Map<string, number>();

  constructor(options: Partial<MemoryBusOptions> = {}) {
    this.options = { ...defaults, ...options };
    for (const name of this.options.durable) this.queues.set(name, new DurableQueue());
  }

  async publish(env: Envelope): Promise<Accepted> {
    if (this.closed) throw new Error('bus closed');
    for (const q of this.queues.values()) {
      if (q.length >= this.options.maxQueued) await this.waitForSpace(q);
    }
    let accepted = alreadyStored;
    let positions: [DurableQueue, number][] | undefined;
    for (const q of this.queues.values()) {
      q.items.push(env);
      const upTo = ++q.pushed;
      if (accepted === alreadyStored) accepted = { stored: () => this.whenHandled(q, upTo) };
      else (positions ??= []).push([q, upTo]);
      this.schedule(q);
    }
    if (positions) {
      const first = accepted;
      const rest = positions;
      accepted = { stored: () => Promise.all([first.stored(), ...rest.map(([q, n]) => this.whenHandled(q, n))]).then(() => undefined) };
    }
    this.deliver(env);
    return accepted;
  }

  /** Resolves once the queue's handler has taken its first `upTo` messages: the writer committed them. */
  private whenHandled(q: DurableQueue, upTo: number): Promise<void> {
    if (q.handled >= upTo) return Promise.resolve();
    if (this.closed) return Promise.reject(new Error('bus closed'));
    return new Promise((resolve, reject) => q.storedWaiters.push({ upTo, resolve, reject }));
  }

  private releaseStored(q: DurableQueue): void {
    const w = q.storedWaiters;
    while (q.storedHead < w.length && w[q.storedHead]!.upTo <= q.handled) w[q.storedHead++]!.resolve();
    if (q.storedHead > 1024 && q.storedHead * 2 > w.length) {
      w.splice(0, q.storedHead);
      q.storedHead = 0;
    }
  }

  private deliver(env: Envelope): void {
    const subs = this.live.get(env.channel);
    if (!subs) return;
    let queued: Map<string, Live[]> | undefined;
    for (const s of subs) {
      if (!subtopicMatches(s.filter, env.subtopic)) continue;
      if (s.queue !== undefined) {
        queued ??= new Map();
        const members = queued.get(s.queue);
        if (members) members.push(s);
        else queued.set(s.queue, [s]);
        continue;
      }
      deliverLive(s, env);
    }
    if (!queued) return;
    for (const [queue, members] of queued) {
      const turn = this.queueTurn.get(queue) ?? 0;
      this.queueTurn.set(queue, turn + 1);
      deliverLive(members[turn % members.length]!, env);
    }
  }

  private waitForSpace(q: DurableQueue): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = q.waiters.indexOf(wake);
        if (i >= 0) q.waiters.splice(i, 1);
        this.dropped++;
        reject(new BusOverloadedError('the message store is too far behind; try again later'));
      }, this.options.publishTimeoutMs);
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      q.waiters.push(wake);
    });
  }

  async subscribe(channel: string, filter: string, handler: (env: Envelope) => void, options: SubscribeOptions = {}): Promise<LiveSubscription> {
    let set = this.live.get(channel);
    if (!set) this.live.set(channel, (set = new Set()));
    const entry: Live = { filter, handler, queue: options.queue };
    set.add(entry);
    return {
      unsubscribe: () => {
        set.delete(entry);
        if (set.size === 0 && this.live.get(channel) === set) this.live.delete(channel);
      },
    };
  }

  async consume(name: string, handler: (batch: Envelope[]) => Promise<void>, options: ConsumeOptions = {}): Promise<DurableConsumer> {
    let q = this.queues.get(name);
    if (!q) this.queues.set(name, (q = new DurableQueue()));
    if (q.handler) throw new Error(`consumer ${name} already has a member in this process`);
    q.handler = handler;
    q.maxBatch = options.maxBatch ?? 1000;
    this.schedule(q);
    const queue = q;
    return {
      stop: async () => {
        queue.handler = undefined;
        if (queue.timer) clearTimeout(queue.timer);
        queue.timer = undefined;
        while (queue.running) await new Promise((r) => setTimeout(r, 5));
      },
    };
  }

  private schedule(q: DurableQueue): void {
    if (q.running || !q.handler || q.timer || q.length === 0) return;
    q.running = true;
    setImmediate(() => void this.drain(q));
  }

  private async drain(q: DurableQueue): Promise<void> {
    while (q.handler && q.length > 0 && !this.closed) {
      const batch = q.items.slice(q.head, q.head + q.maxBatch);
      try {
        await q.handler(batch);
      } catch {
        q.running = false;
        q.timer = setTimeout(() => {
          q.timer = undefined;
          this.schedule(q);
        }, this.options.retryDelayMs);
        return;
      }
      q.head += batch.length;
      q.handled += batch.length;
      this.releaseStored(q);
      if (q.head > 10_000 && q.head * 2 > q.items.length) {
        q.items.splice(0, q.head);
        q.head = 0;
      }
      while (q.waiters.length > 0 && q.length < this.options.maxQueued) q.waiters.shift()!();
    }
    q.running = false;
  }

  private readonly control = new Map<string, Set<(data: string) => void>>();

  broadcast(topic: string, data: string): void {
    for (const h of this.control.get(topic) ?? []) {
      try {
        h(data);
      } catch {
        // one handler's failure is its own
      }
    }
  }

  onBroadcast(topic: string, handler: (data: string) => void): LiveSubscription {
    let set = this.control.get(topic);
    if (!set) this.control.set(topic, (set = new Set()));
    set.add(handler);
    return { unsubscribe: () => set.delete(handler) };
  }

  stats(): BusStats {
    const pending: Record<string, number> = {};
    for (const [name, q] of this.queues) pending[name] = q.length;
    return { pending, dropped: this.dropped };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const q of this.queues.values()) {
      if (q.timer) clearTimeout(q.timer);
      while (q.running) await new Promise((r) => setTimeout(r, 5));
      const closed = new Error('bus closed');
      for (let i = q.storedHead; i < q.storedWaiters.length; i++) q.storedWaiters[i]!.reject(closed);
      q.storedWaiters.length = 0;
      q.storedHead = 0;
    }
    this.live.clear();
  }
}
