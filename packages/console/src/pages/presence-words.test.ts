// Presence in words and the uptime strip's stretches: run with `npm test -w @fleetwire/console`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { durationText, percentText, presenceLine, reasonText, segmentsText, uptimeSegments } from './presence-words.ts';

const at = (ms: number) => new Date(ms).toISOString();
const hour = 3_600_000;

test('each reason of the platform reads as words, and an unknown one as itself', () => {
  assert.equal(reasonText('connection_lost'), 'connection lost');
  assert.equal(reasonText('client_disconnect'), 'disconnected by the device');
  assert.equal(reasonText('server_shutdown'), 'server shut down');
  assert.equal(reasonText('something_new'), 'something new');
  assert.equal(reasonText(null), '');
});

test('a presence reads as its state, how long it has held and, offline, why', () => {
  const now = Date.parse('2026-12-07T12:00:00Z');
  assert.equal(presenceLine({ state: 'offline', since: at(now - 3 * 60_000), reason: 'connection_lost' }, now), 'offline for 3 min, connection lost');
  assert.equal(presenceLine({ state: 'online', since: at(now - 2 * hour - 5 * 60_000), reason: null }, now), 'online for 2 h 5 min');
  assert.equal(presenceLine({ state: 'offline', since: null, reason: null }, now), 'offline, never seen');
  assert.deepEqual([0, 59_999, 60_000, 26 * hour, 48 * hour].map(durationText), ['0 s', '59 s', '1 min', '1 d 2 h', '2 d']);
  assert.deepEqual([1, 0.99549, 0, 1.2].map(percentText), ['100 %', '99.5 %', '0 %', '100 %']);
  assert.deepEqual([0.0001, 0.99991].map(percentText), ['< 0.1 %', '> 99.9 %'], 'a little uptime is not none, a little downtime not none either');
});

test('the strip starts in the state at `from`, changes at each change and stops at now', () => {
  const from = 0;
  const to = 10 * hour;
  const segments = uptimeSegments({ initial: 'offline', changes: [{ state: 'online', at: at(2 * hour) }, { state: 'offline', at: at(6 * hour) }] }, from, to, 8 * hour);
  assert.deepEqual(
    segments.map((s) => [s.state, s.start / hour, s.end / hour, s.share]),
    [
      ['offline', 0, 2, 0.2],
      ['online', 2, 6, 0.4],
      ['offline', 6, 8, 0.2],
    ],
  );
  assert.equal(segmentsText(segments, (ms) => `${ms / hour}h`), 'offline from 0h to 2h; online from 2h to 6h; offline from 6h to 8h');
});

test('the strip merges repeated states, drops empty stretches and ignores changes outside the range', () => {
  const segments = uptimeSegments(
    {
      initial: 'online',
      changes: [
        { state: 'idle', at: at(-hour) }, // before the range: taken as at `from`
        { state: 'idle', at: at(hour) },
        { state: 'offline', at: at(3 * hour) },
        { state: 'online', at: at(3 * hour) }, // a change and its undoing at one moment leave nothing
        { state: 'offline', at: at(20 * hour) }, // after the range
      ],
    },
    0,
    4 * hour,
  );
  assert.deepEqual(segments.map((s) => [s.state, s.start / hour, s.end / hour]), [
    ['idle', 0, 3],
    ['online', 3, 4],
  ]);
  assert.deepEqual(uptimeSegments({ initial: 'offline', changes: [] }, 5, 5), [], 'an empty range has no strip');
});
