import type { FleetEventsTable } from './schema.js';

/** One twin write as the database takes it: the row's values, the version it must still be at (0: a new twin), its history row. */
export interface TwinRow {
  prev: number;
  /** version, desired, reported, tags, metadata, rejected, updated_at, org_id, device_id, name */
  values: unknown[];
  /** device_id, name, version, org_id, actor_kind, actor_id, patch, created_at */
  history: unknown[];
  created: string;
}

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
