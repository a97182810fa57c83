import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import type { Database } from '../db/index.js';
import { onJsonBroadcast, type Broadcasts } from '../core/broadcast.js';

export const sessionsTopic = 'sessions';

type Event = { t: 'ended'; ids: string[] } | { t: 'user'; id: string };

/** Entries the cache keeps at most; past it, it starts again from empty (a cheap bound, not an LRU). */
const maxCached = 50_000;

/**
 * Login sessions. A login starts one; its refresh tokens share its id as their family and its
 * access tokens carry it as `sid`. Ending it (logout, refresh-token reuse, password change, sign-out
 * everywhere) makes every one of them fail: each access token is checked against the database, with
 * a cache of at most `cacheMs` per session that every process on the bus drops at once when a
 * session ends. A lost broadcast delays the refusal in another process by `cacheMs` at most.
 */
/** Sessions that ended, as every process hears of it: these ids, or every login session of a user. */
export type SessionsEnded = { sessionIds: string[] } | { userId: string };

export class SessionRegistry {
  private readonly cache = new Map<string, { userId: string; until: number }>();
  private readonly sub;
  private readonly listeners = new Set<(e: SessionsEnded) => void>();

  constructor(
    private readonly db: Database,
    private readonly bus: Broadcasts,
    private readonly clock: Clock,
    private readonly cacheMs: number,
  ) {
    this.sub = onJsonBroadcast<Event>(bus, sessionsTopic, (e) => {
      let ended: SessionsEnded | undefined;
      if (e.t === 'ended' && Array.isArray(e.ids)) {
        for (const id of e.ids) this.cache.delete(String(id));
        ended = { sessionIds: e.ids.map(String) };
      } else if (e.t === 'user') {
        this.forgetUser(String(e.id));
        ended = { userId: String(e.id) };
      }
      if (ended) for (const l of this.listeners) l(ended);
    });
  }

  /**
   * Tells `listener` of every session that ends, in this process or another on the bus, so that
   * transports close what was opened with its access tokens (a WebSocket). Returns the unsubscribe.
   */
  onEnded(listener: (e: SessionsEnded) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async start(id: string, userId: string): Promise<void> {
    await this.db.kysely.insertInto('auth_sessions').values({ id, user_id: userId, created_at: iso(this.clock.now()), ended_at: null }).onConflict((oc) => oc.column('id').doNothing()).execute();
  }

  /** True while the session of `userId` has not ended. */
  async isLive(id: string, userId: string): Promise<boolean> {
    const now = this.clock.now();
    const hit = this.cache.get(id);
    if (hit && hit.userId === userId && hit.until > now) return true;
    const row = await this.db.kysely.selectFrom('auth_sessions').select(['user_id', 'ended_at']).where('id', '=', id).executeTakeFirst();
    const live = row !== undefined && row.user_id === userId && row.ended_at === null;
    if (live && this.cacheMs > 0) {
      if (this.cache.size >= maxCached) this.cache.clear();
      this.cache.set(id, { userId, until: now + this.cacheMs });
    } else {
      this.cache.delete(id);
    }
    return live;
  }

  async end(id: string): Promise<void> {
    await this.db.kysely.updateTable('auth_sessions').set({ ended_at: iso(this.clock.now()) }).where('id', '=', id).where('ended_at', 'is', null).execute();
    // Local first: this process never answers from its cache after its own change.
    this.cache.delete(id);
    this.bus.broadcast(sessionsTopic, JSON.stringify({ t: 'ended', ids: [id] } satisfies Event));
  }

  async endAllOf(userId: string): Promise<void> {
    await this.db.kysely.updateTable('auth_sessions').set({ ended_at: iso(this.clock.now()) }).where('user_id', '=', userId).where('ended_at', 'is', null).execute();
    this.forgetUser(userId);
    this.bus.broadcast(sessionsTopic, JSON.stringify({ t: 'user', id: userId } satisfies Event));
  }

  stop(): void {
    this.sub.unsubscribe();
  }

  private forgetUser(userId: string): void {
    for (const [id, e] of this.cache) if (e.userId === userId) this.cache.delete(id);
  }
}
