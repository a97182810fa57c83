import type SqliteDatabase from 'better-sqlite3';
import type { Database } from '../db/index.js';
import type { SqliteWrites, TwinRow } from '../db/offload.js';
import { jsonColumn } from '../db/index.js';
import { RawQueries } from '../db/raw.js';
import { AppError } from '../core/errors.js';
import type { Json, JsonObject, Rejections, Stamps } from './document.js';
import type { TwinCondition, TwinSection } from './query.js';

/** A twin as stored: its sections, their leaf stamps, the refused desired values, one version for all. */
export interface TwinState {
  org_id: string;
  device_id: string;
  name: string;
  /** 0 for a twin never written (nothing stored yet). */
  version: number;
  desired: JsonObject;
  reported: JsonObject;
  tags: JsonObject;
  metadata: { desired: Stamps; reported: Stamps; tags: Stamps };
  rejected: Rejections;
  created_at: string;
  updated_at: string;
}

export type ActorKind = 'user' | 'device' | 'system';

export interface TwinActor {
  kind: ActorKind;
  id?: string;
}

/** One accepted change: the patch as applied, who made it and when. */
export interface TwinChange {
  version: number;
  actor: TwinActor;
  patch: JsonObject;
  at: string;
}

export interface TwinSettings {
  max_section_bytes: number;
  max_depth: number;
}

interface TwinRowRaw {
  org_id: string;
  device_id: string;
  name: string;
  version: number;
  desired: unknown;
  reported: unknown;
  tags: unknown;
  metadata: unknown;
  rejected: unknown;
  created_at: string;
  updated_at: string;
}

function toState(row: TwinRowRaw): TwinState {
  const metadata = jsonColumn<Partial<TwinState['metadata']>>(row.metadata);
  return {
    org_id: row.org_id,
    device_id: row.device_id,
    name: row.name,
    version: Number(row.version),
    desired: jsonColumn<JsonObject>(row.desired),
    reported: jsonColumn<JsonObject>(row.reported),
    tags: jsonColumn<JsonObject>(row.tags),
    metadata: { desired: metadata.desired ?? {}, reported: metadata.reported ?? {}, tags: metadata.tags ?? {} },
    rejected: jsonColumn<Rejections>(row.rejected),
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

const columns = 'org_id, device_id, name, version, desired, reported, tags, metadata, rejected, created_at, updated_at';

interface Pending {
  next: TwinState;
  previousVersion: number;
  change: TwinChange;
  resolve(written: boolean): void;
  reject(e: unknown): void;
}

const twinKey = (t: { device_id: string; name: string }) => `${t.device_id}\u0000${t.name}`;

/** The writes of `list` made on top of `failed`, directly or on one another, and the others, each in order. */
function chainedOn(failed: Pending, list: Pending[]): { chained: Pending[]; rest: Pending[] } {
  const key = twinKey(failed.next);
  const versions = new Set([failed.next.version]);
  const chained: Pending[] = [];
  const rest: Pending[] = [];
  for (const q of list) {
    if (twinKey(q.next) === key && versions.has(q.previousVersion)) {
      versions.add(q.next.version);
      chained.push(q);
    } else rest.push(q);
  }
  return { chained, rest };
}

/** Twin writes per transaction at most. */
const maxBatch = 500;
/**
 * Batches written at once: one on SQLite (one writer; a batch holds several versions of a twin), a
 * few on PostgreSQL (commits overlap; a twin is in one of them at most). A write that fails fails
 * those made on top of it before they are sent (chainedOn).
 */
const maxConcurrentBatches = (db: Database) => (db.sqlite ? 1 : 4);

/** A foreign key violation: the device went away while its twin was written. */
function isForeignKeyError(e: unknown): boolean {
  const err = e as { code?: string };
  return err.code === '23503' || err.code === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}

/** The twins' tables on either database. Writes are conditional on the version read: one statement (PostgreSQL) or one transaction (SQLite). */
export class TwinStore {
  private readonly raw: RawQueries;

  /** `offload`: SQLite writes go to the writer's thread (db/offload.ts), off this event loop. */
  constructor(
    private readonly db: Database,
    private readonly offload?: SqliteWrites,
  ) {
    this.raw = new RawQueries(db);
  }

  async get(deviceId: string, name: string): Promise<TwinState | undefined> {
    const [row] = await this.raw.all<TwinRowRaw>(`SELECT ${columns} FROM twins WHERE device_id = ? AND name = ?`, [deviceId, name]);
    return row && toState(row);
  }

  /** The organization of a device, by its id alone (a user reaching a device's own paths). */
  async orgOfDevice(deviceId: string): Promise<string | undefined> {
    const [row] = await this.raw.all<{ org_id: string }>('SELECT org_id FROM devices WHERE id = ?', [deviceId]);
    return row?.org_id;
  }

  /** Every twin of a device: its names, versions and when each last changed. */
  async names(deviceId: string): Promise<{ name: string; version: number; updated_at: string }[]> {
    const rows = await this.raw.all<{ name: string; version: number; updated_at: string }>('SELECT name, version, updated_at FROM twins WHERE device_id = ? ORDER BY name', [deviceId]);
    return rows.map((r) => ({ name: r.name, version: Number(r.version), updated_at: r.updated_at }));
  }

  /** Writes waiting for the next batch, and whether one is being written. */
  private queue: Pending[] = [];
  private flushing = 0;
  private scheduled = false;
  /**
   * Before each batch: undefined to go on, or a promise to wait for (the fleet events that record
   * the twins' changes keep up with them, platform.ts).
   */
  gate: (() => Promise<void> | undefined) | undefined;
  /** PostgreSQL: twins with a write in a batch not yet committed. */
  private readonly inFlight = new Set<string>();

  /**
   * Stores `next` if the twin is still at `previousVersion` (0: not stored yet), with its change in
   * the history, atomically. False when another writer got there first (nothing written). Writes
   * made together go in one transaction (one commit for all: what makes thousands a second), each
   * still conditional on its own version. Writes of one twin commit in the order they were made
   * (the service makes the next version on top of one still being written): on SQLite several
   * versions of a twin share a batch, in order; on PostgreSQL a batch holds one, and none while an
   * earlier one is being written.
   */
  write(next: TwinState, previousVersion: number, change: TwinChange): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.queue.push({ next, previousVersion, change, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.queue.length === 0 || this.flushing >= maxConcurrentBatches(this.db)) return;
    this.scheduled = true;
    setImmediate(() => {
      const wait = this.gate?.();
      if (wait) {
        void wait.then(() => {
          this.scheduled = false;
          this.schedule();
        });
        return;
      }
      this.scheduled = false;
      const batch = this.take();
      if (batch.length === 0) return;
      this.flushing++;
      this.writeBatch(batch).finally(() => {
        this.flushing--;
        if (!this.db.sqlite) for (const p of batch) this.inFlight.delete(twinKey(p.next));
        this.schedule();
      });
      this.schedule();
    });
  }

  /** The next batch from the queue: in order; on PostgreSQL a twin once, and not while it has a write in flight. */
  private take(): Pending[] {
    // SQLite runs a batch's statements one after the other: v2 finds the row v1 left
    if (this.db.sqlite) return this.queue.splice(0, maxBatch);
    // one PostgreSQL statement updates a row once, and overlapping batches commit in any order
    const batch: Pending[] = [];
    const rest: Pending[] = [];
    for (const p of this.queue) {
      const key = twinKey(p.next);
      if (batch.length < maxBatch && !this.inFlight.has(key)) {
        this.inFlight.add(key);
        batch.push(p);
      } else rest.push(p);
    }
    this.queue = rest;
    return batch;
  }

  /** Writes a batch in one transaction; if that fails, each write alone, so that only a bad one's writer hears of it. */
  private async writeBatch(batch: Pending[]): Promise<void> {
    let done: boolean[] | undefined;
    try {
      done = await this.writeMany(batch);
    } catch (e) {
      if (batch.length === 1) return this.settle(batch[0]!, e);
    }
    if (done) return batch.forEach((p, i) => this.settle(p, done[i]!));
    let rest = batch;
    while (rest.length > 0) {
      const p = rest[0]!;
      rest = rest.slice(1);
      let written: boolean | unknown;
      try {
        written = (await this.writeMany([p]))[0]!;
      } catch (e) {
        written = e;
      }
      this.settle(p, written);
      // the rest of this batch made on top of one not written: not written either (told after it, so retried after it)
      if (written !== true) {
        const split = chainedOn(p, rest);
        rest = split.rest;
        for (const q of split.chained) this.settle(q, false);
      }
    }
  }

  /** Tells the writer: written (true), not (false: another writer got there first) or why not. */
  private settle(p: Pending, outcome: boolean | unknown): void {
    if (outcome === true) return p.resolve(true);
    // the writes waiting that were made on top of it: their version numbers may match what another
    // process stored, their content does not
    const split = chainedOn(p, this.queue);
    this.queue = split.rest;
    for (const q of split.chained) q.resolve(false);
    if (outcome === false) p.resolve(false);
    else p.reject(isForeignKeyError(outcome) ? new AppError('device.not_found') : outcome);
  }

  private async writeMany(batch: Pending[]): Promise<boolean[]> {
    const rows: TwinRow[] = batch.map(({ next, previousVersion, change }) => ({
      prev: previousVersion,
      values: [next.version, JSON.stringify(next.desired), JSON.stringify(next.reported), JSON.stringify(next.tags), JSON.stringify(next.metadata), JSON.stringify(next.rejected), next.updated_at, next.org_id, next.device_id, next.name],
      history: [next.device_id, next.name, change.version, next.org_id, change.actor.kind, change.actor.id ?? null, JSON.stringify(change.patch), change.at],
      created: next.created_at,
    }));
    if (this.db.sqlite) return this.offload ? this.offload.twinRows(rows) : writeTwinRows(this.db.sqlite, rows);
    const cols = (i: number) => rows.map((r) => r.values[i]);
    const h = (i: number) => rows.map((r) => r.history[i]);
    // one statement, one commit: the updates (version-checked), the new twins, and the history of those written
    const res = await this.db.pool!.query(
      `WITH v AS (
         SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::int[], $12::timestamptz[], $13::text[], $14::text[], $15::text[])
           AS v(version, desired, reported, tags, metadata, rejected, updated_at, org_id, device_id, name, prev, created_at, actor_kind, actor_id, patch)
       ),
       u AS (
         UPDATE twins t SET version = v.version, desired = v.desired::jsonb, reported = v.reported::jsonb, tags = v.tags::jsonb, metadata = v.metadata::jsonb, rejected = v.rejected::jsonb, updated_at = v.updated_at
         FROM v WHERE v.prev > 0 AND t.org_id = v.org_id AND t.device_id = v.device_id AND t.name = v.name AND t.version = v.prev
         RETURNING t.device_id, t.name
       ),
       i AS (
         INSERT INTO twins (version, desired, reported, tags, metadata, rejected, updated_at, org_id, device_id, name, created_at)
         SELECT version, desired::jsonb, reported::jsonb, tags::jsonb, metadata::jsonb, rejected::jsonb, updated_at, org_id, device_id, name, created_at FROM v WHERE v.prev = 0
         ON CONFLICT DO NOTHING RETURNING device_id, name
       ),
       w AS (SELECT * FROM u UNION ALL SELECT * FROM i)
       INSERT INTO twin_history (device_id, name, version, org_id, actor_kind, actor_id, patch, created_at)
       SELECT v.device_id, v.name, v.version, v.org_id, v.actor_kind, v.actor_id, v.patch::jsonb, v.updated_at FROM v JOIN w ON w.device_id = v.device_id AND w.name = v.name
       RETURNING device_id, name`,
      [...Array.from({ length: 10 }, (_, i) => cols(i)), rows.map((r) => r.prev), rows.map((r) => r.created), h(4), h(5), h(6)],
    );
    const written = new Set(res.rows.map((r: { device_id: string; name: string }) => twinKey(r)));
    return batch.map((p) => written.has(twinKey(p.next)));
  }

  /** Changes from `fromVersion` on (inclusive), oldest first, at most `limit`. */
  async history(deviceId: string, name: string, fromVersion: number, limit: number): Promise<TwinChange[]> {
    const rows = await this.raw.all<{ version: number; actor_kind: ActorKind; actor_id: string | null; patch: unknown; created_at: string }>(
      'SELECT version, actor_kind, actor_id, patch, created_at FROM twin_history WHERE device_id = ? AND name = ? AND version >= ? ORDER BY version LIMIT ?',
      [deviceId, name, fromVersion, limit],
    );
    return rows.map((r) => ({ version: Number(r.version), actor: { kind: r.actor_kind, ...(r.actor_id !== null ? { id: r.actor_id } : {}) }, patch: jsonColumn<JsonObject>(r.patch), at: r.created_at }));
  }

  /** Drops history older than `before`; the number of changes dropped. */
  async pruneHistory(before: string): Promise<number> {
    if (this.db.sqlite) return this.db.sqlite.prepare('DELETE FROM twin_history WHERE created_at < ?').run(before).changes;
    return (await this.db.pool!.query('DELETE FROM twin_history WHERE created_at < $1', [before])).rowCount ?? 0;
  }

  async settings(orgId: string): Promise<TwinSettings | undefined> {
    const row = await this.db.kysely.selectFrom('twin_settings').select(['max_section_bytes', 'max_depth']).where('org_id', '=', orgId).executeTakeFirst();
    return row && { max_section_bytes: Number(row.max_section_bytes), max_depth: Number(row.max_depth) };
  }

  async setSettings(orgId: string, settings: TwinSettings, now: string): Promise<void> {
    await this.db.kysely
      .insertInto('twin_settings')
      .values({ org_id: orgId, ...settings, updated_at: now })
      .onConflict((oc) => oc.column('org_id').doUpdateSet({ ...settings, updated_at: now }))
      .execute();
  }

  /** One page of an organization's twins matching every condition, by device id, with the total. */
  async query(orgId: string, name: string | undefined, conditions: TwinCondition[], page: { offset: number; limit: number }): Promise<{ total: number; items: TwinState[] }> {
    const params: unknown[] = [orgId];
    const where = ['org_id = ?'];
    if (name !== undefined) {
      where.push('name = ?');
      params.push(name);
    }
    for (const c of conditions) where.push(this.db.kind === 'postgres' ? pgCondition(c, params) : sqliteCondition(c, params));
    const clause = where.join(' AND ');
    const [count] = await this.raw.all<{ n: number }>(`SELECT COUNT(*) AS n FROM twins WHERE ${clause}`, params);
    const rows = await this.raw.all<TwinRowRaw>(`SELECT ${columns} FROM twins WHERE ${clause} ORDER BY device_id, name LIMIT ? OFFSET ?`, [...params, page.limit, page.offset]);
    return { total: Number(count?.n ?? 0), items: rows.map(toState) };
  }
}

const twinWriters = new WeakMap<SqliteDatabase.Database, (rows: TwinRow[]) => boolean[]>();

/**
 * Writes twin rows in one SQLite transaction, each conditional on its version; whether each was
 * written. Run by the connection that writes: this thread's, or the writer thread's (db/offload.ts).
 */
export function writeTwinRows(db: SqliteDatabase.Database, rows: TwinRow[]): boolean[] {
  let write = twinWriters.get(db);
  if (!write) {
    const insert = db.prepare('INSERT INTO twins (version, desired, reported, tags, metadata, rejected, updated_at, org_id, device_id, name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING');
    const update = db.prepare('UPDATE twins SET version = ?, desired = ?, reported = ?, tags = ?, metadata = ?, rejected = ?, updated_at = ? WHERE org_id = ? AND device_id = ? AND name = ? AND version = ?');
    const log = db.prepare('INSERT INTO twin_history (device_id, name, version, org_id, actor_kind, actor_id, patch, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    const txn = db.transaction((batch: TwinRow[]) => {
      // `device\0name\0version` of the rows not written: a later version made on one is not written either
      const failed = new Set<string>();
      return batch.map((r) => {
        const key = `${String(r.values[8])}\u0000${String(r.values[9])}\u0000`;
        const done = failed.has(key + r.prev) ? undefined : r.prev === 0 ? insert.run(...r.values, r.created) : update.run(...r.values, r.prev);
        if (!done || done.changes === 0) {
          failed.add(key + String(r.values[0]));
          return false;
        }
        log.run(...r.history);
        return true;
      });
    });
    // another connection (the writer's thread, another process) may write too: take the write lock at BEGIN (db/database.ts)
    write = (batch) => txn.immediate(batch);
    twinWriters.set(db, write);
  }
  return write(rows);
}

// Query paths hold only [A-Za-z0-9_-] keys (query.ts), so they go into the SQL text as they are.

function sqlitePath(path: string[]): string {
  return `'$${path.map((k) => `."${k}"`).join('')}'`;
}

function sqliteCondition(c: TwinCondition, params: unknown[]): string {
  const left = `${c.section} -> ${sqlitePath(c.path)}`;
  if (c.op === 'exists' || c.op === 'missing') return `json_type(${c.section}, ${sqlitePath(c.path)}) IS ${c.op === 'exists' ? 'NOT ' : ''}NULL`;
  if ('ref' in c) {
    // `->` gives each value as JSON text: equal texts are equal values of one type
    const right = `${c.ref.section} -> ${sqlitePath(c.ref.path)}`;
    return c.op === '=' ? `${left} = ${right}` : `${left} IS NOT ${right}`;
  }
  if (c.op === '=' || c.op === '!=') {
    params.push(JSON.stringify(c.value));
    return c.op === '=' ? `${left} = json(?)` : `${left} IS NOT json(?)`;
  }
  params.push((c as { value: number }).value);
  const v = `json_extract(${c.section}, ${sqlitePath(c.path)})`;
  return `(json_type(${c.section}, ${sqlitePath(c.path)}) IN ('integer', 'real') AND ${v} ${c.op} ?)`;
}

function pgCondition(c: TwinCondition, params: unknown[]): string {
  const path = `'{${c.path.join(',')}}'`;
  const left = `(${c.section} #> ${path})`;
  if (c.op === 'exists' || c.op === 'missing') return `${left} IS ${c.op === 'exists' ? 'NOT ' : ''}NULL`;
  if ('ref' in c) {
    const right = `(${c.ref.section} #> '{${c.ref.path.join(',')}}')`;
    return c.op === '=' ? `${left} = ${right}` : `${left} IS DISTINCT FROM ${right}`;
  }
  if (c.op === '=' || c.op === '!=') {
    // containment finds the candidates through the GIN index; the exact comparison keeps arrays and objects whole
    params.push(JSON.stringify(nest(c.path, c.value)));
    const containment = `${c.section} @> ?::jsonb`;
    params.push(JSON.stringify(c.value));
    const exact = `${left} = ?::jsonb`;
    return c.op === '=' ? `(${containment} AND ${exact})` : `NOT (${containment} AND ${exact})`;
  }
  params.push((c as { value: number }).value);
  return `(jsonb_typeof(${left}) = 'number' AND (${c.section} #>> ${path})::double precision ${c.op} ?)`;
}

function nest(path: string[], value: Json): Json {
  let v = value;
  for (let i = path.length - 1; i >= 0; i--) v = { [path[i]!]: v };
  return v;
}

export type { TwinSection };
