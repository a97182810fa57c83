import type { Session } from './session.js';
import { TopicTrie } from './topic-trie.js';
import { filterCovers, hasWildcard } from './topics.js';
import type { SubscriptionOptions } from './types.js';

/** What one session gets for one message: the best of all its matching subscriptions (§3.3.4). */
export interface Delivery {
  session: Session;
  qos: 0 | 1 | 2;
  retainAsPublished: boolean;
  subscriptionIds: number[] | undefined;
}

interface Group {
  members: Map<Session, SubscriptionOptions>;
  /** Round-robin position. */
  next: number;
}

/** The policy refused `topic` inside this subscription (SubscriptionOptions.exclude): it is not delivered through it. */
export function excluded(o: SubscriptionOptions, topic: string): boolean {
  return o.exclude !== undefined && o.exclude.some((f) => filterCovers(f, topic));
}

/**
 * Which sessions subscribe to what. Exact filters are a map lookup; wildcard filters and shared
 * subscriptions (`$share/<group>/<filter>`, each message to one member of each group, MQTT 5.0
 * §4.8.2) are held in topic trees: matching a topic costs its levels and the branches that can
 * match it, the same for 10 subscriptions as for 100,000.
 */
export class SubscriptionIndex {
  private readonly exact = new Map<string, Map<Session, SubscriptionOptions>>();
  private readonly wildcard = new TopicTrie<Map<Session, SubscriptionOptions>>();
  private readonly shared = new TopicTrie<Map<string, Group>>();

  add(session: Session, filter: string, opts: SubscriptionOptions, group?: string): void {
    if (group !== undefined) {
      let groups = this.shared.get(filter);
      if (!groups) this.shared.set(filter, (groups = new Map()));
      let g = groups.get(group);
      if (!g) groups.set(group, (g = { members: new Map(), next: 0 }));
      g.members.set(session, opts);
      return;
    }
    if (hasWildcard(filter)) {
      let subs = this.wildcard.get(filter);
      if (!subs) this.wildcard.set(filter, (subs = new Map()));
      subs.set(session, opts);
      return;
    }
    let subs = this.exact.get(filter);
    if (!subs) this.exact.set(filter, (subs = new Map()));
    subs.set(session, opts);
  }

  remove(session: Session, filter: string, group?: string): void {
    if (group !== undefined) {
      const groups = this.shared.get(filter);
      const g = groups?.get(group);
      if (!g) return;
      g.members.delete(session);
      if (g.members.size === 0) groups!.delete(group);
      if (groups!.size === 0) this.shared.delete(filter);
      return;
    }
    const wildcard = hasWildcard(filter);
    const subs = wildcard ? this.wildcard.get(filter) : this.exact.get(filter);
    if (!subs) return;
    subs.delete(session);
    if (subs.size > 0) return;
    if (wildcard) this.wildcard.delete(filter);
    else this.exact.delete(filter);
  }

  /** Whether any session subscribes to this filter outside share groups. */
  hasPlain(filter: string): boolean {
    return this.exact.has(filter) || this.wildcard.has(filter);
  }

  hasGroup(filter: string, group: string): boolean {
    return this.shared.get(filter)?.has(group) ?? false;
  }

  /** The member of one share group that gets the next message (§4.8.2). */
  matchGroup(filter: string, group: string, qos: 0 | 1 | 2): Delivery | undefined {
    const g = this.shared.get(filter)?.get(group);
    const pick = g ? pickMember(g) : undefined;
    if (!pick) return undefined;
    const [s, o] = pick;
    return { session: s, qos: Math.min(qos, o.qos) as 0 | 1 | 2, retainAsPublished: o.retainAsPublished, subscriptionIds: o.subscriptionId ? [o.subscriptionId] : undefined };
  }

  /** Every delivery a message on `topic` makes, at most one per session; share groups only with `includeShared`. */
  match(topic: string, origin: string | undefined, qos: 0 | 1 | 2, includeShared = true): Delivery[] {
    const out = new Map<Session, Delivery>();
    const consider = (session: Session, o: SubscriptionOptions) => {
      if (o.noLocal && origin !== undefined && session.clientId === origin) return; // [MQTT-3.8.3-3]
      if (o.exclude && excluded(o, topic)) return;
      const granted = Math.min(qos, o.qos) as 0 | 1 | 2;
      const d = out.get(session);
      if (!d) {
        out.set(session, { session, qos: granted, retainAsPublished: o.retainAsPublished, subscriptionIds: o.subscriptionId ? [o.subscriptionId] : undefined });
        return;
      }
      if (granted > d.qos) d.qos = granted;
      d.retainAsPublished ||= o.retainAsPublished;
      if (o.subscriptionId) (d.subscriptionIds ??= []).push(o.subscriptionId);
    };
    const exact = this.exact.get(topic);
    if (exact) for (const [s, o] of exact) consider(s, o);
    if (this.wildcard.size > 0) {
      this.wildcard.matchTopic(topic, (subs) => {
        for (const [s, o] of subs) consider(s, o);
      });
    }
    const result = [...out.values()];
    if (!includeShared || this.shared.size === 0) return result;
    this.shared.matchTopic(topic, (groups) => {
      for (const g of groups.values()) {
        const pick = pickMember(g);
        if (!pick) continue;
        const [s, o] = pick;
        if (o.exclude && excluded(o, topic)) continue;
        // [MQTT-3.8.3-4]: No Local is a protocol error on shared subscriptions, so it is never set here
        result.push({ session: s, qos: Math.min(qos, o.qos) as 0 | 1 | 2, retainAsPublished: o.retainAsPublished, subscriptionIds: o.subscriptionId ? [o.subscriptionId] : undefined });
      }
    });
    return result;
  }
}

/** The next member of a share group, preferring connected sessions. */
function pickMember(g: Group): [Session, SubscriptionOptions] | undefined {
  const members = [...g.members];
  if (members.length === 0) return undefined;
  for (let i = 0; i < members.length; i++) {
    const m = members[(g.next + i) % members.length]!;
    if (m[0].connected) {
      g.next = (g.next + i + 1) % members.length;
      return m;
    }
  }
  const m = members[g.next % members.length]!;
  g.next = (g.next + 1) % members.length;
  return m;
}
