/**
 * MQTT topic names and filters (MQTT 3.1.1 §4.7, MQTT 5.0 §4.7 and §4.8.2 shared subscriptions).
 */

/** Topic names and filters are UTF-8 strings of at most 65535 bytes [MQTT-4.7.3-3]. */
export const maxTopicBytes = 65535;

export type TopicCheck = { ok: true } | { ok: false; error: string };

const ok: TopicCheck = { ok: true };

/** Whether a topic filter (or a topic name, a share name) holds a wildcard character, `+` or `#` (§4.7.1). */
export function hasWildcard(topic: string): boolean {
  return topic.includes('+') || topic.includes('#');
}

/** A topic name in PUBLISH: non-empty [MQTT-4.7.3-1], no wildcards [MQTT-3.3.2-2], no U+0000 [MQTT-4.7.3-2]. */
export function checkTopicName(topic: string): TopicCheck {
  if (topic.length === 0) return { ok: false, error: 'empty topic' };
  if (hasWildcard(topic)) return { ok: false, error: 'wildcards are not allowed in a topic name' };
  if (topic.includes('\u0000')) return { ok: false, error: 'U+0000 is not allowed in a topic' };
  if (Buffer.byteLength(topic) > maxTopicBytes) return { ok: false, error: 'topic too long' };
  return ok;
}

/**
 * A topic filter in SUBSCRIBE/UNSUBSCRIBE: non-empty [MQTT-4.7.3-1]; `#` alone or last, after a
 * separator [MQTT-4.7.1-2]; `+` occupies a whole level [MQTT-4.7.1-3].
 */
export function checkTopicFilter(filter: string): TopicCheck {
  if (filter.length === 0) return { ok: false, error: 'empty topic filter' };
  if (filter.includes('\u0000')) return { ok: false, error: 'U+0000 is not allowed in a topic filter' };
  if (Buffer.byteLength(filter) > maxTopicBytes) return { ok: false, error: 'topic filter too long' };
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i]!;
    if (l.includes('#') && (l !== '#' || i !== levels.length - 1)) return { ok: false, error: '# must be the last level and alone in it' };
    if (l.includes('+') && l !== '+') return { ok: false, error: '+ must occupy a whole level' };
  }
  return ok;
}

/**
 * Whether a topic name matches a filter. Topics starting with `$` are not matched by filters
 * starting with a wildcard [MQTT-4.7.2-1].
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (filter === topic) return true;
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false;
  let fi = 0;
  let ti = 0;
  for (;;) {
    const fEnd = levelEnd(filter, fi);
    const fLength = fEnd - fi;
    if (fLength === 1 && filter.charCodeAt(fi) === 35) return true; // `#`: the rest, and the parent level too [MQTT-4.7.1-2]
    if (ti > topic.length) return false; // the topic has no level left for this one
    const tEnd = levelEnd(topic, ti);
    const plus = fLength === 1 && filter.charCodeAt(fi) === 43;
    if (!plus && (fLength !== tEnd - ti || !topic.startsWith(filter.slice(fi, fEnd), ti))) return false;
    if (fEnd === filter.length) return tEnd === topic.length;
    fi = fEnd + 1;
    ti = tEnd + 1;
  }
}

/** Where the level starting at `from` ends: the next `/`, or the end of the string. */
function levelEnd(s: string, from: number): number {
  const i = s.indexOf('/', from);
  return i < 0 ? s.length : i;
}

/**
 * Every topic that `inner` matches is also matched by `outer`; with a topic name as `inner`: the
 * topic matches `outer`. Level by level only, without the `$` rule of `topicMatches`: for access
 * rules, which decide what a client may do, not what a subscription receives.
 */
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

export interface SharedFilter {
  group: string;
  filter: string;
}

/** `$share/<group>/<filter>` (MQTT 5.0 §4.8.2): the group is non-empty without `/`, `+`, `#` [MQTT-4.8.2-2]. */
export function parseSharedFilter(filter: string): SharedFilter | undefined | { error: string } {
  if (!filter.startsWith('$share/')) return undefined;
  const rest = filter.slice('$share/'.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return { error: 'a shared subscription needs $share/<group>/<filter>' };
  const group = rest.slice(0, slash);
  if (hasWildcard(group)) return { error: 'the share name may not contain wildcards' };
  const inner = rest.slice(slash + 1);
  if (inner.length === 0) return { error: 'a shared subscription needs a topic filter' };
  return { group, filter: inner };
}
