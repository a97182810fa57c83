// test-database: none
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryRetainedStore } from './retained.js';
import { topicMatches } from './topics.js';
import type { BrokerMessage } from './types.js';
import { random, randomFilter, randomTopic } from '../../test/helpers/topics.js';

const message = (topic: string, payload = 'v'): BrokerMessage => ({ topic, payload: Buffer.from(payload), qos: 1, retain: true });

test('a lookup returns exactly the retained topics topicMatches accepts (random filters and topics)', async () => {
  for (let seed = 1; seed <= 30; seed++) {
    const r = random(2000 + seed);
    const store = new MemoryRetainedStore();
    const topics = new Set<string>();
    for (let i = 0; i < 60; i++) {
      const t = randomTopic(r);
      if (r() < 0.2) {
        await store.set(message(t, '')); // an empty payload deletes [MQTT-3.3.1-10]
        topics.delete(t);
      } else {
        await store.set(message(t));
        topics.add(t);
      }
    }
    assert.equal(store.size, topics.size);
    for (let i = 0; i < 100; i++) {
      const filter = r() < 0.2 ? randomTopic(r) : randomFilter(r);
      const got = (await store.match(filter)).map((m) => m.topic).sort();
      assert.deepEqual(got, [...topics].filter((t) => topicMatches(filter, t)).sort(), `seed ${seed}, filter ${JSON.stringify(filter)}`);
    }
  }
});

test('100,000 retained topics: a wildcard lookup finds its channel’s, the newest message per topic', async () => {
  const store = new MemoryRetainedStore();
  for (let i = 0; i < 100_000; i++) await store.set(message(`channels/${i % 10_000}/messages/s${Math.floor(i / 10_000)}`));
  await store.set(message('channels/42/messages/s3', 'newer'));
  const found = await store.match('channels/42/messages/+');
  assert.deepEqual(found.map((m) => m.topic).sort(), Array.from({ length: 10 }, (_, k) => `channels/42/messages/s${k}`).sort());
  assert.equal(found.find((m) => m.topic === 'channels/42/messages/s3')?.payload.toString(), 'newer');
  assert.deepEqual(await store.match('channels/42/other/#'), []);
  assert.equal((await store.match('channels/+/messages/s9')).length, 10_000);
});
