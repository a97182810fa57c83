// test-database: none
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runBusContract, envelope } from './bus.contract.js';
import { MemoryBus } from './memory-bus.js';
import { BusOverloadedError } from './bus.js';

runBusContract('memory', { make: async (durable) => new MemoryBus({ durable, retryDelayMs: 50 }) });

test('a full durable queue makes publishers wait, then refuses with BusOverloadedError', async () => {
  const bus = new MemoryBus({ durable: ['slow'], maxQueued: 3, publishTimeoutMs: 100 });
  for (let i = 0; i < 3; i++) await bus.publish(envelope('ch'));
  await assert.rejects(bus.publish(envelope('ch')), BusOverloadedError);
  assert.equal(bus.stats().dropped, 1);
  assert.equal(bus.stats().pending.slow, 3);
  // once a consumer drains the queue, publishing works again
  const seen: string[] = [];
  const consumer = await bus.consume('slow', async (batch) => void seen.push(...batch.map((e) => e.id)));
  const waiting = bus.publish(envelope('ch'));
  await waiting;
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(seen.length, 4);
  await consumer.stop();
  await bus.close();
});
