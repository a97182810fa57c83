// test-database: none
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Session } from './session.js';
import { SubscriptionIndex, type Delivery } from './subscriptions.js';
import { filterCovers, topicMatches } from './topics.js';
import type { SubscriptionOptions } from './types.js';
import { random, randomFilter, randomTopic } from '../../test/helpers/topics.js';

/** The index reads only a session's client id and whether it is connected. */
function session(clientId: string, connected = true): Session {
  return { clientId, connected } as unknown as Session;
}

function options(o: Partial<SubscriptionOptions> = {}): SubscriptionOptions {
  return { qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, ...o };
}

/** A delivery as comparable text: session, QoS, retain-as-published, sorted subscription ids. */
function describe(d: Delivery): string {
  return `${d.session.clientId} q${d.qos} rap=${d.retainAsPublished} ids=${[...(d.subscriptionIds ?? [])].sort((a, b) => a - b).join(',')}`;
}

test('deliveries equal a brute-force topicMatches scan of every subscription (random filters, topics and options)', () => {
  for (let seed = 1; seed <= 40; seed++) {
    const r = random(seed);
    const index = new SubscriptionIndex();
    const sessions = Array.from({ length: 6 }, (_, i) => session(`c${i}`));
    // what the index was told, kept by session and filter as the broker keeps it
    const held = new Map<Session, Map<string, SubscriptionOptions>>();
    for (let i = 0; i < 80; i++) {
      const s = sessions[Math.floor(r() * sessions.length)]!;
      const filter = randomFilter(r);
      const o = options({
        qos: Math.floor(r() * 3) as 0 | 1 | 2,
        noLocal: r() < 0.2,
        retainAsPublished: r() < 0.3,
        ...(r() < 0.5 ? { subscriptionId: 1 + i } : {}),
        ...(r() < 0.15 ? { exclude: [randomFilter(r)] } : {}),
      });
      index.add(s, filter, o);
      let mine = held.get(s);
      if (!mine) held.set(s, (mine = new Map()));
      mine.set(filter, o);
    }
    for (const [s, mine] of held) {
      for (const filter of [...mine.keys()]) {
        if (r() < 0.25) {
          index.remove(s, filter);
          mine.delete(filter);
        }
      }
    }
    for (let i = 0; i < 150; i++) {
      const topic = randomTopic(r);
      const origin = r() < 0.5 ? sessions[Math.floor(r() * sessions.length)]!.clientId : undefined;
      const qos = Math.floor(r() * 3) as 0 | 1 | 2;
      const expected: string[] = [];
      for (const [s, mine] of held) {
        let best: Delivery | undefined;
        for (const [filter, o] of mine) {
          if (!topicMatches(filter, topic)) continue;
          if (o.noLocal && origin === s.clientId) continue;
          if (o.exclude?.some((f) => filterCovers(f, topic))) continue;
          const granted = Math.min(qos, o.qos) as 0 | 1 | 2;
          best ??= { session: s, qos: granted, retainAsPublished: false, subscriptionIds: undefined };
          best.qos = Math.max(best.qos, granted) as 0 | 1 | 2;
          best.retainAsPublished ||= o.retainAsPublished;
          if (o.subscriptionId) (best.subscriptionIds ??= []).push(o.subscriptionId);
        }
        if (best) expected.push(describe(best));
      }
      const got = index.match(topic, origin, qos).map(describe);
      assert.deepEqual(got.sort(), expected.sort(), `seed ${seed}, topic ${JSON.stringify(topic)}, origin ${origin}`);
    }
  }
});

test('share groups: one delivery per matching group, members in turn, connected members first (random filters)', () => {
  for (let seed = 1; seed <= 30; seed++) {
    const r = random(500 + seed);
    const index = new SubscriptionIndex();
    const members = new Map<string, Map<string, Set<string>>>(); // filter → group → client ids
    for (let i = 0; i < 30; i++) {
      const filter = randomFilter(r);
      const group = `g${Math.floor(r() * 3)}`;
      const s = session(`m${Math.floor(r() * 5)}`);
      index.add(s, filter, options(), group);
      let groups = members.get(filter);
      if (!groups) members.set(filter, (groups = new Map()));
      let ids = groups.get(group);
      if (!ids) groups.set(group, (ids = new Set()));
      ids.add(s.clientId);
    }
    for (let i = 0; i < 100; i++) {
      const topic = randomTopic(r);
      const expected: string[][] = [];
      for (const [filter, groups] of members) if (topicMatches(filter, topic)) for (const ids of groups.values()) expected.push([...ids].sort());
      const shared = index.match(topic, undefined, 1);
      assert.equal(shared.length, expected.length, `seed ${seed}, topic ${JSON.stringify(topic)}`);
      // each delivery goes to a member of one of the matching groups
      for (const d of shared) assert.ok(expected.some((ids) => ids.includes(d.session.clientId)), `seed ${seed}, topic ${topic}: ${d.session.clientId}`);
      assert.deepEqual(index.match(topic, undefined, 1, false), []);
    }
  }
  const index = new SubscriptionIndex();
  const a = session('a');
  const b = session('b');
  const away = session('away', false);
  for (const s of [a, away, b]) index.add(s, 'jobs/+', options(), 'workers');
  const turns = Array.from({ length: 4 }, () => index.match('jobs/1', undefined, 1).map((d) => d.session.clientId).join());
  assert.deepEqual(turns, ['a', 'b', 'a', 'b']);
  assert.equal(index.matchGroup('jobs/+', 'workers', 1)?.session.clientId, 'a');
});

test('wildcard filters are found, kept and forgotten by filter and session', () => {
  const index = new SubscriptionIndex();
  const a = session('a');
  const b = session('b');
  index.add(a, 'x/+/z', options({ qos: 0 }));
  index.add(b, 'x/+/z', options({ qos: 2 }));
  index.add(a, 'x/#', options({ qos: 2, subscriptionId: 7 }));
  assert.equal(index.hasPlain('x/+/z'), true);
  assert.deepEqual(index.match('x/y/z', undefined, 2).map(describe).sort(), ['a q2 rap=false ids=7', 'b q2 rap=false ids=']);
  index.remove(b, 'x/+/z');
  assert.equal(index.hasPlain('x/+/z'), true); // a still holds it
  index.remove(a, 'x/+/z');
  assert.equal(index.hasPlain('x/+/z'), false);
  assert.deepEqual(index.match('x/y/z', undefined, 2).map(describe), ['a q2 rap=false ids=7']);
  assert.deepEqual(index.match('x', undefined, 1).map(describe), ['a q1 rap=false ids=7']); // `x/#` matches `x` [MQTT-4.7.1-2]
  index.remove(a, 'x/#');
  assert.deepEqual(index.match('x/y/z', undefined, 2), []);
  index.add(b, 'x/+/', options());
  assert.deepEqual(index.match('x/y/', undefined, 1).map(describe), ['b q1 rap=false ids='], 'an empty last level is a level like any other');
  assert.deepEqual(index.match('x/y', undefined, 1), []);
});

test('topics that start with $ are not matched by filters that start with a wildcard [MQTT-4.7.2-1]', () => {
  const index = new SubscriptionIndex();
  index.add(session('all'), '#', options());
  index.add(session('any'), '+/monitor/#', options());
  index.add(session('sys'), '$SYS/#', options());
  index.add(session('group'), '#', options(), 'g');
  assert.deepEqual(index.match('$SYS/monitor/x', undefined, 1).map((d) => d.session.clientId), ['sys']);
  assert.deepEqual(index.match('a/monitor/x', undefined, 1).map((d) => d.session.clientId).sort(), ['all', 'any', 'group']);
});

test('100,000 wildcard subscriptions over 10,000 channels: a topic meets the filters of its channel only', () => {
  const index = new SubscriptionIndex();
  const sessions = Array.from({ length: 1000 }, (_, i) => session(`s${i}`));
  for (let i = 0; i < 100_000; i++) index.add(sessions[i % 1000]!, `channels/${i % 10_000}/messages/+/x${Math.floor(i / 10_000)}`, options());
  assert.deepEqual(index.match('channels/7/messages/bench/p0', undefined, 1), []);
  const hit = index.match('channels/7/messages/bench/x3', undefined, 1);
  assert.deepEqual(hit.map((d) => d.session.clientId), ['s7']); // i = 30,007
});
