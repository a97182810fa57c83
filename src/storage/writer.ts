import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Bus, DurableConsumer } from '../messaging/bus.js';
import type { Envelope } from '../messaging/envelope.js';
import type { MessagingMetrics } from '../messaging/metrics.js';
import { toRows } from './rows.js';
import { idBoundary, type MessageSink } from './sink.js';

export const writerConsumer = 'writer';

/** Rows one batch became, by kind, and messages that were not stored because their payload no longer parses. */
export interface StoredCounts {
  records: number;
  documents: number;
  payloads: number;
  rejected: number;
}

/**
 * Where the writer's batches go: into a sink on this thread (`localStore`), or to a worker thread
 * with a database connection of its own (`WriterThread`, writer-thread.ts). Either way `store`
 * resolves only once the batch is committed: the bus acknowledges it after that.
 */
export interface BatchStore {
  store(batch: Envelope[]): Promise<StoredCounts>;
  pruneBefore(boundaryId: string, limit: number): Promise<number>;
  close(): Promise<void>;
}

/** Envelopes → rows → one sink transaction, on the calling thread. */
export async function storeBatch(sink: MessageSink, batch: Envelope[], opaqueMaxBytes: number): Promise<StoredCounts> {
  const rows = toRows(batch, opaqueMaxBytes);
  await sink.write(rows);
  return { records: rows.records.length, documents: rows.documents.length, payloads: rows.payloads.length, rejected: rows.rejected };
}

/** A BatchStore over a sink on this thread: the writer's default. */
export function localStore(sink: MessageSink, opaqueMaxBytes: number): BatchStore {
  return {
    store: (batch) => storeBatch(sink, batch, opaqueMaxBytes),
    pruneBefore: (boundaryId, limit) => sink.pruneBefore(boundaryId, limit),
    close: async () => {},
  };
}

export interface WriterOptions {
  /** Messages per transaction at most. */
  batchSize: number;
  /** Keep messages this long (ms); 0 keeps everything. */
  retentionMs: number;
  /** How often retention runs (ms). */
  pruneIntervalMs: number;
}

/**
 * Takes messages from the bus (durable consumer `writer`, at least once) and stores them, one
 * transaction per batch. The bus bounds what waits in memory: when the database is slow, the
 * backlog stays on the bus (and publishers are slowed down on the in-process bus).
 */
export class MessageWriter {
  private consumer: DurableConsumer | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private pruning: Promise<void> | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly target: BatchStore,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly metrics: MessagingMetrics,
    private readonly options: WriterOptions,
  ) {}

  async start(): Promise<void> {
    this.consumer = await this.bus.consume(writerConsumer, (batch) => this.write(batch), { maxBatch: this.options.batchSize });
    if (this.options.retentionMs > 0) {
      this.pruneTimer = setInterval(() => void this.prune(), this.options.pruneIntervalMs);
      this.pruneTimer.unref();
    }
  }

  /** Stores one batch; a rejection makes the bus deliver it again. */
  async write(batch: Envelope[]): Promise<void> {
    const end = this.metrics.writeSeconds.startTimer();
    let rows: StoredCounts;
    try {
      rows = await this.target.store(batch);
    } catch (e) {
      this.log.error({ err: e, messages: batch.length }, 'writing messages failed; the batch will be retried');
      throw e;
    } finally {
      end();
    }
    if (rows.records) this.metrics.stored.inc({ kind: 'senml' }, rows.records);
    if (rows.documents) this.metrics.stored.inc({ kind: 'json' }, rows.documents);
    if (rows.payloads) this.metrics.stored.inc({ kind: 'opaque' }, rows.payloads);
    if (rows.rejected) {
      this.metrics.dropped.inc({ reason: 'invalid_payload' }, rows.rejected);
      this.log.warn({ messages: rows.rejected }, 'messages with an invalid payload reached the writer and were not stored');
    }
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
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    await this.consumer?.stop();
    this.consumer = undefined;
    await this.pruning;
    await this.target.close();
  }
}
