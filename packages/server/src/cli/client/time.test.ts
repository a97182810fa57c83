import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from 'commander';
import { lifetime, parseInstant, parseSeconds } from './time.js';

test('a lifetime is seconds, minutes, hours or days, or a bare number of seconds', () => {
  assert.deepEqual(['90s', '15m', '12h', '30d', '600', ' 2m '].map(parseSeconds), [90, 900, 43_200, 2_592_000, 600, 120]);
  for (const bad of ['', '15 minutes', '1.5h', '-1m', '3w']) assert.equal(parseSeconds(bad), undefined, bad);
  const tokenLifetime = lifetime('--expires-in', 60, 30 * 86_400, '1m to 30d');
  assert.equal(tokenLifetime('15m'), 900);
  assert.throws(() => tokenLifetime('59s'), (e: unknown) => e instanceof InvalidArgumentError && e.message === '--expires-in is from 1m to 30d');
  assert.throws(() => tokenLifetime('31d'), InvalidArgumentError);
  assert.throws(() => tokenLifetime('soon'), /a lifetime such as 15m/);
});

test('an instant is an ISO 8601 time as given, or a lifetime counted from now', () => {
  const now = Date.parse('2026-12-06T12:00:00.000Z');
  assert.equal(parseInstant('30d', now), '2027-01-05T12:00:00.000Z');
  assert.equal(parseInstant('90m', now), '2026-12-06T13:30:00.000Z');
  assert.equal(parseInstant('2027-01-31', now), '2027-01-31T00:00:00.000Z');
  assert.equal(parseInstant('2027-01-31T12:00:00+02:00', now), '2027-01-31T10:00:00.000Z');
  // a bare number would be a year to Date.parse and seconds to a lifetime: neither is guessed
  for (const bad of ['2026', '1700000000', 'tomorrow', '2027-13-45']) assert.equal(parseInstant(bad, now), undefined, bad);
});
