// The fleet events' SQLite insert, apart from the store (no query builder): the writer's thread
// runs it too (db/offload.ts).
import type { FleetEventsTable } from '../db/schema.js';
import type SqliteDatabase from 'better-sqlite3';

const eventInserts = new WeakMap<SqliteDatabase.Database, (rows: FleetEventsTable[]) => void>();

/** Inserts event rows in one SQLite transaction, on the connection that writes (this thread's or the writer thread's). */
export function insertEventRows(db: SqliteDatabase.Database, rows: FleetEventsTable[]): void {
  let insert = eventInserts.get(db);
  if (!insert) {
    const st = db.prepare('INSERT INTO fleet_events (id, org_id, type, actor_kind, actor_id, subject_kind, subject_id, data, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    const txn = db.transaction((batch: FleetEventsTable[]) => {
      for (const r of batch) st.run(r.id, r.org_id, r.type, r.actor_kind, r.actor_id, r.subject_kind, r.subject_id, typeof r.data === 'string' ? r.data : JSON.stringify(r.data), r.created_at);
    });
    // another connection (the writer's thread, another process) may write too: take the write lock at BEGIN (db/database.ts)
    insert = (batch) => txn.immediate(batch);
    eventInserts.set(db, insert);
  }
  insert(rows);
}
