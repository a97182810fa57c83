// test-database: once
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../core/clock.js';
import { MemoryAddressLimiter } from './rate-limit.js';

test('attempts per address in memory: over the limit, the wait until the window ends; a new window starts again; other addresses apart', async () => {
  const clock = new ManualClock(1_000_000);
  const limiter = new MemoryAddressLimiter({ maxPerAddress: 3, windowMs: 60_000 }, clock);
  for (let i = 0; i < 3; i++) assert.equal(await limiter.checkAddress('10.0.0.1'), 0);
  clock.advance(15_000);
  assert.equal(await limiter.checkAddress('10.0.0.1'), 45_000, 'the fourth waits for the end of the window');
  assert.equal(await limiter.checkAddress('10.0.0.2'), 0, 'another address has its own window');
  clock.advance(45_000);
  assert.equal(await limiter.checkAddress('10.0.0.1'), 0, 'a new window');
});

test('at most maxAddresses windows: the expired go first, then the oldest live one, and a flood of addresses cannot grow it', async () => {
  const clock = new ManualClock(0);
  const limiter = new MemoryAddressLimiter({ maxPerAddress: 1, windowMs: 1000 }, clock, 3);
  await limiter.checkAddress('a');
  clock.advance(2000); // a's window is over
  await limiter.checkAddress('b');
  await limiter.checkAddress('c');
  await limiter.checkAddress('d'); // full: a (expired) goes
  assert.ok((await limiter.checkAddress('b')) > 0, 'b is still counted');
  await limiter.checkAddress('e'); // full of live windows: the oldest (b) goes
  assert.equal(await limiter.checkAddress('b'), 0, 'b was let go, and starts again');
  for (let i = 0; i < 1000; i++) await limiter.checkAddress(`flood-${i}`);
  assert.ok((await limiter.checkAddress('flood-999')) > 0, 'the newest are kept');
  assert.equal(await limiter.checkAddress('flood-0'), 0, 'the oldest of the flood were let go: the map holds three, not a thousand');
});
