// The SDK's twin client against a real Fleetwire (test/platform.ts): reads, reports and refusals
// over MQTT at both protocol levels, and the catch-up a device counts on: offline, it misses five
// desired changes; back (after a platform restart too), it is given the newest delta once and never
// an older version after a newer one.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connectDevice, TwinRefusedError, type FleetwireDevice, type TwinDelta } from '../src/index.js';
import { eventually, TestPlatform, type Fleet } from './platform.js';

describe('device twins through the SDK', () => {
  let platform: TestPlatform;
  let fleet: Fleet;
  const devices: FleetwireDevice[] = [];

  before(async () => {
    platform = await TestPlatform.start();
    fleet = await platform.fleet(3);
  });
  after(async () => {
    await Promise.all(devices.map((d) => d.close()));
    await platform?.stop();
  });

  const connect = async (k: number, protocolVersion: 4 | 5 = 5, extra: Record<string, unknown> = {}) => {
    const d = await connectDevice({ url: platform.mqttUrl, deviceId: fleet.devices[k]!.id, secret: fleet.devices[k]!.secret, protocolVersion, ...extra });
    devices.push(d);
    return d;
  };
  const desire = (k: number, desired: Record<string, unknown>, name = '') =>
    platform.call('PATCH', `/orgs/${fleet.org}/devices/${fleet.devices[k]!.id}/${name ? `twins/${name}` : 'twin'}`, { token: fleet.token, body: { desired }, expect: 200 });

  for (const version of [4, 5] as const) {
    test(`get, report and refuse over MQTT ${version === 4 ? '3.1.1' : '5'}`, async () => {
      const k = version === 4 ? 0 : 1;
      await desire(k, { mode: 'eco', fan: 2 });
      const d = await connect(k, version);
      const twin = d.twin();
      const doc = await twin.get();
      assert.deepEqual([doc.desired, doc.delta], [{ mode: 'eco', fan: 2 }, { mode: 'eco', fan: 2 }]);
      const reported = await twin.report({ mode: 'eco' });
      assert.deepEqual(reported, { version: doc.version + 1, delta: { fan: 2 } });
      const refused = await twin.reject('/fan', 'no fan on this model');
      assert.deepEqual(refused.delta, {});
      await assert.rejects(twin.report({ mode: 'x' }, { version: 1 }), (e: unknown) => e instanceof TwinRefusedError && e.code === 'twin.version_conflict' && e.version === doc.version + 2);
      await assert.rejects(twin.update({ desired: { mode: 'fast' } }), (e: unknown) => e instanceof TwinRefusedError && e.code === 'twin.forbidden_section');
      const named = await d.twin('firmware').report({ version: '1.4.2' });
      assert.equal(named.version, 1);
      const stored = await platform.call<{ reported: Record<string, unknown> }>('GET', `/orgs/${fleet.org}/devices/${fleet.devices[k]!.id}/twins/firmware`, { token: fleet.token, expect: 200 });
      assert.deepEqual(stored.reported, { version: '1.4.2' });
    });
  }

  test('a device offline for five desired changes gets the newest delta when it comes back, across a platform restart, never an older one after', async () => {
    const k = 2;
    const seen: TwinDelta[] = [];
    const d = await connect(k, 5, { clean: false, sessionExpirySeconds: 600, clientId: `sdk-twin-${fleet.devices[k]!.id}` });
    await d.twin().onDelta((delta) => void seen.push(delta));
    await desire(k, { step: 0 });
    await eventually(() => assert.equal(seen.at(-1)?.state.step, 0));

    // offline: the platform dies, five changes are made while it is back and the device is not
    await platform.kill();
    const relayBefore = platform.mqttUrl;
    await platform.restart(); // same data folder, same relay address
    assert.equal(platform.mqttUrl, relayBefore);
    await d.close();
    for (let i = 1; i <= 5; i++) await desire(k, { step: i, [`k${i}`]: true });

    const back = await connect(k, 5, { clean: false, sessionExpirySeconds: 600, clientId: `sdk-twin-${fleet.devices[k]!.id}` });
    const after: TwinDelta[] = [];
    await back.twin().onDelta((delta) => void after.push(delta));
    await eventually(() => assert.equal(after.at(-1)?.state.step, 5));
    assert.deepEqual(after.at(-1)!.state, { step: 5, k1: true, k2: true, k3: true, k4: true, k5: true });
    await desire(k, { step: 6 });
    await eventually(() => assert.equal(after.at(-1)?.state.step, 6));
    const versions = after.map((x) => x.version);
    assert.deepEqual([...versions].sort((a, b) => a - b), versions, 'in version order');
    assert.equal(new Set(versions).size, versions.length, 'each version once');
  });
});
