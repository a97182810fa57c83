// Entry of the writer's worker thread (writer-thread.ts): opens its own database connection and
// stores the batches the main thread hands over, one transaction each, in the order they came.
import { parentPort, workerData } from 'node:worker_threads';
import { Database } from '../db/index.js';
import { createMessageSink, type MessageSink } from './sink.js';
import { storeBatch } from './writer.js';
import { writeTwinRows } from '../twins/store.js';
import { insertEventRows } from '../events/insert.js';
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

async function handle(db: Database, sink: MessageSink, m: Exclude<WorkerRequest, { op: 'close' }>): Promise<WorkerReply> {
  try {
    // twins and fleet events (db/offload.ts): SQLite only, where the main thread hands them over
    if (m.op === 'twins') return { seq: m.seq, ok: true, written: writeTwinRows(db.sqlite!, m.rows) };
    if (m.op === 'events') {
      insertEventRows(db.sqlite!, m.rows);
      return { seq: m.seq, ok: true };
    }
    if (m.op === 'store') return { seq: m.seq, ok: true, counts: await storeBatch(sink, unpackBatch(m.batch), options.opaqueMaxBytes) };
    if (m.op === 'probe') {
      await sink.probe();
      return { seq: m.seq, ok: true };
    }
    return { seq: m.seq, ok: true, pruned: await sink.pruneBefore(m.boundaryId, m.limit) };
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    return { seq: m.seq, ok: false, error: e instanceof Error ? e.message : String(e), ...(typeof code === 'string' ? { code } : {}) };
  }
}

const opened = await open();
if (opened) {
  const { db, sink } = opened;
  // one request at a time: batches commit in the order the bus handed them over. Fleet events wait
  // while anything else is waiting: a device waits for its message or twin write, nobody for an event
  const urgent: WorkerRequest[] = [];
  const events: WorkerRequest[] = [];
  let running = false;
  const next = async () => {
    running = true;
    for (;;) {
      const m = urgent.shift() ?? events.shift();
      if (!m) break;
      if (m.op !== 'close') {
        reply(await handle(db, sink, m));
        // requests that came meanwhile are queued before the next is picked
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      await sink.close().catch(() => {}); // what it still held, the next writer recovers from the records
      await db.close();
      port.close();
      return;
    }
    running = false;
  };
  port.on('message', (m: WorkerRequest) => {
    // close comes after everything asked before it, events included
    if (m.op === 'close') {
      urgent.push(...events.splice(0), m);
    } else (m.op === 'events' ? events : urgent).push(m);
    if (!running) void next();
  });
  reply({ ready: true });
}
