// The SDK's presence heartbeats against a real Fleetwire (test/platform.ts): a device that reports
// over HTTP is idle with the interval it declared; a bad interval is the platform's refusal.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PlatformRefusedError, sendHeartbeat, startHeartbeat } from '../src/index.js';
import { eventually, TestPlatform, type Fleet } from './platform.js';

describe('presence heartbeats through the SDK', () => {
  let platform: TestPlatform;
  let fleet: Fleet;
  before(async () => {
    platform = await TestPlatform.start();
    fleet = await platform.fleet(2);
  });
  after(() => platform?.stop());

  const presenceOf = (k: number) => platform.call<{ state: string; interval: number | null; protocol: string | null }>('GET', `/orgs/${fleet.org}/devices/${fleet.devices[k]!.id}/presence`, { token: fleet.token, expect: 200 });

  test('startHeartbeat makes an HTTP device idle with its declared interval, and stop ends the beats', async () => {
    const d = fleet.devices[0]!;
    assert.equal((await presenceOf(0)).state, 'offline');
    const hb = startHeartbeat({ api: platform.api, deviceId: d.id, secret: d.secret, intervalSeconds: 300 });
    await hb.sent;
    hb.stop();
    await eventually(async () => {
      const p = await presenceOf(0);
      assert.deepEqual([p.state, p.interval, p.protocol], ['idle', 300, 'http']);
    });
  });

  test('a refused heartbeat rejects with the platform code; a failing one goes to onError and is retried', async () => {
    const d = fleet.devices[1]!;
    await assert.rejects(sendHeartbeat({ api: platform.api, deviceId: d.id, secret: d.secret, intervalSeconds: 8 * 86_400 }), (e: unknown) => e instanceof PlatformRefusedError && e.status === 400 && /interval/.test(e.message));
    await assert.rejects(sendHeartbeat({ api: platform.api, deviceId: d.id, secret: 'wrong', intervalSeconds: 300 }), (e: unknown) => e instanceof PlatformRefusedError && e.status === 401);
    const errors: Error[] = [];
    const hb = startHeartbeat({ api: platform.api, deviceId: d.id, secret: 'wrong', intervalSeconds: 60, onError: (e) => errors.push(e) });
    await hb.sent;
    hb.stop();
    assert.equal(errors.length, 1);
    assert.equal((await presenceOf(1)).state, 'offline');
  });
});
