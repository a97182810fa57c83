// test-database: none
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TopicTrie } from './topic-trie.js';
import { topicMatches } from './topics.js';
import { random, randomFilter, randomTopic } from '../../test/helpers/topics.js';

const sorted = (xs: Iterable<string>) => [...xs].sort();

test('filters found for a topic are exactly those topicMatches accepts (random filters and topics)', () => {
  for (let seed = 1; seed <= 50; seed++) {
    const r = random(seed);
    const trie = new TopicTrie<string>();
    const filters = new Set<string>();
    for (let i = 0; i < 60; i++) {
      const f = randomFilter(r);
      filters.add(f);
      trie.set(f, f);
    }
    // some removed again: pruning must keep the others reachable
    for (const f of [...filters]) {
      if (r() < 0.3) {
        assert.equal(trie.delete(f), true);
        filters.delete(f);
      }
    }
    assert.equal(trie.size, filters.size);
    for (let i = 0; i < 200; i++) {
      const topic = randomTopic(r);
      const found: string[] = [];
      trie.matchTopic(topic, (f) => found.push(f));
      const expected = [...filters].filter((f) => topicMatches(f, topic));
      assert.deepEqual(sorted(found), sorted(expected), `seed ${seed}, topic ${JSON.stringify(topic)}`);
    }
  }
});

test('topics found for a filter are exactly those topicMatches accepts (random filters and topics)', () => {
  for (let seed = 1; seed <= 50; seed++) {
    const r = random(1000 + seed);
    const trie = new TopicTrie<string>();
    const topics = new Set<string>();
    for (let i = 0; i < 80; i++) {
      const t = randomTopic(r);
      topics.add(t);
      trie.set(t, t);
    }
    for (const t of [...topics]) {
      if (r() < 0.3) {
        trie.delete(t);
        topics.delete(t);
      }
    }
    for (let i = 0; i < 200; i++) {
      const filter = randomFilter(r);
      const found: string[] = [];
      trie.matchFilter(filter, (t) => found.push(t));
      const expected = [...topics].filter((t) => topicMatches(filter, t));
      assert.deepEqual(sorted(found), sorted(expected), `seed ${seed}, filter ${JSON.stringify(filter)}`);
    }
  }
});

test('the MQTT §4.7 examples match in both directions', () => {
  const cases: [string, string, boolean][] = [
    ['sport/tennis/player1/#', 'sport/tennis/player1', true],
    ['sport/tennis/player1/#', 'sport/tennis/player1/score/wimbledon', true],
    ['sport/#', 'sport', true],
    ['#', 'anything/at/all', true],
    ['sport/tennis/+', 'sport/tennis/player1/ranking', false],
    ['sport/+', 'sport', false],
    ['sport/+', 'sport/', true],
    ['+/+', '/finance', true],
    ['+', '/finance', false],
    ['+/monitor/Clients', '$SYS/monitor/Clients', false],
    ['#', '$SYS/x', false],
    ['$SYS/#', '$SYS/x', true],
    ['$SYS/#', '$SYS', true],
    ['a/+/c', 'a//c', true],
    ['a/b/#', 'a', false],
  ];
  for (const [filter, topic, expected] of cases) {
    const filters = new TopicTrie<string>();
    filters.set(filter, filter);
    let hit = false;
    filters.matchTopic(topic, () => (hit = true));
    assert.equal(hit, expected, `filter tree: ${filter} ~ ${topic}`);
    const topics = new TopicTrie<string>();
    topics.set(topic, topic);
    hit = false;
    topics.matchFilter(filter, () => (hit = true));
    assert.equal(hit, expected, `topic tree: ${filter} ~ ${topic}`);
  }
});

test('set replaces, delete prunes, and get finds only what was set', () => {
  const t = new TopicTrie<number>();
  t.set('a/+/c', 1);
  t.set('a/+/c', 2);
  t.set('a/+', 3);
  assert.equal(t.size, 2);
  assert.equal(t.get('a/+/c'), 2);
  assert.equal(t.get('a/b/c'), undefined); // a lookup is literal: `+` in a key is the `+` level only
  assert.equal(t.get('a'), undefined);
  assert.equal(t.delete('a/+/c'), true);
  assert.equal(t.delete('a/+/c'), false);
  assert.equal(t.get('a/+'), 3);
  assert.equal(t.delete('a/+'), true);
  assert.equal(t.size, 0);
  const found: number[] = [];
  t.matchTopic('a/b', (v) => found.push(v));
  assert.deepEqual(found, []);
});

test('a topic of 30,000 levels is matched without exhausting the call stack', () => {
  const deep = Array.from({ length: 30_000 }, () => 'a').join('/');
  const filters = new TopicTrie<string>();
  filters.set(deep, 'deep');
  filters.set(`${deep}/#`, 'deep/#');
  filters.set('#', '#');
  const found: string[] = [];
  filters.matchTopic(deep, (f) => found.push(f));
  assert.deepEqual(sorted(found), ['#', 'deep', 'deep/#']);
  const topics = new TopicTrie<string>();
  topics.set(deep, 'deep');
  const hits: string[] = [];
  topics.matchFilter('#', (t) => hits.push(t));
  topics.matchFilter(deep.replace(/a$/, '+'), (t) => hits.push(t));
  assert.deepEqual(hits, ['deep', 'deep']);
  assert.equal(topics.delete(deep), true);
});
