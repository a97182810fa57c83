import type { Statement } from 'better-sqlite3';
import type { Database } from '../db/index.js';
import type { DevicePresenceTable, PresenceChangesTable, PresenceState } from '../db/schema.js';

export type { PresenceState };

/** Why a device went offline (docs/presence.md). */
export const offlineReasons = ['client_disconnect', 'keepalive_timeout', 'connection_lost', 'taken_over', 'kicked', 'revoked', 'server_shutdown'] as const;
export type OfflineReason = (typeof offlineReasons)[number];

/** One thing that happened to a device's presence, in the order it happened on its node. Times are Unix ms. */
export type PresenceOp =
  /** An MQTT connection of the device was authenticated on `node`. */
  | { kind: 'connect'; key: string; deviceId: string; orgId: string; clientId: string; protocol: string; node: string; at: number }
  /** That connection ended. `taken_over` never makes the device offline: the connection that took over is its presence. */
  | { kind: 'disconnect'; key: string; deviceId: string; orgId: string; reason: OfflineReason; node: string; at: number; takeoverGraceMs: number }
  /** The device sent something without a connection (HTTP, WebSocket or CoAP publish, heartbeat), or published over MQTT (`last_seen` only). */
  | { kind: 'seen'; deviceId: string; orgId: string; protocol: string; node: string; at: number; intervalSeconds: number | undefined; defaultIntervalSeconds: number; /** The first of the reports coalesced into this one (`at` is the last). */ firstAt?: number };

/** A change of state the repository made, for the service's listeners. */
export interface StoredChange {
  orgId: string;
  deviceId: string;
  state: PresenceState;
  previous: PresenceState;
  reason?: OfflineReason;
  protocol?: string;
  node?: string;
  at: number;
}

/** How long past its interval an idle device is still taken as present: 1.5 × (as MQTT keep-alive, [MQTT-3.1.2-24]). */
export const intervalGrace = 1.5;

/** A statement for the executor: `all` returns rows, `run` the number of rows changed. */
type Query = { mode: 'all' | 'run'; text: string; params: unknown[] };
/** A unit of work written once for both databases: it yields statements and is given their results. */
type Work<T> = Generator<Query, T, unknown>;

const all = (text: string, ...params: unknown[]): Query => ({ mode: 'all', text, params });
const run = (text: string, ...params: unknown[]): Query => ({ mode: 'run', text, params });

/**
 * Presence on either database. Every write is one transaction over a batch of operations, written
 * once as a generator of statements: SQLite runs it synchronously inside `transaction()`,
 * PostgreSQL statement by statement on one pooled connection, locking each device's row
 * (FOR UPDATE) in device id order, so that two nodes writing the same devices never deadlock.
 */
export class PresenceRepository {
  private readonly statements = new Map<string, Statement<unknown[]>>();

  constructor(private readonly db: Database) {}

  private get forUpdate(): string {
    return this.db.kind === 'postgres' ? ' FOR UPDATE' : '';
  }

  private pgText(text: string): string {
    let i = 0;
    return text.replace(/\?/g, () => `$${++i}`);
  }

  private prepare(text: string) {
    let st = this.statements.get(text);
    if (!st) {
      st = this.db.sqlite!.prepare(text);
      this.statements.set(text, st);
    }
    return st;
  }

  /** Runs a unit of work in one transaction. */
  private async transact<T>(work: () => Work<T>): Promise<T> {
    if (this.db.sqlite) {
      return this.db.sqlite.transaction(() => {
        const gen = work();
        let next = gen.next();
        while (!next.done) {
          const q = next.value;
          const st = this.prepare(q.text);
          next = gen.next(q.mode === 'all' ? st.all(...q.params) : st.run(...q.params).changes);
        }
        return next.value;
      }).immediate();
    }
    return this.db.pgTransaction(async (client) => {
      const gen = work();
      let next = gen.next();
      while (!next.done) {
        const q = next.value;
        const res = await client.query(this.pgText(q.text), q.params);
        next = gen.next(q.mode === 'all' ? res.rows : (res.rowCount ?? 0));
      }
      return next.value;
    });
  }

  /**
   * Applies operations in order and returns the changes of state they made. Set-based, so that a
   * batch costs a handful of statements however many devices it holds: the rows of its devices are
   * read (and locked, in device id order) at once, the operations are played on them in memory,
   * and what changed is written back in bulk.
   */
  apply(ops: readonly PresenceOp[]): Promise<StoredChange[]> {
    if (ops.length === 0) return Promise.resolve([]);
    return this.transact(() => this.applyBatch(ops));
  }

  private *applyBatch(ops: readonly PresenceOp[]): Work<StoredChange[]> {
    if (ops.length === 0) return [];
    const ids = [...new Set(ops.map((o) => o.deviceId))].sort();
    // a row for each device that may become present (first heard of: offline since its first report)
    const firstAt = new Map<string, number>();
    for (const o of ops) if ((o.kind === 'connect' || (o.kind === 'seen' && o.protocol !== 'mqtt')) && !firstAt.has(o.deviceId)) firstAt.set(o.deviceId, o.kind === 'seen' ? (o.firstAt ?? o.at) : o.at);
    const making = [...firstAt.keys()].sort();
    for (const chunk of chunks(making, 500)) {
      yield run(`INSERT INTO device_presence (device_id, org_id, state, since) SELECT id, org_id, 'offline', CAST(? AS BIGINT) FROM devices WHERE id IN (${marks(chunk.length)}) ORDER BY id ON CONFLICT (device_id) DO NOTHING`, Math.min(...chunk.map((id) => firstAt.get(id)!)), ...chunk);
    }
    const rows = new Map<string, Row>();
    const live = new Map<string, Set<string>>();
    for (const chunk of chunks(ids, 500)) {
      const found = (yield all(`SELECT device_id, org_id, state, since, last_seen, protocol, node, reason, interval_seconds, deadline FROM device_presence WHERE device_id IN (${marks(chunk.length)}) ORDER BY device_id${this.forUpdate}`, ...chunk)) as DevicePresenceTable[];
      for (const r of found) rows.set(r.device_id, { ...r, since: Number(r.since), last_seen: r.last_seen === null ? null : Number(r.last_seen), deadline: r.deadline === null ? null : Number(r.deadline), dirty: false });
      const conns = (yield all(`SELECT device_id, connection_key FROM presence_connections WHERE device_id IN (${marks(chunk.length)})`, ...chunk)) as { device_id: string; connection_key: string }[];
      for (const c of conns) liveOf(live, c.device_id).add(c.connection_key);
    }

    const play = new Replay(rows, live);
    for (const op of ops) play.apply(op);

    for (const chunk of chunks([...play.deleted], 500)) yield run(`DELETE FROM presence_connections WHERE connection_key IN (${marks(chunk.length)})`, ...chunk);
    for (const chunk of chunks([...play.inserted.values()], 200)) {
      yield run(`INSERT INTO presence_connections (connection_key, device_id, org_id, node, protocol, client_id, since) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?, ?)').join(', ')} ON CONFLICT (connection_key) DO NOTHING`, ...chunk.flatMap((c) => [c.key, c.deviceId, c.orgId, c.node, c.protocol, c.clientId, c.at]));
    }
    const dirty = [...rows.values()].filter((r) => r.dirty);
    if (this.db.kind === 'postgres') {
      for (const chunk of chunks(dirty, 5000)) {
        const col = <K extends keyof Row>(k: K) => chunk.map((r) => r[k]);
        yield run(
          `UPDATE device_presence AS p SET state = u.state, since = u.since, last_seen = u.last_seen, protocol = u.protocol, node = u.node, reason = u.reason, interval_seconds = u.interval_seconds, deadline = u.deadline
           FROM unnest(?::text[], ?::text[], ?::bigint[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::int[], ?::bigint[]) AS u(device_id, state, since, last_seen, protocol, node, reason, interval_seconds, deadline)
           WHERE p.device_id = u.device_id`,
          col('device_id'), col('state'), col('since'), col('last_seen'), col('protocol'), col('node'), col('reason'), col('interval_seconds'), col('deadline'),
        );
      }
    } else {
      for (const r of dirty) yield run('UPDATE device_presence SET state = ?, since = ?, last_seen = ?, protocol = ?, node = ?, reason = ?, interval_seconds = ?, deadline = ? WHERE device_id = ?', r.state, r.since, r.last_seen, r.protocol, r.node, r.reason, r.interval_seconds, r.deadline, r.device_id);
    }
    for (const chunk of chunks(play.changes, 500)) {
      yield run(`INSERT INTO presence_changes (device_id, org_id, state, reason, protocol, node, at) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?, ?)').join(', ')}`, ...chunk.flatMap((c) => [c.deviceId, c.orgId, c.state, c.reason ?? null, c.protocol ?? null, c.node ?? null, c.at]));
    }
    return play.changes;
  }

  /**
   * Devices past their deadline go offline: an idle one whose interval passed without a word
   * (keepalive_timeout), an online one whose connection was taken over and none came
   * (connection_lost).
   */
  expire(now: number): Promise<StoredChange[]> {
    return this.transact(() => this.expireDue(now));
  }

  private *expireDue(now: number): Work<StoredChange[]> {
    const due = (yield all(`SELECT device_id, org_id, state, deadline FROM device_presence WHERE deadline IS NOT NULL AND deadline <= ? AND state IN ('idle', 'online') ORDER BY device_id LIMIT 10000${this.forUpdate}`, now)) as { device_id: string; org_id: string; state: PresenceState; deadline: number }[];
    if (due.length === 0) return [];
    // an online device whose connection was taken over, and another came meanwhile: nothing to do but forget the deadline
    const live = new Set<string>();
    for (const chunk of chunks(due.filter((d) => d.state === 'online').map((d) => d.device_id), 500)) {
      for (const r of (yield all(`SELECT DISTINCT device_id FROM presence_connections WHERE device_id IN (${marks(chunk.length)})`, ...chunk)) as { device_id: string }[]) live.add(r.device_id);
    }
    for (const chunk of chunks([...live], 500)) yield run(`UPDATE device_presence SET deadline = NULL WHERE device_id IN (${marks(chunk.length)})`, ...chunk);
    const gone = due.filter((d) => !live.has(d.device_id));
    for (const chunk of chunks(gone.map((d) => d.device_id), 500)) {
      // offline from the moment its deadline passed, however late the sweep came
      yield run(`UPDATE device_presence SET state = 'offline', since = deadline, reason = CASE WHEN state = 'idle' THEN 'keepalive_timeout' ELSE 'connection_lost' END, deadline = NULL WHERE device_id IN (${marks(chunk.length)})`, ...chunk);
    }
    const changes = gone.map((d): StoredChange => ({ orgId: d.org_id, deviceId: d.device_id, state: 'offline', previous: d.state, reason: d.state === 'idle' ? 'keepalive_timeout' : 'connection_lost', at: Number(d.deadline) }));
    for (const chunk of chunks(changes, 500)) {
      yield run(`INSERT INTO presence_changes (device_id, org_id, state, reason, protocol, node, at) VALUES ${chunk.map(() => '(?, ?, ?, ?, NULL, NULL, ?)').join(', ')}`, ...chunk.flatMap((c) => [c.deviceId, c.orgId, c.state, c.reason, c.at]));
    }
    return changes;
  }

  /**
   * A node is gone: its connections are removed, and the devices they held that have no other go
   * offline with `reason`. With `silentSince`, only if the node's heartbeat is still older than it
   * (another node may have taken it first, or it came back): then false, and nothing changes.
   */
  nodeGone(node: string, at: number, reason: OfflineReason, silentSince?: number): Promise<{ taken: boolean; changes: StoredChange[] }> {
    return this.transact(() => this.removeNode(node, at, reason, silentSince));
  }

  private *removeNode(node: string, at: number, reason: OfflineReason, silentSince: number | undefined): Work<{ taken: boolean; changes: StoredChange[] }> {
    const changes: StoredChange[] = [];
    if (silentSince !== undefined) {
      const taken = (yield run('DELETE FROM presence_nodes WHERE node = ? AND seen_at < ?', node, silentSince)) as number;
      if (taken === 0) return { taken: false, changes };
    } else {
      yield run('DELETE FROM presence_nodes WHERE node = ?', node);
    }
    // each of its connections ends as a disconnect would: set-based, however many it held
    const held = (yield all('SELECT connection_key, device_id, org_id FROM presence_connections WHERE node = ?', node)) as { connection_key: string; device_id: string; org_id: string }[];
    changes.push(...(yield* this.applyBatch(held.map((c): PresenceOp => ({ kind: 'disconnect', key: c.connection_key, deviceId: c.device_id, orgId: c.org_id, reason, node, at, takeoverGraceMs: 0 })))));
    return { taken: true, changes };
  }

  /** Sets (or, with null, forgets) the interval a device is expected to report at; an idle device's deadline follows at once. */
  setInterval(deviceId: string, intervalSeconds: number | null, defaultIntervalSeconds: number, at: number): Promise<void> {
    return this.transact(function* () {
      yield run("INSERT INTO device_presence (device_id, org_id, state, since) SELECT id, org_id, 'offline', CAST(? AS BIGINT) FROM devices WHERE id = ? ON CONFLICT (device_id) DO NOTHING", at, deviceId);
      const graceMs = Math.round((intervalSeconds ?? defaultIntervalSeconds) * 1000 * intervalGrace);
      yield run("UPDATE device_presence SET interval_seconds = ?, deadline = CASE WHEN state = 'idle' AND last_seen IS NOT NULL THEN last_seen + ? ELSE deadline END WHERE device_id = ?", intervalSeconds, graceMs, deviceId);
    });
  }

  /** This node's heartbeat; false when its row was gone (another node took it as dead, or it is new). */
  heartbeat(node: string, at: number): Promise<boolean> {
    return this.transact(function* () {
      const updated = (yield run('UPDATE presence_nodes SET seen_at = ? WHERE node = ?', at, node)) as number;
      if (updated > 0) return true;
      yield run('INSERT INTO presence_nodes (node, seen_at) VALUES (?, ?) ON CONFLICT (node) DO UPDATE SET seen_at = excluded.seen_at', node, at);
      return false;
    });
  }

  /** Nodes whose heartbeat is older than `before`. */
  async silentNodes(before: number): Promise<string[]> {
    const rows = await this.db.kysely.selectFrom('presence_nodes').select('node').where('seen_at', '<', before).execute();
    return rows.map((r) => r.node);
  }

  /** Deletes changes older than `before`. */
  async prune(before: number): Promise<number> {
    const res = await this.db.kysely.deleteFrom('presence_changes').where('at', '<', before).executeTakeFirst();
    return Number(res.numDeletedRows);
  }

  /** The organization of a device, if it exists. */
  async deviceOrg(deviceId: string): Promise<string | undefined> {
    const row = await this.db.kysely.selectFrom('devices').select('org_id').where('id', '=', deviceId).executeTakeFirst();
    return row?.org_id;
  }

  async find(deviceId: string): Promise<DevicePresenceTable | undefined> {
    return this.db.kysely.selectFrom('device_presence').selectAll().where('device_id', '=', deviceId).executeTakeFirst();
  }

  async findMany(orgId: string, deviceIds: readonly string[]): Promise<DevicePresenceTable[]> {
    if (deviceIds.length === 0) return [];
    return this.db.kysely.selectFrom('device_presence').selectAll().where('org_id', '=', orgId).where('device_id', 'in', [...deviceIds]).execute();
  }

  /** The live connections of a device, on every node. */
  async connectionsOf(deviceId: string): Promise<{ node: string; protocol: string; client_id: string; since: number }[]> {
    return this.db.kysely.selectFrom('presence_connections').select(['node', 'protocol', 'client_id', 'since']).where('device_id', '=', deviceId).orderBy('since').execute();
  }

  /** The changes in [from, to), oldest first, at most `limit`, and the last change before `from` (the state at `from`). */
  async history(deviceId: string, from: number, to: number, limit: number): Promise<{ before: PresenceChangesTable | undefined; changes: PresenceChangesTable[] }> {
    const before = await this.db.kysely.selectFrom('presence_changes').selectAll().where('device_id', '=', deviceId).where('at', '<', from).orderBy('at', 'desc').limit(1).executeTakeFirst();
    const changes = await this.db.kysely.selectFrom('presence_changes').selectAll().where('device_id', '=', deviceId).where('at', '>=', from).where('at', '<', to).orderBy('at').limit(limit).execute();
    return { before, changes };
  }

  /** An organization's devices counted by presence (a device never heard of is offline), by enrolment and by group. */
  async summary(orgId: string): Promise<{
    presence: { state: PresenceState; n: number }[];
    enrolment: { state: string | null; n: number }[];
    pending: number;
    groups: { id: string; name: string; state: PresenceState; n: number }[];
    total: number;
  }> {
    const k = this.db.kysely;
    const state = "COALESCE(p.state, 'offline')";
    const q = (text: string, params: unknown[]) => this.raw(text, params);
    const presence = await q(`SELECT ${state} AS state, COUNT(*) AS n FROM devices d LEFT JOIN device_presence p ON p.device_id = d.id WHERE d.org_id = ? GROUP BY ${state}`, [orgId]);
    const enrolment = await q('SELECT r.state AS state, COUNT(*) AS n FROM devices d LEFT JOIN device_registrations r ON r.device_id = d.id WHERE d.org_id = ? GROUP BY r.state', [orgId]);
    const pending = await k.selectFrom('device_registrations').select((eb) => eb.fn.countAll<number>().as('n')).where('org_id', '=', orgId).where('device_id', 'is', null).executeTakeFirstOrThrow();
    const groups = await q(`SELECT g.id AS id, g.name AS name, ${state} AS state, COUNT(*) AS n FROM groups g JOIN group_devices gd ON gd.group_id = g.id JOIN devices d ON d.id = gd.device_id LEFT JOIN device_presence p ON p.device_id = d.id WHERE g.org_id = ? GROUP BY g.id, g.name, ${state} ORDER BY g.name, g.id`, [orgId]);
    const total = presence.reduce((sum, r) => sum + Number(r.n), 0);
    return {
      presence: presence.map((r) => ({ state: r.state as PresenceState, n: Number(r.n) })),
      enrolment: enrolment.map((r) => ({ state: (r.state as string | null) ?? null, n: Number(r.n) })),
      pending: Number(pending.n),
      groups: groups.map((r) => ({ id: r.id as string, name: r.name as string, state: r.state as PresenceState, n: Number(r.n) })),
      total,
    };
  }

  private async raw(text: string, params: unknown[]): Promise<Record<string, unknown>[]> {
    if (this.db.sqlite) return this.prepare(text).all(...params) as Record<string, unknown>[];
    return (await this.db.pool!.query(this.pgText(text), params)).rows as Record<string, unknown>[];
  }
}

/** A device's presence row while a batch is played on it. */
type Row = Omit<DevicePresenceTable, 'reason'> & { reason: string | null; dirty: boolean };

function liveOf(live: Map<string, Set<string>>, deviceId: string): Set<string> {
  let set = live.get(deviceId);
  if (!set) live.set(deviceId, (set = new Set()));
  return set;
}

function* chunks<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

function marks(n: number): string {
  return Array.from({ length: n }, () => '?').join(', ');
}

/**
 * A batch of operations played, in order, on the rows and live connections of its devices as the
 * database holds them: what to write back, and the changes of state.
 */
class Replay {
  readonly changes: StoredChange[] = [];
  /** Connections to write, by key (one made and ended in the same batch is never written). */
  readonly inserted = new Map<string, Extract<PresenceOp, { kind: 'connect' }>>();
  /** Connections of the database to remove. */
  readonly deleted = new Set<string>();

  constructor(
    private readonly rows: Map<string, Row>,
    private readonly live: Map<string, Set<string>>,
  ) {}

  apply(op: PresenceOp): void {
    const row = this.rows.get(op.deviceId); // none: the device does not exist (deleted meanwhile)
    switch (op.kind) {
      case 'connect': {
        const conns = liveOf(this.live, op.deviceId);
        if (!conns.has(op.key)) {
          conns.add(op.key);
          this.inserted.set(op.key, op);
        }
        if (!row) return;
        if (row.state === 'online') return this.set(row, { last_seen: op.at, protocol: op.protocol, node: op.node, deadline: null });
        return this.transition(row, 'online', op.at, { protocol: op.protocol, node: op.node, last_seen: op.at, deadline: null });
      }
      case 'disconnect': {
        const conns = this.live.get(op.deviceId);
        if (!conns?.delete(op.key)) return; // removed already: its node was taken as dead, or it never was written
        if (!this.inserted.delete(op.key)) this.deleted.add(op.key);
        if (conns.size > 0) return; // another connection of the device is live: still online
        if (!row || row.state !== 'online') return;
        // the connection that took over (here or on another node) is written in a moment: until
        // then the device stays online, and is offline only if none comes within the grace
        if (op.reason === 'taken_over') return this.set(row, { last_seen: op.at, deadline: op.at + op.takeoverGraceMs });
        return this.transition(row, 'offline', op.at, { reason: op.reason, node: op.node, last_seen: op.at, deadline: null });
      }
      case 'seen': {
        if (!row) return;
        // a connected client's message: the connection is its presence, this only says when it was last heard
        if (op.protocol === 'mqtt') return row.last_seen === null || row.last_seen < op.at ? this.set(row, { last_seen: op.at }) : undefined;
        const interval = op.intervalSeconds ?? row.interval_seconds ?? op.defaultIntervalSeconds;
        const declared = op.intervalSeconds ?? row.interval_seconds;
        const lastSeen = Math.max(op.at, row.last_seen ?? 0);
        const deadline = lastSeen + Math.round(interval * 1000 * intervalGrace);
        if (row.state === 'online') return this.set(row, { last_seen: lastSeen, interval_seconds: declared });
        if (row.state === 'idle') return this.set(row, { last_seen: lastSeen, interval_seconds: declared, deadline, protocol: op.protocol, node: op.node });
        // present from the first report of the flush on
        return this.transition(row, 'idle', op.firstAt ?? op.at, { protocol: op.protocol, node: op.node, last_seen: lastSeen, interval_seconds: declared, deadline });
      }
    }
  }

  private set(row: Row, fields: Partial<Row>): void {
    Object.assign(row, fields);
    row.dirty = true;
  }

  private transition(row: Row, state: PresenceState, at: number, f: Partial<Row> & { reason?: OfflineReason }): void {
    const previous = row.state;
    this.set(row, { reason: null, ...f, state, since: at });
    this.changes.push({ orgId: row.org_id, deviceId: row.device_id, state, previous, ...(f.reason ? { reason: f.reason } : {}), ...(f.protocol ? { protocol: f.protocol } : {}), ...(f.node ? { node: f.node } : {}), at });
  }
}
