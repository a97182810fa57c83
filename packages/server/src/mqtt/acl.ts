import { checkTopicFilter, filterCovers } from './topics.js';

export type AclAction = 'publish' | 'subscribe';

export interface AclRule {
  allow: boolean;
  actions: AclAction[];
  filter: string;
  line: number;
}

export class AclError extends Error {
  override name = 'AclError';
}

/**
 * Parses an ACL file: one rule per line, `allow|deny publish|subscribe|all <topic filter>`;
 * blank lines and lines starting with `#` are comments. The first rule that applies decides;
 * nothing applies: denied.
 */
export function parseAcl(text: string): AclRule[] {
  const rules: AclRule[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^(allow|deny)\s+(publish|subscribe|all)\s+(\S+)$/.exec(line);
    if (!m) throw new AclError(`line ${i + 1}: expected "allow|deny publish|subscribe|all <topic filter>", got ${JSON.stringify(line)}`);
    const check = checkTopicFilter(m[3]!);
    if (!check.ok) throw new AclError(`line ${i + 1}: ${check.error}`);
    rules.push({ allow: m[1] === 'allow', actions: m[2] === 'all' ? ['publish', 'subscribe'] : [m[2] as AclAction], filter: m[3]!, line: i + 1 });
  });
  return rules;
}

/** Some topic is matched by both filters. */
export function filtersOverlap(a: string, b: string): boolean {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if (x[i] === '#' || y[i] === '#') return true;
    if (i >= x.length || i >= y.length) return false;
    if (x[i] !== '+' && y[i] !== '+' && x[i] !== y[i]) return false;
  }
  return true;
}

/**
 * Whether the ACL lets a client publish to `topic`: the first publish rule that matches it decides.
 * Rules match level by level: in an ACL, `#` and `+` also cover topics that start with `$` (the
 * rule that keeps those from wildcard subscribers, [MQTT-4.7.2-1], is about delivery).
 */
export function aclAllowsPublish(rules: AclRule[], topic: string): boolean {
  for (const r of rules) if (r.actions.includes('publish') && filterCovers(r.filter, topic)) return r.allow;
  return false;
}

/** An ACL's answer to a SUBSCRIBE: refused, or granted without the topics of `exclude`. */
export type AclSubscription = { allow: false } | { allow: true; exclude: string[] };

/**
 * What the ACL says to a subscription to `filter`. Rules are read in order. A rule whose filter
 * covers the whole subscription decides it. A deny rule that covers only part of it (`deny
 * subscribe a/secret` against `a/#`) does not refuse the subscription: its filter is excluded,
 * and the broker never delivers matching topics through it. An allow rule must cover the whole
 * subscription; nothing decides: refused.
 */
export function aclSubscription(rules: AclRule[], filter: string): AclSubscription {
  const exclude: string[] = [];
  for (const r of rules) {
    if (!r.actions.includes('subscribe')) continue;
    if (filterCovers(r.filter, filter)) return r.allow ? { allow: true, exclude } : { allow: false };
    if (!r.allow && filtersOverlap(r.filter, filter)) exclude.push(r.filter);
  }
  return { allow: false };
}
