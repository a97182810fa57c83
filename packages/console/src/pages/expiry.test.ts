// The certificates' expiry marks: run with `npm test -w @fleetwire/console`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dayMs, expiry } from './expiry.ts';

const now = Date.parse('2026-12-01T12:00:00Z');
const after = (ms: number) => new Date(now + ms).toISOString();

test('a certificate is marked within 30 days of its end, more so within 7, and said expired after it', () => {
  assert.deepEqual(expiry(after(89.5 * dayMs), now), { text: 'expires in 89 days', level: 'ok' });
  assert.deepEqual(expiry(after(31 * dayMs), now), { text: 'expires in 31 days', level: 'ok' });
  assert.deepEqual(expiry(after(30.9 * dayMs), now), { text: 'expires in 30 days', level: 'soon' });
  assert.deepEqual(expiry(after(8 * dayMs), now), { text: 'expires in 8 days', level: 'soon' });
  assert.deepEqual(expiry(after(7.5 * dayMs), now), { text: 'expires in 7 days', level: 'urgent' });
  assert.deepEqual(expiry(after(1 * dayMs), now), { text: 'expires in 1 day', level: 'urgent' });
  assert.deepEqual(expiry(after(3_600_000), now), { text: 'expires today', level: 'urgent' });
  assert.deepEqual(expiry(after(0), now), { text: 'expired', level: 'expired' });
  assert.deepEqual(expiry(after(-dayMs), now), { text: 'expired', level: 'expired' });
});
