import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, defaultBackoff, resolveBackoff } from './backoff.js';

const noJitter = resolveBackoff({ minDelayMs: 100, maxDelayMs: 5000, factor: 2, jitter: 0 });

test('the delay doubles from the minimum with each failed attempt', () => {
  assert.deepEqual([0, 1, 2, 3, 4].map((n) => backoffDelay(n, noJitter)), [100, 200, 400, 800, 1600]);
});

test('the delay stops growing at the maximum, also after very many attempts', () => {
  assert.equal(backoffDelay(6, noJitter), 5000);
  assert.equal(backoffDelay(10_000, noJitter), 5000);
});

test('jitter takes up to its share off the delay, never adds to it', () => {
  const b = resolveBackoff({ minDelayMs: 1000, maxDelayMs: 1000, jitter: 0.5 });
  assert.equal(backoffDelay(0, b, () => 0), 1000);
  assert.equal(backoffDelay(0, b, () => 0.5), 750);
  assert.equal(backoffDelay(0, b, () => 0.999999), 500);
});

test('jittered delays of many devices spread over the range', () => {
  const b = resolveBackoff({ minDelayMs: 1000, maxDelayMs: 1000, jitter: 1 });
  const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(0, b)));
  assert.ok(delays.size > 10, `only ${delays.size} distinct delays`);
  for (const d of delays) assert.ok(d >= 0 && d <= 1000);
});

test('unset options take the defaults', () => {
  assert.deepEqual(resolveBackoff({ minDelayMs: undefined }), defaultBackoff);
  assert.deepEqual(resolveBackoff({ maxDelayMs: 2000 }), { ...defaultBackoff, maxDelayMs: 2000 });
});

test('settings that make no schedule are refused, naming the setting', () => {
  assert.throws(() => resolveBackoff({ minDelayMs: -1 }), /minDelayMs/);
  assert.throws(() => resolveBackoff({ minDelayMs: 1000, maxDelayMs: 10 }), /maxDelayMs/);
  assert.throws(() => resolveBackoff({ factor: 0.5 }), /factor/);
  assert.throws(() => resolveBackoff({ jitter: 2 }), /jitter/);
});
