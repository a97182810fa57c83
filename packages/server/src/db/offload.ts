import type { FleetEventsTable } from './schema.js';
import type { TwinRow } from '../twins/store.js';

/**
 * SQLite writes done by the message writer's thread (storage/writer-thread.ts) on its connection:
 * the twins' batches and the fleet events. SQLite takes one writer at a time; with every frequent
 * write on that one thread, no transaction holds the event loop that answers devices, and the
 * main thread never waits for the write lock the writer's thread holds.
 */
export interface SqliteWrites {
  /** writeTwinRows (twins/store.ts) there: whether each row was written. */
  twinRows(rows: TwinRow[]): Promise<boolean[]>;
  /** insertEventRows (events/store.ts) there. */
  eventRows(rows: FleetEventsTable[]): Promise<void>;
}
