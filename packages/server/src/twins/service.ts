import { AppError } from '../core/errors.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { jsonDepth } from '../core/json.js';
import type { AddressLimit } from '../auth/rate-limit.js';
import { onJsonBroadcast, type Broadcasts } from '../core/broadcast.js';
import { randomBytes } from 'node:crypto';
import { computeDelta, isObject, jsonEqual, liveRejections, mergePatch, onlyRemovals, pointerTokens, stampPatch, valueAt, type Json, type JsonObject, type Rejections } from './document.js';
import { parseConditions } from './query.js';
import type { TwinActor, TwinChange, TwinSettings, TwinState, TwinStore } from './store.js';

/** The twin every device has; others are named (`config`, `firmware`, …). */
export const defaultTwin = 'default';
export const twinNamePattern = /^[a-z0-9][a-z0-9_-]{0,63}$/;
/** Words the device protocols use after a twin's name: a twin may not be called so. */
export const reservedTwinNames: ReadonlySet<string> = new Set(['get', 'update', 'delta', 'documents', 'accepted', 'rejected', 'history', 'twin', 'twins']);
/** Named twins a device may have besides the default one. */
export const maxTwinsPerDevice = 16;
export const maxReasonLength = 256;

/** The defaults of the per-organization limits (PUT /orgs/{org}/twin-settings changes them). */
export const defaultTwinSettings: TwinSettings = { max_section_bytes: 32 * 1024, max_depth: 10 };
export const twinSettingsBounds = { max_section_bytes: { min: 1024, max: 1024 * 1024 }, max_depth: { min: 2, max: 32 } } as const;

/** What a writer may send: JSON merge patches per section, and refusals of desired values by pointer. */
export interface TwinUpdate {
  desired?: JsonObject;
  reported?: JsonObject;
  tags?: JsonObject;
  /** JSON pointer into desired → why the device cannot apply it (`null` withdraws the refusal). */
  rejected?: Record<string, string | null>;
}

/** Who may write which part: users desire and tag, devices report, refuse and clear desired values. */
const writable: Record<TwinActor['kind'], ReadonlySet<keyof TwinUpdate>> = {
  user: new Set(['desired', 'tags']),
  device: new Set(['reported', 'desired', 'rejected']),
  system: new Set(['desired', 'reported', 'tags', 'rejected']),
};

/** A twin as the API and the device protocols show it; `tags` are for the service side only. */
export interface TwinDocument {
  device_id: string;
  name: string;
  version: number;
  desired: JsonObject;
  reported: JsonObject;
  delta: JsonObject;
  tags?: JsonObject;
  metadata: { desired: TwinState['metadata']['desired']; reported: TwinState['metadata']['reported']; tags?: TwinState['metadata']['tags'] };
  rejected: Rejections;
  created_at?: string;
  updated_at?: string;
}

export type Audience = 'service' | 'device';

/** One accepted change, as listeners get it (device notifications, the event stream). */
export interface TwinChanged {
  orgId: string;
  deviceId: string;
  name: string;
  version: number;
  actor: TwinActor;
  /** The update as applied (the writer's patch, refusals resolved to their values). */
  patch: JsonObject;
  previous: { desired: JsonObject; reported: JsonObject };
  twin: TwinState;
  delta: JsonObject;
  /** Desired state changed (or a refusal was withdrawn): the device is told the delta. */
  desiredChanged: boolean;
  /** Refusals the device added in this change, by pointer. */
  rejectedNow: string[];
}

/**
 * A change as every process hears of it (twins.watch): enough to notify the device, with no
 * tags (the device's view). `delta` only when desired changed.
 */
export interface TwinNotice {
  node: string;
  orgId: string;
  deviceId: string;
  name: string;
  version: number;
  delta?: JsonObject;
  previous: { desired: JsonObject; reported: JsonObject };
  current: { desired: JsonObject; reported: JsonObject };
  /** When the change was made, ms since the epoch. */
  at: number;
}

/** Broadcast topic of twin changes between processes. */
const noticeTopic = 'twins';

export interface TwinServiceOptions {
  historyRetentionMs: number;
  /** Updates one device may make per `rateWindowMs`. */
  maxDeviceUpdates: number;
  rateWindowMs: number;
  /** Twins kept in memory (read before each update): the newest used. */
  cacheSize?: number;
}

export interface UpdateOptions {
  actor: TwinActor;
  /** The version the writer read: the update is refused when the twin moved on. */
  version?: number;
  /** The device is the authenticated caller (its existence was proved): no lookup. */
  trustedDevice?: boolean;
}

/** An update made in memory: nothing to write (`pending`: the write the twin is at, if not stored yet), or its write. */
type Prepared =
  | { current: TwinState; pending: Promise<boolean> | undefined }
  | { current: TwinState; next: TwinState; written: Promise<boolean>; applied: JsonObject; actor: TwinActor; same: boolean; withdrawn: boolean; rejectedNow: string[]; now: number };

const emptyState = (orgId: string, deviceId: string, name: string, now: string): TwinState => ({
  org_id: orgId, device_id: deviceId, name, version: 0, desired: {}, reported: {}, tags: {}, metadata: { desired: {}, reported: {}, tags: {} }, rejected: {}, created_at: now, updated_at: now,
});

/** Strings no database stores and no client can read back as sent: NUL (PostgreSQL refuses it) and lone surrogates. */
function unstorableString(value: unknown): string | undefined {
  const stack: unknown[] = [value];
  const bad = (s: string) => s.includes('\u0000') || !(s as string & { isWellFormed(): boolean }).isWellFormed();
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') {
      if (bad(v)) return v.slice(0, 40);
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, child] of Object.entries(v)) {
        if (bad(k)) return k.slice(0, 40);
        stack.push(child);
      }
    } else if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  }
  return undefined;
}

function invalid(message: string, details?: Record<string, unknown>): AppError {
  return new AppError('twin.invalid_update', message, details);
}

/**
 * Device twins: every device has a default twin and may have named ones. Updates are JSON merge
 * patches (RFC 7386), checked against the writer's rights and the organization's limits, applied
 * one at a time per twin (in this process; across processes the store's version check), stored
 * with their history, then told to the listeners.
 */
export class TwinService {
  private readonly cache = new Map<string, TwinState>();
  /** The update being applied to each twin: the next waits for it. */
  private readonly queues = new Map<string, Promise<unknown>>();
  /** The last write of each twin not yet stored (true once it is, false when it was not). */
  private readonly writes = new Map<string, Promise<boolean>>();
  private readonly settingsCache = new Map<string, { settings: TwinSettings; until: number }>();
  private readonly listeners = new Set<(change: TwinChanged) => void>();
  private readonly watchers = new Set<(notice: TwinNotice) => void>();
  private pruneTimer: NodeJS.Timeout | undefined;
  /** This process, in the notices it broadcasts: it hears its own from the bus too, and skips them. */
  private readonly node = randomBytes(8).toString('hex');
  private readonly fromOthers: { unsubscribe(): void } | undefined;

  constructor(
    private readonly store: TwinStore,
    private readonly devices: { get(orgId: string, id: string): Promise<unknown> },
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly options: TwinServiceOptions,
    private readonly rate: AddressLimit,
    private readonly broadcasts?: Broadcasts,
  ) {
    this.fromOthers = broadcasts && onJsonBroadcast<TwinNotice>(broadcasts, noticeTopic, (n) => {
      if (n.node === this.node) return;
      this.forget(n.deviceId, n.name);
      this.tell(n);
    });
  }

  /**
   * Watches every change to every twin, made by any process sharing the bus (this one's at once,
   * the others' as the bus brings them: best effort, so devices also catch up when they connect).
   */
  watch(watcher: (notice: TwinNotice) => void): () => void {
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }

  private tell(n: TwinNotice): void {
    for (const w of this.watchers) {
      try {
        w(n);
      } catch (e) {
        this.log.error({ err: e, deviceId: n.deviceId, twin: n.name }, 'a twin watcher failed');
      }
    }
  }

  /** Listens to every accepted change made in this process; returns the unsubscribe. */
  onChange(listener: (change: TwinChanged) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  checkName(name: string): void {
    if (name === defaultTwin) return;
    if (!twinNamePattern.test(name) || reservedTwinNames.has(name)) throw new AppError('twin.not_found', `twin names are 1 to 64 of a-z, 0-9, _ and - (starting with a letter or digit), and not ${[...reservedTwinNames].join(', ')}`);
  }

  /** The document for a reader: the delta computed, tags only for the service side. */
  view(state: TwinState, audience: Audience): TwinDocument {
    const doc: TwinDocument = {
      device_id: state.device_id,
      name: state.name,
      version: state.version,
      desired: state.desired,
      reported: state.reported,
      delta: computeDelta(state.desired, state.reported, state.rejected),
      metadata: { desired: state.metadata.desired, reported: state.metadata.reported },
      rejected: state.rejected,
    };
    if (audience === 'service') {
      doc.tags = state.tags;
      doc.metadata.tags = state.metadata.tags;
    }
    if (state.version > 0) {
      doc.created_at = state.created_at;
      doc.updated_at = state.updated_at;
    }
    return doc;
  }

  /** The twin's state; the default twin of a device is empty (version 0) until written, a named one is not found. */
  async state(orgId: string, deviceId: string, name: string, options: { trustedDevice?: boolean; creating?: boolean; cached?: boolean } = {}): Promise<TwinState> {
    const { trustedDevice = false, creating = false } = options;
    this.checkName(name);
    const key = `${deviceId}\u0000${name}`;
    // only a write takes what this process last wrote: the store refuses it if another moved on
    const cached = options.cached ? this.cache.get(key) : undefined;
    if (cached && cached.org_id === orgId) return cached;
    const stored = await this.store.get(deviceId, name);
    if (stored && stored.org_id === orgId) return this.remember(key, stored);
    if (!trustedDevice) await this.devices.get(orgId, deviceId); // device.not_found
    if (name !== defaultTwin && !creating) throw new AppError('twin.not_found', `device ${deviceId} has no twin named ${name}`);
    if (name !== defaultTwin && (await this.store.names(deviceId)).filter((t) => t.name !== defaultTwin).length >= maxTwinsPerDevice) {
      throw invalid(`a device has at most ${maxTwinsPerDevice} named twins besides the default one`);
    }
    return emptyState(orgId, deviceId, name, new Date(this.clock.now()).toISOString());
  }

  async get(orgId: string, deviceId: string, name: string, audience: Audience, trustedDevice = false): Promise<TwinDocument> {
    return this.view(await this.state(orgId, deviceId, name, { trustedDevice }), audience);
  }

  /** The organization a device is in (undefined: no such device). */
  orgOfDevice(deviceId: string): Promise<string | undefined> {
    return this.store.orgOfDevice(deviceId);
  }

  /** A device's twins: the default one always, then the named ones. */
  async list(orgId: string, deviceId: string): Promise<{ name: string; version: number; updated_at?: string }[]> {
    await this.devices.get(orgId, deviceId);
    const stored = await this.store.names(deviceId);
    return stored.some((t) => t.name === defaultTwin) ? stored : [{ name: defaultTwin, version: 0 }, ...stored];
  }

  /**
   * Applies an update. Refused whole (nothing applied) when the writer may not write a section,
   * a patch is not an object, the version moved, or a section would pass the limits. An update
   * that changes nothing makes no new version.
   */
  async update(orgId: string, deviceId: string, name: string, update: TwinUpdate, options: UpdateOptions): Promise<{ twin: TwinState; changed?: TwinChanged }> {
    this.checkName(name);
    if (options.actor.kind === 'device') {
      const wait = await this.rate.checkAddress(deviceId);
      if (wait > 0) throw new AppError('twin.rate_limited', `at most ${this.options.maxDeviceUpdates} twin updates per ${this.options.rateWindowMs / 1000} s from one device: retry in ${Math.ceil(wait / 1000)} s`, { retry_after: Math.ceil(wait / 1000) });
    }
    this.checkShape(update, options.actor);
    return this.queued(orgId, deviceId, name, update, options, 0);
  }

  /**
   * Makes the update's next version on top of the twin's newest, one update at a time per twin (in
   * this process), then waits for it to be stored outside that turn: the next update of the twin is
   * made on top of this one while it is being written, and the store keeps their order.
   */
  private async queued(orgId: string, deviceId: string, name: string, update: TwinUpdate, options: UpdateOptions, attempt: number): Promise<{ twin: TwinState; changed?: TwinChanged }> {
    const key = `${deviceId}\u0000${name}`;
    const previous = this.queues.get(key);
    const run = (previous ?? Promise.resolve()).catch(() => {}).then(async () => {
      const made = await this.prepare(orgId, deviceId, name, update, options, key);
      // a retry holds the twin until it is stored: writers that race on one twin take turns
      if (attempt > 0 && 'written' in made) await made.written.catch(() => {});
      return made;
    });
    this.queues.set(key, run);
    let prepared: Prepared;
    try {
      prepared = await run;
    } finally {
      if (this.queues.get(key) === run) this.queues.delete(key);
    }
    if (!('written' in prepared)) {
      // nothing changed: what the writer is told must be stored, so wait for the write it was made on
      if (prepared.pending && !(await prepared.pending)) return this.retry(orgId, deviceId, name, update, options, key, attempt);
      return { twin: prepared.current };
    }
    let written: boolean;
    try {
      written = await prepared.written;
    } catch (e) {
      this.cache.delete(key);
      throw e;
    }
    // another process wrote this twin since it was read (or a version this one was made on was not stored): again, on the twin as stored
    if (!written) return this.retry(orgId, deviceId, name, update, options, key, attempt);
    return { twin: prepared.next, changed: this.changed(prepared) };
  }

  private retry(orgId: string, deviceId: string, name: string, update: TwinUpdate, options: UpdateOptions, key: string, attempt: number): Promise<{ twin: TwinState; changed?: TwinChanged }> {
    this.cache.delete(key);
    if (attempt >= 5) throw new AppError('twin.version_conflict', 'the twin is being changed by many writers at once: retry');
    return this.queued(orgId, deviceId, name, update, options, attempt + 1);
  }

  private checkShape(update: TwinUpdate, actor: TwinActor): void {
    if (!isObject(update as unknown)) throw invalid('an update is a JSON object: {"desired": {…}, "reported": {…}, "tags": {…}, "rejected": {…}}');
    const sections = Object.keys(update) as (keyof TwinUpdate)[];
    if (sections.length === 0) throw invalid('the update changes nothing: give desired, reported, tags or rejected');
    for (const s of sections) {
      if (!['desired', 'reported', 'tags', 'rejected'].includes(s)) throw invalid(`unknown member ${JSON.stringify(s)}: an update has desired, reported, tags and rejected`);
      if (!writable[actor.kind].has(s)) throw new AppError('twin.forbidden_section', actor.kind === 'device' ? `a device may not write ${s}` : `${actor.kind === 'user' ? 'users and apps' : 'this writer'} may not write ${s}: it is the device's to ${s === 'rejected' ? 'refuse' : 'report'}`);
      const patch = update[s];
      if (!isObject(patch)) throw invalid(`${s} is a JSON object (a merge patch: null removes a member), not ${patch === null ? 'null' : Array.isArray(patch) ? 'an array' : `a ${typeof patch}`}`);
    }
    if (actor.kind === 'device' && update.desired && !onlyRemovals(update.desired)) throw new AppError('twin.forbidden_section', 'a device may only clear desired values (null members), not set them');
    const bad = unstorableString(update);
    if (bad !== undefined) throw invalid(`the update holds a string or key that cannot be stored (a NUL character, a lone surrogate, or a number that is not finite): ${JSON.stringify(bad)}`);
    if (update.rejected) {
      for (const [pointer, reason] of Object.entries(update.rejected)) {
        if (!pointerTokens(pointer) || pointer === '') throw invalid(`rejected keys are JSON pointers into desired, e.g. "/network/mode": ${JSON.stringify(pointer)} is not one`);
        if (reason !== null && (typeof reason !== 'string' || reason.length === 0 || reason.length > maxReasonLength)) throw invalid(`rejected ${pointer}: the reason is a string of 1 to ${maxReasonLength} characters, or null to withdraw the refusal`);
      }
    }
  }

  /** The update applied in memory and handed to the store (or nothing to write); refusals throw. */
  private async prepare(orgId: string, deviceId: string, name: string, update: TwinUpdate, options: UpdateOptions, key: string): Promise<Prepared> {
    const current = await this.state(orgId, deviceId, name, { trustedDevice: options.trustedDevice ?? false, creating: true, cached: true });
    if (options.version !== undefined && options.version !== current.version) {
      throw new AppError('twin.version_conflict', `the twin is at version ${current.version}, not ${options.version}`, { version: current.version });
    }
    const limits = await this.settings(orgId);
    const now = this.clock.now();
    const at = new Date(now).toISOString();
    const next: TwinState = { ...current, metadata: { ...current.metadata }, version: current.version + 1, updated_at: at };
    if (current.version === 0) next.created_at = at;
    const applied: JsonObject = {};
    for (const section of ['desired', 'reported', 'tags'] as const) {
      const patch = update[section];
      if (!patch) continue;
      if (jsonDepth(patch, limits.max_depth) > limits.max_depth) throw invalid(`${section} may be nested at most ${limits.max_depth} levels deep (the section itself is the first)`, { section, max_depth: limits.max_depth });
      const merged = mergePatch(current[section] as Json, patch) as JsonObject;
      const bytes = Buffer.byteLength(JSON.stringify(merged));
      if (bytes > limits.max_section_bytes) throw new AppError('twin.too_large', `${section} would be ${bytes} bytes as JSON; the limit is ${limits.max_section_bytes}`, { section, bytes, max_section_bytes: limits.max_section_bytes });
      next[section] = merged;
      next.metadata[section] = stampPatch(current.metadata[section], patch, now);
      applied[section] = patch;
    }
    let rejected = update.desired ? liveRejections(current.rejected, next.desired) : current.rejected;
    const rejectedNow: string[] = [];
    if (update.rejected) {
      rejected = { ...rejected };
      const resolved: JsonObject = {};
      for (const [pointer, reason] of Object.entries(update.rejected)) {
        if (reason === null) {
          delete rejected[pointer];
          resolved[pointer] = null;
          continue;
        }
        const value = valueAt(next.desired, pointer);
        if (value === undefined) throw invalid(`rejected ${pointer}: nothing is desired there`);
        rejected[pointer] = { reason, value, version: next.version, at: now };
        rejectedNow.push(pointer);
        resolved[pointer] = reason;
      }
      applied.rejected = resolved;
    }
    next.rejected = rejected;
    const same = next.desired === current.desired || jsonEqual(next.desired, current.desired);
    const unchanged = same && jsonEqual(next.reported, current.reported) && jsonEqual(next.tags, current.tags) && jsonEqual(next.rejected as unknown as Json, current.rejected as unknown as Json);
    if (unchanged) return { current, pending: this.writes.get(key) };
    const change: TwinChange = { version: next.version, actor: options.actor, patch: applied, at };
    const written = this.store.write(next, current.version, change);
    // the next update of this twin is made on this version (the store writes them in order)
    this.remember(key, next);
    const pending = written.catch(() => false);
    this.writes.set(key, pending);
    void pending.then(() => this.writes.get(key) === pending && this.writes.delete(key));
    const withdrawn = update.rejected !== undefined && Object.values(update.rejected).some((r) => r === null);
    return { current, next, written, applied, actor: options.actor, same, withdrawn, rejectedNow, now };
  }

  /** Tells the listeners of a stored change, here and (the notice) on every process. */
  private changed(p: Extract<Prepared, { written: Promise<boolean> }>): TwinChanged {
    const { current, next } = p;
    const changed: TwinChanged = {
      orgId: next.org_id, deviceId: next.device_id, name: next.name, version: next.version, actor: p.actor, patch: p.applied,
      previous: { desired: current.desired, reported: current.reported }, twin: next,
      delta: computeDelta(next.desired, next.reported, next.rejected),
      desiredChanged: !p.same || p.withdrawn, rejectedNow: p.rejectedNow,
    };
    for (const listener of this.listeners) {
      try {
        listener(changed);
      } catch (e) {
        this.log.error({ err: e, deviceId: next.device_id, twin: next.name }, 'a twin change listener failed');
      }
    }
    const notice: TwinNotice = {
      node: this.node, orgId: next.org_id, deviceId: next.device_id, name: next.name, version: next.version,
      ...(changed.desiredChanged ? { delta: changed.delta } : {}),
      previous: changed.previous, current: { desired: next.desired, reported: next.reported }, at: p.now,
    };
    this.tell(notice);
    this.broadcasts?.broadcast(noticeTopic, JSON.stringify(notice));
    return changed;
  }

  /** Forgets what this process holds of a twin (another process changed it). */
  forget(deviceId: string, name: string): void {
    this.cache.delete(`${deviceId}\u0000${name}`);
  }

  private remember(key: string, state: TwinState): TwinState {
    this.cache.delete(key);
    this.cache.set(key, state);
    if (this.cache.size > (this.options.cacheSize ?? 10_000)) this.cache.delete(this.cache.keys().next().value!);
    return state;
  }

  async history(orgId: string, deviceId: string, name: string, fromVersion: number, limit: number): Promise<TwinChange[]> {
    await this.state(orgId, deviceId, name);
    return this.store.history(deviceId, name, fromVersion, limit);
  }

  /** The organization's twins matching every condition (query.ts), paged. */
  async query(orgId: string, q: { where: readonly string[]; name?: string; offset: number; limit: number }, audience: Audience = 'service'): Promise<{ total: number; items: TwinDocument[] }> {
    const conditions = parseConditions(q.where);
    if (q.name !== undefined) this.checkName(q.name);
    const { total, items } = await this.store.query(orgId, q.name, conditions, q);
    return { total, items: items.map((s) => this.view(s, audience)) };
  }

  async settings(orgId: string): Promise<TwinSettings> {
    const now = this.clock.now();
    const kept = this.settingsCache.get(orgId);
    if (kept && kept.until > now) return kept.settings;
    const settings = (await this.store.settings(orgId)) ?? defaultTwinSettings;
    // other processes see a change within this long
    this.settingsCache.set(orgId, { settings, until: now + 10_000 });
    return settings;
  }

  async setSettings(orgId: string, settings: TwinSettings): Promise<TwinSettings> {
    for (const k of ['max_section_bytes', 'max_depth'] as const) {
      const { min, max } = twinSettingsBounds[k];
      if (!Number.isInteger(settings[k]) || settings[k] < min || settings[k] > max) throw new AppError('request.invalid', `${k} is an integer from ${min} to ${max}`);
    }
    await this.store.setSettings(orgId, settings, new Date(this.clock.now()).toISOString());
    this.settingsCache.set(orgId, { settings, until: this.clock.now() + 10_000 });
    return settings;
  }

  /** Prunes history older than the retention now and then. */
  start(): void {
    if (this.options.historyRetentionMs <= 0 || this.pruneTimer) return;
    const prune = () => {
      const before = new Date(this.clock.now() - this.options.historyRetentionMs).toISOString();
      this.store.pruneHistory(before).then(
        (n) => n > 0 && this.log.info({ changes: n, before }, 'pruned twin history'),
        (e: unknown) => this.log.error({ err: e }, 'pruning twin history failed'),
      );
    };
    this.pruneTimer = setInterval(prune, Math.min(3_600_000, Math.max(1000, this.options.historyRetentionMs / 10)));
    this.pruneTimer.unref();
  }

  stop(): void {
    this.fromOthers?.unsubscribe();
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    this.pruneTimer = undefined;
  }

  /** Prunes history older than the retention once, now (tests, `fleetwire` operations). */
  async pruneNow(): Promise<number> {
    return this.store.pruneHistory(new Date(this.clock.now() - this.options.historyRetentionMs).toISOString());
  }
}
