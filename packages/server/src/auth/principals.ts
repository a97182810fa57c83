import { onJsonBroadcast, type Broadcasts } from '../core/broadcast.js';
import type { Clock } from '../core/clock.js';

export const principalsTopic = 'principals';

type Event = { t: 'user'; id: string } | { t: 'org'; id: string };

/** Entries each map keeps at most; past it, it starts again from empty (a cheap bound, not an LRU). */
const maxCached = 50_000;

/**
 * What every API request reads about its caller: the user behind the token and the user's role in
 * the organization of the route. Each is kept for `cacheMs` at most (FLEETWIRE_SESSION_CHECK_CACHE,
 * as the session check), only while it allows something (a refusal is always read afresh), and
 * dropped by every process on the bus at once when it changes (a user changed or deleted, a
 * membership added, changed or removed, an organization deleted). A lost broadcast delays the
 * change in another process by `cacheMs` at most. With `cacheMs` 0 every request reads the database.
 */
export class PrincipalCache<U, R> {
  private readonly users = new Map<string, { value: U; until: number }>();
  private readonly roles = new Map<string, { orgId: string; userId: string; value: R; until: number }>();
  private readonly sub;

  constructor(
    private readonly bus: Broadcasts,
    private readonly clock: Clock,
    private readonly cacheMs: number,
  ) {
    this.sub = onJsonBroadcast<Event>(bus, principalsTopic, (e) => {
      if (e.t === 'user') this.forgetUser(String(e.id));
      else if (e.t === 'org') this.forgetOrg(String(e.id));
    });
  }

  /** The user, from the cache or `load` (kept when it found one). */
  user(id: string, load: () => Promise<U | undefined>): Promise<U | undefined> {
    return this.kept(this.users, id, load, {});
  }

  /** The user's role in the organization, from the cache or `load` (kept when there is one). */
  role(orgId: string, userId: string, load: () => Promise<R | undefined>): Promise<R | undefined> {
    return this.kept(this.roles, `${orgId}\u0000${userId}`, load, { orgId, userId });
  }

  private async kept<V, E extends object>(map: Map<string, E & { value: V; until: number }>, key: string, load: () => Promise<V | undefined>, entry: E): Promise<V | undefined> {
    const now = this.clock.now();
    const hit = map.get(key);
    if (hit && hit.until > now) return hit.value;
    const value = await load();
    if (value !== undefined && this.cacheMs > 0) {
      if (map.size >= maxCached) map.clear();
      map.set(key, { ...entry, value, until: now + this.cacheMs });
    } else map.delete(key);
    return value;
  }

  /** The user changed or is gone (with their memberships): every process reads them again. */
  userChanged(id: string): void {
    // local first: this process never answers from its cache after its own change
    this.forgetUser(id);
    this.bus.broadcast(principalsTopic, JSON.stringify({ t: 'user', id } satisfies Event));
  }

  /** A membership of the organization changed, or the organization is gone. */
  orgChanged(id: string): void {
    this.forgetOrg(id);
    this.bus.broadcast(principalsTopic, JSON.stringify({ t: 'org', id } satisfies Event));
  }

  stop(): void {
    this.sub.unsubscribe();
  }

  private forgetUser(id: string): void {
    this.users.delete(id);
    for (const [k, e] of this.roles) if (e.userId === id) this.roles.delete(k);
  }

  private forgetOrg(id: string): void {
    for (const [k, e] of this.roles) if (e.orgId === id) this.roles.delete(k);
  }
}
