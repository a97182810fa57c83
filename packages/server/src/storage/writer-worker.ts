// Entry of the writer's worker thread (writer-thread.ts): opens its own database connection and
// stores the batches the main thread hands over, one transaction each, in the order they came.
import { parentPort, workerData } from 'node:worker_threads';
import { Database } from '../db/index.js';
import { createMessageSink, type MessageSink } from './sink.js';
import { storeBatch } from './writer.js';
import { unpackBatch, type WorkerReply, type WorkerRequest, type WriterThreadOptions } from './writer-thread.js';

const options = workerData as WriterThreadOptions;
const port = parentPort!;
const reply = (m: WorkerReply) => port.postMessage(m);

/** The database and sink, or why they could not be opened (the main thread then ends this worker). */
async function open(): Promise<{ db: Database; sink: MessageSink } | undefined> {
  let db: Database | undefined;
  try {
    // one connection is all a sequential writer uses
    db = await Database.open({ url: options.url, poolSize: 1, queryBuilder: false });
    return { db, sink: createMessageSink(db) };
  } catch (e) {
    reply({ failed: e instanceof Error ? e.message : String(e) });
    await db?.close().catch(() => {});
    return undefined;
  }
}

async function handle(sink: MessageSink, m: Exclude<WorkerRequest, { op: 'close' }>): Promise<WorkerReply> {
  try {
    if (m.op === 'store') return { seq: m.seq, ok: true, counts: await storeBatch(sink, unpackBatch(m.batch), options.opaqueMaxBytes) };
    if (m.op === 'probe') {
      await sink.probe();
      return { seq: m.seq, ok: true };
    }
    return { seq: m.seq, ok: true, pruned: await sink.pruneBefore(m.boundaryId, m.limit) };
  } catch (e) {
    return { seq: m.seq, ok: false, error: e instanceof Error ? e.message : String(e) };
  }
}

const opened = await open();
if (opened) {
  const { db, sink } = opened;
  // one request at a time: batches commit in the order the bus handed them over
  let queue = Promise.resolve();
  port.on('message', (m: WorkerRequest) => {
    queue = queue.then(async () => {
      if (m.op !== 'close') return reply(await handle(sink, m));
      await sink.close().catch(() => {}); // what it still held, the next writer recovers from the records
      await db.close();
      port.close();
    });
  });
  reply({ ready: true });
}
