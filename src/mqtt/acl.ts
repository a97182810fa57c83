import { checkTopicFilter, topicMatches } from './topics.js';

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

/** Every topic that `inner` matches is matched by `outer`. */
export function filterCovers(outer: string, inner: string): boolean {
  const o = outer.split('/');
  const n = inner.split('/');
  for (let i = 0; i < o.length; i++) {
    if (o[i] === '#') return true;
    if (i >= n.length) return false;
    if (n[i] === '#') return false;
    if (o[i] !== '+' && o[i] !== n[i]) return false;
  }
  return o.length === n.length;
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

export function aclAllows(rules: AclRule[], action: AclAction, topicOrFilter: string): boolean {
  for (const r of rules) {
    if (!r.actions.includes(action)) continue;
    const applies = action === 'publish' ? topicMatches(r.filter, topicOrFilter) : r.allow ? filterCovers(r.filter, topicOrFilter) : filtersOverlap(r.filter, topicOrFilter);
    if (applies) return r.allow;
  }
  return false;
}
