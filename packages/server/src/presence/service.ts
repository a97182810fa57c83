import { randomBytes } from 'node:crypto';
import { AppError } from '../core/errors.js';
import { iso, type Clock } from '../core/clock.js';
import { isUuid } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { DevicePresenceTable } from '../db/schema.js';
import { type OfflineReason, type PresenceOp, type PresenceRepository, type PresenceState, type StoredChange } from './repository.js';

export interface PresenceOptions {
  /** This process's name (FLEETWIRE_NODE_ID, or the host name): its connections are written under it. */
  nodeId: string;
  /** How often queued operations are written (FLEETWIRE_PRESENCE_FLUSH_INTERVAL), ms. */
  flushIntervalMs: number;
  /** A node silent this long is taken as dead (FLEETWIRE_PRESENCE_NODE_TIMEOUT), ms; it heartbeats three times as often. */
  nodeTimeoutMs: number;
  /** The interval of an HTTP/CoAP device that declared none (FLEETWIRE_PRESENCE_DEFAULT_INTERVAL), ms. */
  defaultIntervalMs: number;
  /** How long changes are kept (FLEETWIRE_PRESENCE_RETENTION), ms; 0: for ever. */
  retentionMs: number;
  /** Operations kept while the database cannot take them; beyond this the oldest are dropped (and logged). */
  maxQueued?: number;
}

/** The declared reporting interval of a heartbeat, seconds: at least 1, at most 7 days. */
export const minIntervalSeconds = 1;
export const maxIntervalSeconds = 7 * 86_400;

/** A presence change, as `onChange` listeners get it (the fleet event stream: device.connected / device.disconnected). */
export interface PresenceChange {
  orgId: string;
  deviceId: string;
  state: PresenceState;
  previous: PresenceState;
  /** Why the device went offline. */
  reason?: OfflineReason;
  protocol?: string;
  node?: string;
  /** Unix ms. */
  at: number;
}

/** A device's presence as the API shows it. */
export interface DevicePresence {
  device_id: string;
  state: PresenceState;
  /** Since when it is in this state; null for a device never heard of. */
  since: string | null;
  last_seen: string | null;
  protocol: string | null;
  node: string | null;
  reason: OfflineReason | null;
  /** The reporting interval the device declared (HTTP/CoAP heartbeat), seconds. */
  interval: number | null;
  /** For an idle device: when it becomes offline unless heard from. */
  expires_at: string | null;
  /** Its live MQTT connections, on every node. */
  connections: { client_id: string; node: string; protocol: string; since: string }[];
}

export type PresenceBrief = Pick<DevicePresence, 'state' | 'since' | 'last_seen' | 'reason'>;

export interface PresenceHistory {
  device_id: string;
  from: string;
  to: string;
  /** The state at `from` (offline when nothing is known before it). */
  initial: PresenceState;
  changes: { state: PresenceState; reason: OfflineReason | null; protocol: string | null; node: string | null; at: string }[];
  /** Seconds of the range the device was online or idle (present), and the fraction of the range. */
  uptime_seconds: number;
  uptime_fraction: number;
  /** More changes than the page holds: ask again from the last one's time. */
  truncated: boolean;
}

export interface FleetSummary {
  total: number;
  presence: Record<PresenceState, number>;
  /** Devices by the state of their registration (`none`: created without one); `pending` also counts the registrations still waiting for their device to enrol. */
  enrolment: { none: number; pending: number; enrolled: number; suspended: number; revoked: number };
  groups: { id: string; name: string; devices: number; online: number; idle: number; offline: number }[];
}

type LiveConnection = { deviceId: string; orgId: string; clientId: string; protocol: string; since: number };

const historyLimit = 1000;

/** Operations written per transaction at most (a 10,000-device storm: five transactions of about 50 ms on SQLite). */
const opsPerTransaction = 2000;

/**
 * Who is online, idle or offline, and since when. Transports report what they see (a connection
 * authenticated or closed, a device heard from) without waiting: the reports are queued and
 * written in one transaction every flush interval, so a reconnect storm costs a few transactions.
 * The database is the truth every node shares; each node heartbeats, and the survivors mark the
 * devices of a silent node offline. Domain code: no transport here.
 */
export class PresenceService {
  private queue: PresenceOp[] = [];
  /** Devices heard from since the last flush, newest report each (coalesced: a busy device costs one write per flush). */
  private seenSince = new Map<string, Extract<PresenceOp, { kind: 'seen' }>>();
  /** This node's live connections, by key: written again if another node took this one as dead, and closed on shutdown. */
  private readonly live = new Map<string, LiveConnection>();
  private readonly listeners = new Set<(change: PresenceChange) => void>();
  private flushTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private started = false;
  private closed = false;
  private lastPrune = 0;
  private keyCounter = 0;
  private readonly keyPrefix = randomBytes(6).toString('base64url');

  constructor(
    private readonly repo: PresenceRepository,
    private readonly clock: Clock,
    private readonly log: Logger,
    readonly options: PresenceOptions,
  ) {}

  get nodeId(): string {
    return this.options.nodeId;
  }

  /**
   * Starts this node's part: what an earlier run under this node id left (connections of a
   * process that stopped without closing them) goes offline, the heartbeat and the sweeps start.
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const now = this.clock.now();
    const left = await this.repo.nodeGone(this.nodeId, now, 'connection_lost');
    this.tell(left.changes);
    if (left.changes.length > 0) this.log.info({ node: this.nodeId, devices: left.changes.length }, 'presence: devices this node had connected before it restarted are offline');
    await this.repo.heartbeat(this.nodeId, now);
    this.flushTimer = setInterval(() => void this.flush(), this.options.flushIntervalMs);
    this.flushTimer.unref();
    this.sweepTimer = setInterval(() => void this.sweep().catch((e: unknown) => this.log.warn({ err: e }, 'presence sweep failed')), Math.max(100, Math.floor(this.options.nodeTimeoutMs / 3)));
    this.sweepTimer.unref();
  }

  /** Calls `listener` once per change of state, after it is stored. Returns the function that stops it. */
  onChange(listener: (change: PresenceChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A device connection was authenticated here (MQTT). Returns its key, which `disconnected` takes. */
  connected(c: { deviceId: string; orgId: string; clientId: string; protocol: string }): string {
    const key = `${this.keyPrefix}.${(this.keyCounter++).toString(36)}`;
    const at = this.clock.now();
    this.live.set(key, { ...c, since: at });
    this.enqueue({ kind: 'connect', key, ...c, node: this.nodeId, at });
    return key;
  }

  /** That connection closed, and why. */
  disconnected(key: string, reason: OfflineReason): void {
    const c = this.live.get(key);
    if (!c) return;
    this.live.delete(key);
    this.enqueue({ kind: 'disconnect', key, deviceId: c.deviceId, orgId: c.orgId, reason, node: this.nodeId, at: this.clock.now(), takeoverGraceMs: this.options.nodeTimeoutMs });
  }

  /** The device was heard from: a message it published (any protocol), or a heartbeat with the interval it declares. Cheap: coalesced in memory. */
  seen(deviceId: string, orgId: string, protocol: string, intervalSeconds?: number): void {
    if (this.closed) return;
    const at = this.clock.now();
    const before = this.seenSince.get(deviceId);
    if (before) {
      // the report waiting for the flush is brought up to date: a busy device allocates nothing per message
      before.at = at;
      // a device connected over MQTT that also posts over HTTP: the non-MQTT report is the one that counts
      if (protocol !== 'mqtt') before.protocol = protocol;
      if (intervalSeconds !== undefined) before.intervalSeconds = intervalSeconds;
      return;
    }
    this.seenSince.set(deviceId, { kind: 'seen', deviceId, orgId, protocol, node: this.nodeId, at, firstAt: at, intervalSeconds, defaultIntervalSeconds: Math.round(this.options.defaultIntervalMs / 1000) });
  }

  /** A device's heartbeat (`POST /devices/{id}/presence`, CoAP POST): `device` is who the credentials name, `deviceId` the path's. */
  heartbeat(device: { id: string; orgId: string }, deviceId: string, protocol: 'http' | 'coap', intervalSeconds?: number): void {
    // another device's presence does not exist for it
    if (device.id !== deviceId) throw new AppError('device.not_found', 'The credentials are those of another device');
    if (intervalSeconds !== undefined && (!Number.isInteger(intervalSeconds) || intervalSeconds < minIntervalSeconds || intervalSeconds > maxIntervalSeconds)) {
      throw new AppError('presence.invalid_interval', `interval must be a whole number of seconds from ${minIntervalSeconds} to ${maxIntervalSeconds}, got ${JSON.stringify(intervalSeconds)}`);
    }
    this.seen(device.id, device.orgId, protocol, intervalSeconds);
  }

  /**
   * An operator gives a device the interval it is expected to report at (null: the default), as if
   * the device had declared it; the device may declare another with its next heartbeat.
   */
  async setInterval(orgId: string, deviceId: string, intervalSeconds: number | null): Promise<DevicePresence> {
    if (intervalSeconds !== null && (!Number.isInteger(intervalSeconds) || intervalSeconds < minIntervalSeconds || intervalSeconds > maxIntervalSeconds)) {
      throw new AppError('presence.invalid_interval', `interval must be a whole number of seconds from ${minIntervalSeconds} to ${maxIntervalSeconds}, or null, got ${JSON.stringify(intervalSeconds)}`);
    }
    await this.owned(orgId, deviceId);
    await this.flush(); // what the device said before this comes first
    await this.repo.setInterval(deviceId, intervalSeconds, Math.round(this.options.defaultIntervalMs / 1000), this.clock.now());
    return this.get(orgId, deviceId);
  }

  private enqueue(op: PresenceOp): void {
    if (this.closed) return;
    this.queue.push(op);
    const max = this.options.maxQueued ?? 200_000;
    if (this.queue.length > max) {
      const dropped = this.queue.length - max;
      this.queue.splice(0, dropped);
      this.log.warn({ dropped }, 'presence: the database is not taking presence changes; the oldest were dropped');
    }
  }

  /** Writes what is queued, in one transaction. Resolves once written (or failed: then kept for the next flush). */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing.then(() => this.flush());
    if (this.queue.length === 0 && this.seenSince.size === 0) return Promise.resolve();
    const ops = this.queue;
    const seen = this.seenSince;
    this.queue = [];
    this.seenSince = new Map();
    // connections first: a device heard from while it disconnected in the same flush was present then
    const batch = seen.size > 0 ? [...ops, ...seen.values()] : ops;
    this.flushing = (async () => {
      // a transaction per slice: SQLite holds the event loop for one slice at a time, not a whole storm
      for (let i = 0; i < batch.length; i += opsPerTransaction) {
        const slice = batch.slice(i, i + opsPerTransaction);
        try {
          this.tell(await this.repo.apply(slice));
        } catch (e) {
          this.log.warn({ err: e, operations: batch.length - i }, 'presence: writing changes failed; trying again at the next flush');
          this.queue = [...batch.slice(i).filter((o) => o.kind !== 'seen'), ...this.queue];
          for (const o of batch.slice(i)) if (o.kind === 'seen' && !this.seenSince.has(o.deviceId)) this.seenSince.set(o.deviceId, o);
          return;
        }
      }
    })().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /**
   * The periodic work of every node: its heartbeat (a node taken as dead writes its live
   * connections again), the devices of nodes silent beyond the timeout go offline
   * (connection_lost), idle devices past their interval go offline (keepalive_timeout), and old
   * history is pruned.
   */
  async sweep(): Promise<void> {
    const now = this.clock.now();
    if (this.started && !this.closed) {
      const known = await this.repo.heartbeat(this.nodeId, now);
      if (!known) {
        this.log.warn({ node: this.nodeId, connections: this.live.size }, 'presence: another node took this one as dead; writing its connections again');
        for (const [key, c] of this.live) this.queue.push({ kind: 'connect', key, ...c, node: this.nodeId, at: now });
      }
    }
    for (const node of await this.repo.silentNodes(now - this.options.nodeTimeoutMs)) {
      if (node === this.nodeId) continue;
      const gone = await this.repo.nodeGone(node, now, 'connection_lost', now - this.options.nodeTimeoutMs);
      if (!gone.taken) continue;
      this.log.warn({ node, devices: gone.changes.length }, 'presence: a node stopped heartbeating; its devices are offline');
      this.tell(gone.changes);
    }
    this.tell(await this.repo.expire(now));
    if (this.options.retentionMs > 0 && now - this.lastPrune >= Math.min(5 * 60_000, this.options.retentionMs / 10)) {
      this.lastPrune = now;
      await this.repo.prune(now - this.options.retentionMs);
    }
  }

  private tell(changes: StoredChange[]): void {
    for (const c of changes) {
      for (const l of this.listeners) {
        try {
          l(c);
        } catch (e) {
          this.log.error({ err: e }, 'a presence listener failed');
        }
      }
    }
  }

  /** A device's presence (404 for a device not in the organization). */
  async get(orgId: string, deviceId: string): Promise<DevicePresence> {
    const row = await this.owned(orgId, deviceId);
    const connections = await this.repo.connectionsOf(deviceId);
    // online: where its newest connection is, whichever node wrote the row last (a takeover's two
    // nodes write in either order)
    const newest = row?.state === 'online' ? connections.at(-1) : undefined;
    return {
      device_id: deviceId,
      ...brief(row),
      protocol: newest?.protocol ?? row?.protocol ?? null,
      node: newest?.node ?? row?.node ?? null,
      interval: row?.interval_seconds ?? null,
      expires_at: row?.state === 'idle' && row.deadline !== null ? iso(row.deadline) : null,
      connections: connections.map((c) => ({ client_id: c.client_id, node: c.node, protocol: c.protocol, since: iso(c.since) })),
    };
  }

  /** The presence of several devices of one organization (the device list), by id. */
  async ofDevices(orgId: string, deviceIds: readonly string[]): Promise<Map<string, PresenceBrief>> {
    const rows = await this.repo.findMany(orgId, deviceIds);
    const byId = new Map(rows.map((r) => [r.device_id, r]));
    return new Map(deviceIds.map((id) => [id, brief(byId.get(id))]));
  }

  /** The changes over [from, to) (Unix ms; `to` at most now) and the time present (online or idle) in it. */
  async history(orgId: string, deviceId: string, from: number, to: number): Promise<PresenceHistory> {
    if (!Number.isFinite(from) || !Number.isFinite(to) || from >= to) throw new AppError('presence.invalid_range', '`from` must be before `to`');
    await this.owned(orgId, deviceId);
    const now = this.clock.now();
    const end = Math.min(to, now);
    const { before, changes } = await this.repo.history(deviceId, from, to, historyLimit);
    const initial: PresenceState = before?.state ?? 'offline';
    let up = 0;
    let state = initial;
    let at = from;
    for (const c of changes) {
      if (c.at > end) break;
      if (state !== 'offline') up += c.at - at;
      state = c.state;
      at = c.at;
    }
    const truncated = changes.length === historyLimit;
    // past the last change read: the state it left, up to the end (not past now: the future is unknown)
    if (!truncated && state !== 'offline' && end > at) up += end - at;
    const span = Math.max(0, end - from);
    return {
      device_id: deviceId,
      from: iso(from),
      to: iso(to),
      initial,
      changes: changes.map((c) => ({ state: c.state, reason: (c.reason as OfflineReason | null) ?? null, protocol: c.protocol, node: c.node, at: iso(c.at) })),
      uptime_seconds: Math.round(up / 10) / 100,
      uptime_fraction: span > 0 ? Math.round((up / span) * 10_000) / 10_000 : 0,
      truncated,
    };
  }

  /** The organization's devices counted by presence, enrolment and group. */
  async summary(orgId: string): Promise<FleetSummary> {
    const s = await this.repo.summary(orgId);
    const presence: Record<PresenceState, number> = { online: 0, idle: 0, offline: 0 };
    for (const r of s.presence) presence[r.state] += r.n;
    const enrolment = { none: 0, pending: s.pending, enrolled: 0, suspended: 0, revoked: 0 };
    for (const r of s.enrolment) {
      if (r.state === 'pending' || r.state === 'enrolled' || r.state === 'suspended' || r.state === 'revoked') enrolment[r.state] += r.n;
      else enrolment.none += r.n; // created without a registration
    }
    const groups = new Map<string, FleetSummary['groups'][number]>();
    for (const r of s.groups) {
      let g = groups.get(r.id);
      if (!g) groups.set(r.id, (g = { id: r.id, name: r.name, devices: 0, online: 0, idle: 0, offline: 0 }));
      g.devices += r.n;
      g[r.state] += r.n;
    }
    return { total: s.total, presence, enrolment, groups: [...groups.values()] };
  }

  /** The device's row when it is the organization's device; throws device.not_found otherwise. */
  private async owned(orgId: string, deviceId: string): Promise<DevicePresenceTable | undefined> {
    if (!isUuid(deviceId)) throw new AppError('device.not_found');
    const exists = await this.repo.deviceOrg(deviceId);
    if (exists !== orgId) throw new AppError('device.not_found');
    const row = await this.repo.find(deviceId);
    return row && row.org_id === orgId ? row : undefined;
  }

  /**
   * Stops this node's part: its live connections go offline (server_shutdown) unless the broker
   * closed them already, what is queued is written, and its heartbeat row goes (nobody needs to
   * wait for it to fall silent).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.flushTimer) clearInterval(this.flushTimer);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    for (const key of [...this.live.keys()]) this.disconnected(key, 'server_shutdown');
    await this.flush();
    this.closed = true;
    if (this.started) {
      try {
        this.tell((await this.repo.nodeGone(this.nodeId, this.clock.now(), 'server_shutdown')).changes);
      } catch (e) {
        this.log.warn({ err: e }, 'presence: could not remove this node at shutdown');
      }
    }
  }
}

function brief(row: DevicePresenceTable | undefined): PresenceBrief {
  return {
    state: row?.state ?? 'offline',
    since: row ? iso(row.since) : null,
    last_seen: row?.last_seen != null ? iso(row.last_seen) : null,
    reason: row?.state === 'offline' ? ((row.reason as OfflineReason | null) ?? null) : null,
  };
}

