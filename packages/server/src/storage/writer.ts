import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Bus, DurableConsumer } from '../messaging/bus.js';
import type { Envelope } from '../messaging/envelope.js';
import type { MessagingMetrics } from '../messaging/metrics.js';
import { toRows } from './rows.js';
import { idBoundary, type MessageSink } from './sink.js';
import type { DeadLetterRepository } from './dead-letters.js';

export const writerConsumer = 'writer';

/** Rows one batch became, by kind. */
export interface StoredCounts {
  records: number;
  documents: number;
  payloads: number;
}

/**
 * Where the writer's batches go: into a sink on this thread (`localStore`), or to a worker thread
 * with a database connection of its own (`WriterThread`, writer-thread.ts). Either way `store`
 * resolves only once the batch is committed: the bus acknowledges it after that.
 */
export interface BatchStore {
  store(batch: Envelope[]): Promise<StoredCounts>;
  /** Resolves when the database takes writes (MessageSink.probe), rejects with its error when not. */
  probe(): Promise<void>;
  pruneBefore(boundaryId: string, limit: number): Promise<number>;
  close(): Promise<void>;
}

/** Envelopes → rows → one sink transaction, on the calling thread. */
export async function storeBatch(sink: MessageSink, batch: Envelope[], opaqueMaxBytes: number): Promise<StoredCounts> {
  const rows = toRows(batch, opaqueMaxBytes);
  await sink.write(rows);
  return { records: rows.records.length, documents: rows.documents.length, payloads: rows.payloads.length };
}

/** A BatchStore over a sink on this thread: the writer's default. */
export function localStore(sink: MessageSink, opaqueMaxBytes: number): BatchStore {
  return {
    store: (batch) => storeBatch(sink, batch, opaqueMaxBytes),
    probe: () => sink.probe(),
    pruneBefore: (boundaryId, limit) => sink.pruneBefore(boundaryId, limit),
    close: () => sink.close(),
  };
}

export interface WriterOptions {
  /** Messages per transaction at most. */
  batchSize: number;
  /** Keep messages this long (ms); 0 keeps everything. */
  retentionMs: number;
  /** How often retention runs (ms). */
  pruneIntervalMs: number;
  /** Longest wait (ms) before a batch goes back to the bus while the database is failing; the waits double from 100 ms up to it. Default 5000. */
  maxBackoffMs?: number;
}

/** Whether the writer is storing what it is given, and if not, why. */
export type WriterHealth = { ok: true } | { ok: false; reason: string; since: number };

/** The database failed, not the batch: the batch goes back to the bus whole, after a wait. */
class StorageFailing extends Error {
  override name = 'StorageFailing';
}

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * Takes messages from the bus (durable consumer `writer`, at least once) and stores them, one
 * transaction per batch. The bus bounds what waits in memory: when the database is slow, the
 * backlog stays on the bus (and publishers are slowed down on the in-process bus).
 */
export class MessageWriter {
  private consumer: DurableConsumer | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private pruning: Promise<void> | undefined;
  /** Set while the database is failing: since when, why, and how many attempts failed in a row. */
  private failing: { since: number; reason: string; attempts: number } | undefined;
  private stopping = false;
  private wakeBackoff: (() => void) | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly target: BatchStore,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly metrics: MessagingMetrics,
    private readonly options: WriterOptions,
    private readonly deadLetters?: DeadLetterRepository,
  ) {}

  /** Unhealthy from the first batch the database failed to take until it takes one again. */
  health(): WriterHealth {
    return this.failing ? { ok: false, reason: `the message store is failing: ${this.failing.reason}`, since: this.failing.since } : { ok: true };
  }

  async start(): Promise<void> {
    this.consumer = await this.bus.consume(writerConsumer, (batch) => this.write(batch), { maxBatch: this.options.batchSize });
    if (this.options.retentionMs > 0) {
      this.pruneTimer = setInterval(() => void this.prune(), this.options.pruneIntervalMs);
      this.pruneTimer.unref();
    }
  }

  /**
   * Stores one batch, so that no message can hold up the others. A rejection makes the bus deliver
   * the batch again: only when the database itself is failing.
   *
   * When a batch fails, the writer asks whether the database takes writes at all: a probe writes
   * a batch of its own making through the same statements and rolls it back (MessageSink.probe).
   * - The probe fails too: the database is failing (down, a connection lost, a table gone, a full
   *   disk), not a message. Nothing is set aside; the batch goes back to the bus after a wait that
   *   doubles up to `maxBackoffMs`, and the writer reports itself unhealthy until a write succeeds.
   * - The probe succeeds: something in the batch is at fault. The batch is split in halves, each
   *   stored on its own (and split again if it fails) until the failing message is alone; all the
   *   others are stored. A lone message that fails is tried once more (a deadlock or a lost
   *   serialization race is not its fault); if it fails again while a probe still succeeds, it goes
   *   to the dead letters with the error, is logged once and counted, and is acknowledged with its
   *   batch so that the bus stops delivering it.
   */
  async write(batch: Envelope[]): Promise<void> {
    const end = this.metrics.writeSeconds.startTimer();
    try {
      await this.storeOrSplit(batch);
    } catch (e) {
      if (!(e instanceof StorageFailing)) throw e;
      await this.backoff();
      throw e;
    } finally {
      end();
    }
  }

  private async storeOrSplit(batch: Envelope[]): Promise<void> {
    let failure: unknown;
    try {
      return this.stored(await this.target.store(batch));
    } catch (e) {
      failure = e;
    }
    await this.probe(failure);
    if (batch.length > 1) {
      const half = Math.ceil(batch.length / 2);
      await this.storeOrSplit(batch.slice(0, half));
      return this.storeOrSplit(batch.slice(half));
    }
    try {
      return this.stored(await this.target.store(batch));
    } catch (e) {
      failure = e;
    }
    await this.probe(failure);
    await this.setAside(batch[0]!, errorText(failure));
  }

  /** Resolves when the database takes writes; otherwise notes that it is failing and throws StorageFailing. */
  private async probe(failure: unknown): Promise<void> {
    try {
      await this.target.probe();
    } catch (e) {
      this.storageFailed(e, failure);
    }
    this.storageWorks();
  }

  private storageFailed(probeError: unknown, failure: unknown): never {
    const reason = errorText(probeError);
    if (this.failing) {
      this.failing.attempts++;
      this.failing.reason = reason;
      this.log.debug({ err: probeError, attempts: this.failing.attempts }, 'the message store is still failing');
    } else {
      this.failing = { since: this.clock.now(), reason, attempts: 1 };
      // logged once per outage, not once per retry; publishers are refused until it ends
      this.log.error({ err: probeError, batchError: errorText(failure) }, 'the message store is failing: messages stay on the bus and are retried, new ones are refused');
    }
    throw new StorageFailing(reason, { cause: probeError });
  }

  private storageWorks(): void {
    if (!this.failing) return;
    this.log.info({ failedForMs: this.clock.now() - this.failing.since, attempts: this.failing.attempts }, 'the message store works again');
    this.failing = undefined;
  }

  private async setAside(env: Envelope, error: string): Promise<void> {
    if (!this.deadLetters) {
      // nowhere to set it aside (a writer without a dead-letter table): better retried than lost
      throw new Error(`message ${env.id} could not be stored: ${error}`);
    }
    let added: boolean;
    try {
      added = await this.deadLetters.add(env, error, this.clock.now());
    } catch (e) {
      this.storageFailed(e, error);
    }
    if (!added) return; // set aside before, then redelivered
    this.metrics.deadLettered.inc();
    this.log.warn({ id: env.id, org: env.org, channel: env.channel, publisher: env.publisher, protocol: env.protocol, contentType: env.contentType, bytes: env.payload.length, error }, 'a message could not be stored and was set aside in the dead letters');
  }

  /** Waits before a failed batch goes back to the bus: 100 ms, doubling per failed attempt, up to maxBackoffMs; cut short by stop(). */
  private async backoff(): Promise<void> {
    if (this.stopping) return;
    const attempts = this.failing?.attempts ?? 1;
    const ms = Math.min(this.options.maxBackoffMs ?? 5000, 100 * 2 ** Math.min(attempts - 1, 16));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wakeBackoff = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wakeBackoff = undefined;
  }

  private stored(rows: StoredCounts): void {
    this.storageWorks();
    if (rows.records) this.metrics.stored.inc({ kind: 'senml' }, rows.records);
    if (rows.documents) this.metrics.stored.inc({ kind: 'json' }, rows.documents);
    if (rows.payloads) this.metrics.stored.inc({ kind: 'opaque' }, rows.payloads);
  }

  /** Deletes what is older than the retention period, in chunks so that writers are not blocked for long. */
  prune(): Promise<void> {
    this.pruning ??= (async () => {
      try {
        const boundary = idBoundary(this.clock.now() - this.options.retentionMs);
        let total = 0;
        for (;;) {
          const n = await this.target.pruneBefore(boundary, 5000);
          total += n;
          if (n === 0) break;
        }
        if (total > 0) this.log.info({ rows: total }, 'retention pruned old messages');
      } catch (e) {
        this.log.error({ err: e }, 'retention pruning failed');
      } finally {
        this.pruning = undefined;
      }
    })();
    return this.pruning;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeBackoff?.();
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    await this.consumer?.stop();
    this.consumer = undefined;
    await this.pruning;
    await this.target.close();
  }
}
