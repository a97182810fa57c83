/**
 * A device's twin over MQTT (docs/twins.md): read it, report state, and be told what the operator
 * wants. Topics: `devices/<id>/twin[/<name>]/get` and `…/update`, with the platform's replies on
 * `…/get/accepted|rejected` and `…/update/accepted|rejected`, and the delta on `…/update/delta`.
 *
 * The catch-up is built in: the platform sends the current delta whenever the device connects or
 * subscribes, and `onDelta` handlers are called in version order, never with a version older than
 * one they were given (a live delta and the catch-up may cross on the wire).
 */
import { randomBytes } from 'node:crypto';
import type { FleetwireDevice, QoS } from './device.js';
import { FleetwireError, type PlatformErrorCode } from './errors.js';

/** The twin as the device sees it (tags are the service side's only). */
export interface TwinDocument {
  device_id: string;
  name: string;
  version: number;
  desired: Record<string, unknown>;
  reported: Record<string, unknown>;
  delta: Record<string, unknown>;
  metadata: { desired: Record<string, unknown>; reported: Record<string, unknown> };
  rejected: Record<string, { reason: string; value: unknown; version: number; at: number }>;
  created_at?: string;
  updated_at?: string;
}

export interface TwinUpdateResult {
  version: number;
  /** What desired still asks that reported lacks, after this update. */
  delta: Record<string, unknown>;
}

export interface TwinDelta {
  version: number;
  /** What desired asks that reported does not have yet. */
  state: Record<string, unknown>;
}

export type DeltaHandler = (delta: TwinDelta) => void | Promise<void>;

export interface TwinOptions {
  /** How long a get or an update waits for the platform's reply, ms (default 10 000). */
  timeoutMs?: number;
}

/** A refusal of a twin request by the platform: its stable code, e.g. `twin.version_conflict` (with the twin's current `version`). */
export class TwinRefusedError extends FleetwireError {
  override readonly name = 'TwinRefusedError';
  constructor(
    code: PlatformErrorCode,
    detail: string,
    /** The twin's version now, on a version conflict. */
    readonly version: number | undefined,
  ) {
    super(code, `the platform refused the twin request: ${code}: ${detail}`);
  }
}

interface Pending {
  resolve(body: Record<string, unknown>): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

const defaultTwin = 'default';

/** One twin of a connected device: `device.twin()` for the default one, `device.twin('config')` for a named one. */
export class DeviceTwin {
  private readonly base: string;
  private readonly pending = new Map<string, Pending>();
  private readonly handlers = new Set<DeltaHandler>();
  /** The newest delta version given to the handlers: none older is. */
  private lastVersion = -1;
  private subscribed: Promise<{ unsubscribe(): Promise<void> }> | undefined;
  private readonly timeoutMs: number;
  /** Deltas are handed over one at a time, in arrival order (a slow handler holds the next). */
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly device: FleetwireDevice,
    deviceId: string,
    readonly name: string = defaultTwin,
    options: TwinOptions = {},
  ) {
    if (name !== defaultTwin && !/^[a-z0-9][a-z0-9_-]{0,63}$/.test(name)) throw new FleetwireError('invalid_options', `twin names are 1 to 64 of a-z, 0-9, _ and -: ${JSON.stringify(name)}`);
    this.base = ['devices', deviceId, 'twin', ...(name === defaultTwin ? [] : [name])].join('/');
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** The twin now. */
  async get(): Promise<TwinDocument> {
    return (await this.request('get', {})) as unknown as TwinDocument;
  }

  /**
   * Reports state (a JSON merge patch of `reported`: `null` removes a member). With `version`,
   * refused (TwinRefusedError `twin.version_conflict`) when the twin moved past it.
   */
  async report(reported: Record<string, unknown>, options: { version?: number } = {}): Promise<TwinUpdateResult> {
    return this.update({ reported }, options);
  }

  /** Declares a desired value the device cannot apply (by JSON pointer into desired, e.g. `/mode`): it leaves the delta until desired changes there. */
  async reject(pointer: string, reason: string): Promise<TwinUpdateResult> {
    return this.update({ rejected: { [pointer]: reason } });
  }

  /** Clears desired members the device is done with (a merge patch of nulls, e.g. `{ ota: null }`). */
  async clearDesired(removals: Record<string, unknown>): Promise<TwinUpdateResult> {
    return this.update({ desired: removals });
  }

  /** Any device-side update: `reported`, `rejected` (pointer → reason, or null to withdraw) and desired removals together, applied whole or not at all. */
  async update(update: { reported?: Record<string, unknown>; rejected?: Record<string, string | null>; desired?: Record<string, unknown> }, options: { version?: number } = {}): Promise<TwinUpdateResult> {
    const body = await this.request('update', { ...update, ...(options.version !== undefined ? { version: options.version } : {}) });
    return { version: body.version as number, delta: (body.delta ?? {}) as Record<string, unknown> };
  }

  /**
   * Calls `handler` with each delta: at once with the current one when there is one (the
   * platform's catch-up), then with each newer version, on every connection. Resolves once the
   * platform granted the subscription (connected) or at once (offline).
   */
  async onDelta(handler: DeltaHandler): Promise<() => void> {
    this.handlers.add(handler);
    await this.listen();
    return () => void this.handlers.delete(handler);
  }

  /** Stops listening: pending requests are refused with `closed`. */
  async close(): Promise<void> {
    for (const [token, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new FleetwireError('closed', 'the twin client was closed'));
      this.pending.delete(token);
    }
    this.handlers.clear();
    const sub = await this.subscribed?.catch(() => undefined);
    this.subscribed = undefined;
    await sub?.unsubscribe();
  }

  private listen(): Promise<{ unsubscribe(): Promise<void> }> {
    this.subscribed ??= this.device.subscribeTopic(`${this.base}/+/+`, (topic, payload) => this.received(topic, payload), 1 as QoS);
    return this.subscribed;
  }

  private async request(operation: 'get' | 'update', body: Record<string, unknown>): Promise<Record<string, unknown>> {
    await this.listen();
    const token = randomBytes(12).toString('base64url');
    const answer = new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(token);
        reject(new FleetwireError('platform_unreachable', `no reply to the twin ${operation} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      timer.unref();
      this.pending.set(token, { resolve, reject, timer });
    });
    try {
      await this.device.publishTopic(`${this.base}/${operation}`, Buffer.from(JSON.stringify({ ...body, client_token: token })));
    } catch (e) {
      const p = this.pending.get(token);
      if (p) {
        clearTimeout(p.timer);
        this.pending.delete(token);
      }
      throw e;
    }
    return answer;
  }

  private received(topic: string, payload: Buffer): void {
    const tail = topic.slice(this.base.length + 1);
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
    } catch {
      return;
    }
    if (tail === 'update/delta') return this.delta(body);
    if (tail === 'update/documents') return;
    const token = typeof body.client_token === 'string' ? body.client_token : undefined;
    const p = token === undefined ? undefined : this.pending.get(token);
    if (!p) return; // another connection's request, or one that timed out
    this.pending.delete(token!);
    clearTimeout(p.timer);
    if (tail.endsWith('/accepted')) {
      const { client_token: _token, ...rest } = body;
      p.resolve(rest);
    } else p.reject(new TwinRefusedError(String(body.code ?? 'twin.refused') as PlatformErrorCode, String(body.message ?? ''), typeof body.version === 'number' ? body.version : undefined));
  }

  private delta(body: Record<string, unknown>): void {
    const version = body.version;
    if (typeof version !== 'number' || typeof body.state !== 'object' || body.state === null) return;
    // never an older version after a newer one: the catch-up and a live delta may cross
    if (version <= this.lastVersion) return;
    this.lastVersion = version;
    const delta: TwinDelta = { version, state: body.state as Record<string, unknown> };
    this.chain = this.chain.then(async () => {
      for (const h of this.handlers) {
        try {
          await h(delta);
        } catch (e) {
          if (this.device.listenerCount('error') > 0) this.device.emit('error', e instanceof Error ? e : new Error(String(e)));
        }
      }
    });
  }
}
