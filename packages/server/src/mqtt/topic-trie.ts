/**
 * A tree of topic levels (MQTT §4.7): one node per level, so that matching a topic costs the
 * levels it has and the branches that can match it, not the number of entries held. Keys are
 * topic filters (subscriptions, `matchTopic`) or topic names (retained messages, `matchFilter`).
 * Walks use an explicit stack: a topic may have 32,768 levels, more than the call stack takes.
 */

interface TrieNode<V> {
  value: V | undefined;
  /** Literal next levels. */
  children: Map<string, TrieNode<V>> | undefined;
  /** The `+` next level (filters only). */
  plus: TrieNode<V> | undefined;
  /** The `#` next level (filters only): always the last one [MQTT-4.7.1-2]. */
  hash: TrieNode<V> | undefined;
  parent: TrieNode<V> | undefined;
  /** The level that leads here from the parent. */
  level: string;
}

function node<V>(parent: TrieNode<V> | undefined, level: string): TrieNode<V> {
  return { value: undefined, children: undefined, plus: undefined, hash: undefined, parent, level };
}

function isEmpty(n: TrieNode<unknown>): boolean {
  return n.value === undefined && n.plus === undefined && n.hash === undefined && (n.children === undefined || n.children.size === 0);
}

/** Whether a level starts with `$`: wildcards in a filter's first level do not match it [MQTT-4.7.2-1]. */
function isDollar(level: string): boolean {
  return level.charCodeAt(0) === 36;
}

export class TopicTrie<V> {
  private readonly root: TrieNode<V> = node(undefined, '');
  private count = 0;

  /** Entries held. */
  get size(): number {
    return this.count;
  }

  get(key: string): V | undefined {
    return this.find(key)?.value;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  set(key: string, value: V): void {
    let n = this.root;
    for (const level of key.split('/')) {
      if (level === '+') n = n.plus ??= node(n, level);
      else if (level === '#') n = n.hash ??= node(n, level);
      else {
        const children = (n.children ??= new Map());
        let c = children.get(level);
        if (!c) children.set(level, (c = node(n, level)));
        n = c;
      }
    }
    if (n.value === undefined) this.count++;
    n.value = value;
  }

  /** Removes the entry and the levels that lead only to it. */
  delete(key: string): boolean {
    let n = this.find(key);
    if (n?.value === undefined) return false;
    n.value = undefined;
    this.count--;
    while (n.parent && isEmpty(n)) {
      const p: TrieNode<V> = n.parent;
      if (p.plus === n) p.plus = undefined;
      else if (p.hash === n) p.hash = undefined;
      else p.children!.delete(n.level);
      n = p;
    }
    return true;
  }

  private find(key: string): TrieNode<V> | undefined {
    let n: TrieNode<V> | undefined = this.root;
    for (const level of key.split('/')) {
      if (level === '+') n = n.plus;
      else if (level === '#') n = n.hash;
      else n = n.children?.get(level);
      if (!n) return undefined;
    }
    return n;
  }

  /** Calls `visit` with the value of every filter held that matches the topic name (`topicMatches` in topics.ts). */
  matchTopic(topic: string, visit: (value: V) => void): void {
    const levels = topic.split('/');
    const dollar = isDollar(levels[0]!);
    const nodes: TrieNode<V>[] = [this.root];
    const depths: number[] = [0];
    while (nodes.length > 0) {
      const n = nodes.pop()!;
      const i = depths.pop()!;
      const wild = i > 0 || !dollar; // [MQTT-4.7.2-1]
      // `#` matches the rest, none included: `a/#` matches `a` [MQTT-4.7.1-2]
      if (wild && n.hash?.value !== undefined) visit(n.hash.value);
      if (i === levels.length) {
        if (n.value !== undefined) visit(n.value);
        continue;
      }
      const c = n.children?.get(levels[i]!);
      if (c) {
        nodes.push(c);
        depths.push(i + 1);
      }
      if (wild && n.plus) {
        nodes.push(n.plus);
        depths.push(i + 1);
      }
    }
  }

  /** Calls `visit` with the value of every topic name held that the filter matches (`topicMatches` in topics.ts). */
  matchFilter(filter: string, visit: (value: V) => void): void {
    const levels = filter.split('/');
    const nodes: TrieNode<V>[] = [this.root];
    const depths: number[] = [0];
    while (nodes.length > 0) {
      const n = nodes.pop()!;
      const i = depths.pop()!;
      if (i === levels.length) {
        if (n.value !== undefined) visit(n.value);
        continue;
      }
      const level = levels[i]!;
      if (level === '#') {
        // this level (`a/#` matches `a`, [MQTT-4.7.1-2]) and everything below it
        if (n.value !== undefined) visit(n.value);
        this.visitBelow(n, i === 0, visit);
      } else if (level === '+') {
        if (n.children) {
          for (const c of n.children.values()) {
            if (i === 0 && isDollar(c.level)) continue; // [MQTT-4.7.2-1]
            nodes.push(c);
            depths.push(i + 1);
          }
        }
      } else {
        const c = n.children?.get(level);
        if (c) {
          nodes.push(c);
          depths.push(i + 1);
        }
      }
    }
  }

  /** Every value below `from` (not its own), without `$` first levels when `from` is the root. */
  private visitBelow(from: TrieNode<V>, atRoot: boolean, visit: (value: V) => void): void {
    const stack: TrieNode<V>[] = [];
    const push = (n: TrieNode<V>, skipDollar: boolean) => {
      if (n.children) for (const c of n.children.values()) if (!skipDollar || !isDollar(c.level)) stack.push(c);
    };
    push(from, atRoot);
    while (stack.length > 0) {
      const n = stack.pop()!;
      if (n.value !== undefined) visit(n.value);
      push(n, false);
    }
  }
}
