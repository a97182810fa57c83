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

test('the next batch is handed over while the one before is handled; stored() follows the order of the batches', async () => {
  const bus = new MemoryBus({ durable: ['w'], retryDelayMs: 20 });
  const batches: string[][] = [];
  const release: (() => void)[] = [];
  const consumer = await bus.consume('w', (batch) => {
    batches.push(batch.map((e) => e.id));
    return new Promise<void>((r) => release.push(r));
  });
  const first = await bus.publish(envelope('ch'));
  await new Promise((r) => setTimeout(r, 20));
  const second = await bus.publish(envelope('ch'));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(batches.length, 2, 'the second batch went over before the first was done');
  const order: string[] = [];
  void first.stored().then(() => order.push('first'));
  void second.stored().then(() => order.push('second'));
  release[1]!(); // the second finishes first: its publisher still waits for the first
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(order, []);
  release[0]!();
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(order, ['first', 'second']);
  await consumer.stop();
  await bus.close();
});

test('when a batch fails, it and the one handed over after it are delivered again', async () => {
  const bus = new MemoryBus({ durable: ['w'], retryDelayMs: 20 });
  const seen: string[][] = [];
  let calls = 0;
  let releaseFirst: ((ok: boolean) => void) | undefined;
  const consumer = await bus.consume('w', (batch) => {
    seen.push(batch.map((e) => e.payload.toString()));
    if (++calls === 1) return new Promise<void>((resolve, reject) => (releaseFirst = (ok) => (ok ? resolve() : reject(new Error('failed')))));
    return Promise.resolve();
  });
  const a = await bus.publish(envelope('ch', '', 'a'));
  await new Promise((r) => setTimeout(r, 20));
  const b = await bus.publish(envelope('ch', '', 'b'));
  await new Promise((r) => setTimeout(r, 20));
  releaseFirst!(false);
  await Promise.all([a.stored(), b.stored()]);
  assert.deepEqual(seen, [['a'], ['b'], ['a', 'b']]);
  assert.equal(bus.stats().pending.w, 0);
  await consumer.stop();
  await bus.close();
});
