import { sql } from 'kysely';
import { jsonColumn, type Database } from '../db/index.js';
import type { FleetEventsTable } from '../db/schema.js';
import type { EventType, FleetEvent } from './types.js';
import type { SqliteWrites } from '../db/offload.js';
import { insertEventRows } from './insert.js';

export interface EventQuery {
  offset: number;
  limit: number;
  /** Exact types and type prefixes (`device.`): an event matches any one. None given: every type. */
  types?: { exact: string[]; prefixes: string[] };
  /** Events whose subject is this device. */
  device?: string;
  /** Events this user (or device) caused. */
  actor?: string;
  /** From this time on (inclusive), ISO 8601. */
  from?: string;
  /** Before this time (exclusive), ISO 8601. */
  to?: string;
  /** Newest first (default) or oldest first. */
  order?: 'desc' | 'asc';
}

/** The row of an event, its data serialised already. */
export function toRow(e: FleetEvent, data: string): FleetEventsTable {
  return { id: e.id, org_id: e.org_id, type: e.type, actor_kind: e.actor.kind, actor_id: e.actor.id, subject_kind: e.subject.kind, subject_id: e.subject.id, data, created_at: e.time };
}

function toEvent(r: FleetEventsTable): FleetEvent {
  return { id: r.id, org_id: r.org_id, type: r.type as EventType, time: r.created_at, actor: { kind: r.actor_kind, id: r.actor_id }, subject: { kind: r.subject_kind, id: r.subject_id }, data: jsonColumn<Record<string, unknown>>(r.data) };
}

/** LIKE pattern of a type prefix: types hold letters, `_` and dots only, and `_` is LIKE's wildcard. */
function prefixPattern(prefix: string): string {
  return `${prefix.replace(/_/g, '\\_')}%`;
}

/** The fleet_events table (migration 18). */
export class EventStore {
  /** `offload`: SQLite writes go to the writer's thread (db/offload.ts), off this event loop. */
  constructor(
    private readonly db: Database,
    private readonly offload?: SqliteWrites,
  ) {}

  /**
   * Inserts the rows in one transaction: a prepared statement per row on SQLite (on the writer's
   * thread when offloaded), one statement over arrays on PostgreSQL (events come with every twin
   * update: the query builder's compile per batch was as costly as the twins' own writes, bench/twins).
   */
  async insertMany(rows: FleetEventsTable[]): Promise<void> {
    if (rows.length === 0) return;
    if (this.db.sqlite) {
      if (this.offload) await this.offload.eventRows(rows);
      else insertEventRows(this.db.sqlite, rows);
      return;
    }
    const col = <K extends keyof FleetEventsTable>(k: K) => rows.map((r) => r[k]);
    await this.db.pool!.query(
      `INSERT INTO fleet_events (id, org_id, type, actor_kind, actor_id, subject_kind, subject_id, data, created_at)
       SELECT id, org_id, type, actor_kind, actor_id, subject_kind, subject_id, data::jsonb, created_at
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[])
         AS v(id, org_id, type, actor_kind, actor_id, subject_kind, subject_id, data, created_at)`,
      [col('id'), col('org_id'), col('type'), col('actor_kind'), col('actor_id'), col('subject_kind'), col('subject_id'), rows.map((r) => (typeof r.data === 'string' ? r.data : JSON.stringify(r.data))), col('created_at')],
    );
  }

  /** Inserts each row on its own, leaving out those the database refuses (their organization is gone); returns how many it left out. */
  async insertEach(rows: FleetEventsTable[]): Promise<number> {
    let refused = 0;
    for (const row of rows) {
      try {
        await this.db.kysely.insertInto('fleet_events').values(row).execute();
      } catch {
        refused++;
      }
    }
    return refused;
  }

  async list(orgId: string, q: EventQuery): Promise<{ total: number; items: FleetEvent[] }> {
    let base = this.db.kysely.selectFrom('fleet_events').where('org_id', '=', orgId);
    if (q.types && (q.types.exact.length > 0 || q.types.prefixes.length > 0)) {
      const { exact, prefixes } = q.types;
      if (!prefixes.includes('')) {
        base = base.where((eb) => eb.or([...(exact.length > 0 ? [eb('type', 'in', exact)] : []), ...prefixes.map((p) => sql<boolean>`type LIKE ${prefixPattern(p)} ESCAPE '\\'`)]));
      }
    }
    if (q.device !== undefined) base = base.where('subject_kind', '=', 'device').where('subject_id', '=', q.device);
    if (q.actor !== undefined) base = base.where('actor_id', '=', q.actor);
    if (q.from !== undefined) base = base.where('created_at', '>=', q.from);
    if (q.to !== undefined) base = base.where('created_at', '<', q.to);
    const { n } = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const dir = q.order ?? 'desc';
    const rows = await base.selectAll().orderBy('created_at', dir).orderBy('id', dir).offset(q.offset).limit(q.limit).execute();
    return { total: Number(n), items: rows.map(toEvent) };
  }

  /** Whether the database answers (a failed write is then the rows' fault, not its absence). */
  reachable(): Promise<boolean> {
    return this.db.ping();
  }

  /** Deletes up to `limit` events older than `before` (ISO 8601); returns how many. */
  async pruneBefore(before: string, limit: number): Promise<number> {
    const old = this.db.kysely.selectFrom('fleet_events').select('id').where('created_at', '<', before).limit(limit);
    const r = await this.db.kysely.deleteFrom('fleet_events').where('id', 'in', old).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
