import { Worker } from 'node:worker_threads';
import type { Envelope, Protocol } from '../messaging/envelope.js';
import type { BatchStore, StoredCounts } from './writer.js';
import type { SqliteWrites, TwinRow } from '../db/offload.js';
import type { FleetEventsTable } from '../db/schema.js';

/**
 * The writer's database work on a worker thread (writer-worker.ts) with a connection of its own, so
 * that a transaction never holds the event loop that answers publishers. The bus consumer stays on
 * the main thread: it hands each batch over and acknowledges it when the worker says it committed.
 *
 * A batch crosses as a few flat arrays and one transferred byte buffer holding every payload: a
 * structured clone of the envelopes would copy each payload's whole backing buffer (Node's small
 * buffers are views of a shared 8 KiB pool).
 */

export interface WriterThreadOptions {
  /** Database the worker opens: `sqlite:<file>` (not `:memory:`, which no other connection sees) or `postgres://…`. */
  url: string;
  /** Opaque payloads are stored up to this many bytes. */
  opaqueMaxBytes: number;
}

/** Envelope fields carried as text, in this order, per message. */
const textFields = ['id', 'org', 'channel', 'subtopic', 'publisher', 'protocol', 'contentType'] as const;

export interface PackedBatch {
  /** textFields.length strings per message. */
  text: string[];
  receivedAt: Float64Array;
  /** End offset of each message's payload in `bytes`. */
  ends: Uint32Array;
  bytes: Uint8Array;
}

export type WorkerRequest =
  | { op: 'store'; seq: number; batch: PackedBatch }
  | { op: 'probe'; seq: number }
  | { op: 'prune'; seq: number; boundaryId: string; limit: number }
  | { op: 'twins'; seq: number; rows: TwinRow[] }
  | { op: 'events'; seq: number; rows: FleetEventsTable[] }
  | { op: 'close' };

/** `code`: the database's error code (SQLITE_CONSTRAINT_FOREIGNKEY…), for the caller to tell failures apart. */
export type WorkerReply = { seq: number; ok: true; counts?: StoredCounts; pruned?: number; written?: boolean[] } | { seq: number; ok: false; error: string; code?: string } | { ready: true } | { failed: string };

export function packBatch(batch: Envelope[]): PackedBatch {
  const text = new Array<string>(batch.length * textFields.length);
  const receivedAt = new Float64Array(batch.length);
  const ends = new Uint32Array(batch.length);
  let size = 0;
  for (const env of batch) size += env.payload.length;
  const bytes = new Uint8Array(size);
  let t = 0;
  let at = 0;
  for (let i = 0; i < batch.length; i++) {
    const env = batch[i]!;
    for (const f of textFields) text[t++] = env[f];
    receivedAt[i] = env.receivedAt;
    bytes.set(env.payload, at);
    at += env.payload.length;
    ends[i] = at;
  }
  return { text, receivedAt, ends, bytes };
}

/** The envelopes of a packed batch; payloads are views of `bytes`. MQTT extras are not stored, so they do not travel. */
export function unpackBatch(p: PackedBatch): Envelope[] {
  const out = new Array<Envelope>(p.ends.length);
  const all = Buffer.from(p.bytes.buffer, p.bytes.byteOffset, p.bytes.byteLength);
  let start = 0;
  let t = 0;
  for (let i = 0; i < out.length; i++) {
    const end = p.ends[i]!;
    out[i] = {
      id: p.text[t++]!, org: p.text[t++]!, channel: p.text[t++]!, subtopic: p.text[t++]!, publisher: p.text[t++]!, protocol: p.text[t++] as Protocol, contentType: p.text[t++]!,
      payload: all.subarray(start, end), receivedAt: p.receivedAt[i]!,
    };
    start = end;
  }
  return out;
}

/**
 * The worker, from compiled JavaScript in dist/ (`npm start`), or from TypeScript source when this
 * module runs under tsx (tests, `npm run dev`): a worker does not inherit the loader hooks that
 * `--import tsx` registered, so it registers tsx itself before importing the entry.
 */
function newWorker(options: WriterThreadOptions): Worker {
  const here = import.meta.url;
  const common = { workerData: options, name: 'fleetwire-writer' };
  if (!here.endsWith('.ts')) return new Worker(new URL('./writer-worker.js', here), common);
  const entry = new URL('./writer-worker.ts', here).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(boot, { ...common, eval: true });
}

type Done = { counts?: StoredCounts; pruned?: number; written?: boolean[] };

interface Pending {
  resolve(reply: Done): void;
  reject(e: Error): void;
}

/**
 * A BatchStore on a worker thread, which also takes the twins' and the fleet events' writes on
 * SQLite (db/offload.ts; `sqlite` says the database is one). A worker that dies (a crash, not
 * `close`) fails the requests it held (the bus delivers the message batches again; a twin write is
 * refused to its writer) and is started anew for the next request.
 */
export class WriterThread implements BatchStore, SqliteWrites {
  private worker: Promise<Worker> | undefined;
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  private closed = false;

  constructor(private readonly options: WriterThreadOptions) {}

  /** Starts the worker and waits until its database is open; rejects when it cannot open it. */
  async start(): Promise<void> {
    await this.running();
  }

  private running(): Promise<Worker> {
    if (this.closed) return Promise.reject(new Error('the writer thread is closed'));
    this.worker ??= this.spawn();
    return this.worker;
  }

  private spawn(): Promise<Worker> {
    const worker = newWorker(this.options);
    const started = new Promise<Worker>((resolve, reject) => {
      worker.on('message', (m: WorkerReply) => {
        if ('ready' in m) return resolve(worker);
        if ('failed' in m) {
          reject(new Error(`the writer thread could not open the database: ${m.failed}`));
          return void worker.terminate();
        }
        const p = this.pending.get(m.seq);
        if (!p) return;
        this.pending.delete(m.seq);
        if (m.ok) p.resolve(m);
        else p.reject(Object.assign(new Error(m.error), m.code !== undefined ? { code: m.code } : {}));
      });
      const gone = (why: Error) => {
        reject(why);
        if (this.worker === started) this.worker = undefined;
        for (const p of this.pending.values()) p.reject(why);
        this.pending.clear();
      };
      worker.once('error', gone);
      worker.once('exit', (code) => gone(new Error(`the writer thread exited (code ${code})`)));
    });
    // keep a failed start from being an unhandled rejection; callers see it through running()
    started.catch(() => {});
    return started;
  }

  private async request(make: (seq: number) => WorkerRequest, transfer: ArrayBuffer[] = []): Promise<Done> {
    const worker = await this.running();
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      worker.postMessage(make(seq), transfer);
    });
  }

  async store(batch: Envelope[]): Promise<StoredCounts> {
    const packed = packBatch(batch);
    const reply = await this.request((seq) => ({ op: 'store', seq, batch: packed }), [packed.bytes.buffer as ArrayBuffer]);
    return reply.counts!;
  }

  async probe(): Promise<void> {
    await this.request((seq) => ({ op: 'probe', seq }));
  }

  async pruneBefore(boundaryId: string, limit: number): Promise<number> {
    return (await this.request((seq) => ({ op: 'prune', seq, boundaryId, limit }))).pruned!;
  }

  async twinRows(rows: TwinRow[]): Promise<boolean[]> {
    return (await this.request((seq) => ({ op: 'twins', seq, rows }))).written!;
  }

  async eventRows(rows: FleetEventsTable[]): Promise<void> {
    await this.request((seq) => ({ op: 'events', seq, rows }));
  }

  /** Lets the worker finish what it holds, close its connection and exit. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const worker = await this.worker?.catch(() => undefined);
    if (!worker) return;
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    worker.postMessage({ op: 'close' } satisfies WorkerRequest);
    await exited;
  }
}
