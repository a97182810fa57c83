import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startTestPlatform, testPassword, type TestPlatform } from '../../test/helpers/platform.js';
import { randomToken, uuidv7 } from '../core/ids.js';
import { iso } from '../core/clock.js';
import type { ConnectionType } from '../connections/repository.js';
import type { DeviceWithSecret } from '../devices/service.js';
import { DeviceAuthorizer, type DeviceCredential } from './decision.js';
import { createAccessStore, type AccessStore, type ChannelAccess, type DeviceIdentity } from './access-store.js';
import { ServerKeys } from './keys.js';

const secretOf = (d: DeviceWithSecret): DeviceCredential => ({ kind: 'secret', secret: d.secret });
const certificateOf = (d: { id: string }): DeviceCredential => ({ kind: 'certificate', deviceId: d.id });
/** Database lookups an authorizer has made so far. */
const queries = (a: DeviceAuthorizer): number => a.getStats().misses + a.getStats().accessMisses;

describe('device authorization decision', () => {
  let t: TestPlatform;
  let ownerId: string;
  let orgId: string;

  before(async () => {
    t = await startTestPlatform();
    const owner = await t.platform.users.create({ email: 'owner@example.com', password: testPassword });
    ownerId = owner.id;
    orgId = (await newOrg('Acme')).id;
  });
  after(() => t.close());

  function newOrg(name: string) {
    return t.platform.orgs.create({ userId: ownerId, email: 'owner@example.com', platformRole: 'user' }, name);
  }

  /** A fresh device and channel in `org`, connected with `types`. */
  async function setup(types: ConnectionType[], org = orgId) {
    const device = await t.platform.devices.create(org, { name: 'sensor' });
    const channel = await t.platform.channels.create(org, { name: 'telemetry' });
    if (types.length > 0) await t.platform.connections.connect(org, { device_ids: [device.id], channel_ids: [channel.id], types });
    return { device, channel };
  }

  const authz = () => t.platform.authorizer;

  test('a device connected for publishing may publish and nothing else', async () => {
    const { device, channel } = await setup(['publish']);
    const other = await t.platform.channels.create(orgId, { name: 'other' });
    assert.deepEqual(await authz().authorize(secretOf(device), channel.id, 'publish'), { allow: true, deviceId: device.id, orgId, contentType: 'application/senml+json' });
    assert.deepEqual(await authz().authorize(secretOf(device), channel.id, 'subscribe'), { allow: false, reason: 'not_connected' });
    assert.deepEqual(await authz().authorize(secretOf(device), other.id, 'publish'), { allow: false, reason: 'not_connected' });
  });

  test('a device connected for subscribing may subscribe and nothing else', async () => {
    const { device, channel } = await setup(['subscribe']);
    assert.deepEqual(await authz().authorize(secretOf(device), channel.id, 'subscribe'), { allow: true, deviceId: device.id, orgId, contentType: 'application/senml+json' });
    assert.deepEqual(await authz().authorize(secretOf(device), channel.id, 'publish'), { allow: false, reason: 'not_connected' });
  });

  test('a device with both connection types may do both', async () => {
    const { device, channel } = await setup(['publish', 'subscribe']);
    assert.equal((await authz().authorize(secretOf(device), channel.id, 'publish')).allow, true);
    assert.equal((await authz().authorize(secretOf(device), channel.id, 'subscribe')).allow, true);
  });

  test('a wrong secret is invalid_credentials', async () => {
    const { device, channel } = await setup(['publish']);
    for (const secret of [randomToken(32), device.secret.slice(0, -1), '', `${device.secret} `]) {
      assert.deepEqual(await authz().authorize({ kind: 'secret', secret }, channel.id, 'publish'), { allow: false, reason: 'invalid_credentials' });
    }
  });

  test('a claimed device id that does not own the secret is invalid_credentials', async () => {
    const { device, channel } = await setup(['publish']);
    const { device: other } = await setup(['publish']);
    const claim = (deviceId: string): DeviceCredential => ({ kind: 'secret', secret: device.secret, deviceId });
    assert.deepEqual(await authz().authorize(claim(device.id), channel.id, 'publish'), { allow: true, deviceId: device.id, orgId, contentType: 'application/senml+json' });
    // again, now that the secret is cached
    for (const deviceId of [other.id, 'not-a-uuid', '']) {
      assert.deepEqual(await authz().authorize(claim(deviceId), channel.id, 'publish'), { allow: false, reason: 'invalid_credentials' });
      assert.deepEqual(await authz().identify(claim(deviceId)), { ok: false, reason: 'invalid_credentials' });
    }
  });

  test('a certificate credential names the device by id', async () => {
    const { device, channel } = await setup(['publish']);
    assert.deepEqual(await authz().authorize(certificateOf(device), channel.id, 'publish'), { allow: true, deviceId: device.id, orgId, contentType: 'application/senml+json' });
    assert.deepEqual(await authz().authorize(certificateOf(device), channel.id, 'subscribe'), { allow: false, reason: 'not_connected' });
    for (const deviceId of [uuidv7(), 'CN=sensor', '']) {
      assert.deepEqual(await authz().authorize({ kind: 'certificate', deviceId }, channel.id, 'publish'), { allow: false, reason: 'invalid_credentials' });
    }
  });

  test('a disabled device is denied with device_disabled until it is enabled again', async () => {
    const { device, channel } = await setup(['publish']);
    assert.equal((await authz().authorize(secretOf(device), channel.id, 'publish')).allow, true); // now cached
    await t.platform.devices.setStatus(orgId, device.id, 'disabled');
    for (const cred of [secretOf(device), certificateOf(device)]) {
      assert.deepEqual(await authz().authorize(cred, channel.id, 'publish'), { allow: false, reason: 'device_disabled' });
      assert.deepEqual(await authz().identify(cred), { ok: false, reason: 'device_disabled' });
    }
    await t.platform.devices.setStatus(orgId, device.id, 'enabled');
    for (const cred of [secretOf(device), certificateOf(device)]) {
      assert.deepEqual(await authz().authorize(cred, channel.id, 'publish'), { allow: true, deviceId: device.id, orgId, contentType: 'application/senml+json' });
    }
  });

  test('a device that connected and was then disabled or deleted is denied per message', async () => {
    const { device, channel } = await setup(['publish']);
    const who = await authz().identify(secretOf(device)); // at connect time
    assert.ok(who.ok);
    assert.equal((await authz().authorizeDevice(who.device, channel.id, 'publish')).allow, true);
    await t.platform.devices.setStatus(orgId, device.id, 'disabled');
    assert.deepEqual(await authz().authorizeDevice(who.device, channel.id, 'publish'), { allow: false, reason: 'device_disabled' });
    await t.platform.devices.setStatus(orgId, device.id, 'enabled');
    assert.equal((await authz().authorizeDevice(who.device, channel.id, 'publish')).allow, true);
    await t.platform.devices.delete(orgId, device.id);
    assert.deepEqual(await authz().authorizeDevice(who.device, channel.id, 'publish'), { allow: false, reason: 'invalid_credentials' });
  });

  test('a device created disabled is denied with device_disabled', async () => {
    const device = await t.platform.devices.create(orgId, { name: 'parked', status: 'disabled' });
    const channel = await t.platform.channels.create(orgId, { name: 'parking' });
    await t.platform.connections.connect(orgId, { device_ids: [device.id], channel_ids: [channel.id], types: ['publish'] });
    assert.deepEqual(await authz().authorize(secretOf(device), channel.id, 'publish'), { allow: false, reason: 'device_disabled' });
  });

  test('rotating the secret stops the old one at once', async () => {
    const { device, channel } = await setup(['publish']);
    await authz().authorize(secretOf(device), channel.id, 'publish');
    const before = queries(authz());
    assert.equal((await authz().authorize(secretOf(device), channel.id, 'publish')).allow, true);
    assert.equal(queries(authz()), before, 'the second decision came from the cache');

    const rotated = await t.platform.devices.rotateSecret(orgId, device.id);
    assert.notEqual(rotated.secret, device.secret);
    assert.deepEqual(await authz().authorize(secretOf(device), channel.id, 'publish'), { allow: false, reason: 'invalid_credentials' });
    assert.deepEqual(await authz().authorize(secretOf(rotated), channel.id, 'publish'), { allow: true, deviceId: device.id, orgId, contentType: 'application/senml+json' });
    // and the old secret stays dead once the new one is cached
    assert.deepEqual(await authz().authorize(secretOf(device), channel.id, 'publish'), { allow: false, reason: 'invalid_credentials' });
  });

  test('a deleted device is denied at once', async () => {
    const { device, channel } = await setup(['publish']);
    assert.equal((await authz().authorize(secretOf(device), channel.id, 'publish')).allow, true);
    assert.equal((await authz().authorize(certificateOf(device), channel.id, 'publish')).allow, true);
    await t.platform.devices.delete(orgId, device.id);
    for (const cred of [secretOf(device), certificateOf(device)]) {
      assert.deepEqual(await authz().authorize(cred, channel.id, 'publish'), { allow: false, reason: 'invalid_credentials' });
    }
  });

  test('disconnecting a device denies it at once', async () => {
    const { device, channel } = await setup(['publish', 'subscribe']);
    assert.equal((await authz().authorize(secretOf(device), channel.id, 'publish')).allow, true);
    assert.equal((await authz().authorize(secretOf(device), channel.id, 'subscribe')).allow, true);
    await t.platform.connections.disconnect(orgId, { device_ids: [device.id], channel_ids: [channel.id], types: ['publish'] });
    assert.deepEqual(await authz().authorize(secretOf(device), channel.id, 'publish'), { allow: false, reason: 'not_connected' });
    assert.equal((await authz().authorize(secretOf(device), channel.id, 'subscribe')).allow, true);
    await t.platform.connections.disconnect(orgId, { device_ids: [device.id], channel_ids: [channel.id], types: ['subscribe'] });
    assert.deepEqual(await authz().authorize(secretOf(device), channel.id, 'subscribe'), { allow: false, reason: 'not_connected' });
  });

  test('connecting a device allows it at once after a cached denial', async () => {
    const { device, channel } = await setup([]);
    assert.deepEqual(await authz().authorize(secretOf(device), channel.id, 'publish'), { allow: false, reason: 'not_connected' });
    await t.platform.connections.connect(orgId, { device_ids: [device.id], channel_ids: [channel.id], types: ['publish'] });
    assert.equal((await authz().authorize(secretOf(device), channel.id, 'publish')).allow, true);
  });

  test('a deleted channel is channel_not_found', async () => {
    const { device, channel } = await setup(['publish']);
    assert.equal((await authz().authorize(secretOf(device), channel.id, 'publish')).allow, true);
    await t.platform.channels.delete(orgId, channel.id);
    assert.deepEqual(await authz().authorize(secretOf(device), channel.id, 'publish'), { allow: false, reason: 'channel_not_found' });
    assert.deepEqual(await authz().authorize(certificateOf(device), channel.id, 'publish'), { allow: false, reason: 'channel_not_found' });
  });

  test('a channel of another organization is channel_not_found, even with a stray connection row', async () => {
    const other = await newOrg('Other');
    const { channel: foreign, device: foreignDevice } = await setup(['publish', 'subscribe'], other.id);
    const { device } = await setup(['publish']);
    for (const action of ['publish', 'subscribe'] as const) {
      assert.deepEqual(await authz().authorize(secretOf(device), foreign.id, action), { allow: false, reason: 'channel_not_found' });
    }
    // The services refuse to connect across organizations; the decision must not rely on that alone.
    await t.platform.db.kysely
      .insertInto('connections')
      .values({ org_id: orgId, channel_id: foreign.id, device_id: device.id, type: 'publish', created_at: iso(Date.now()) })
      .execute();
    authz().invalidateConnections([device.id]);
    assert.deepEqual(await authz().authorize(secretOf(device), foreign.id, 'publish'), { allow: false, reason: 'channel_not_found' });
    assert.equal((await authz().authorize(secretOf(foreignDevice), foreign.id, 'publish')).allow, true);
  });

  test('deleting an organization denies its devices at once and leaves others alone', async () => {
    const doomed = await newOrg('Doomed');
    const { device, channel } = await setup(['publish'], doomed.id);
    const { device: survivor, channel: survivorChannel } = await setup(['publish']);
    assert.equal((await authz().authorize(secretOf(device), channel.id, 'publish')).allow, true);
    assert.equal((await authz().authorize(certificateOf(device), channel.id, 'publish')).allow, true);
    await t.platform.orgs.delete({ orgId: doomed.id, role: 'owner' });
    for (const cred of [secretOf(device), certificateOf(device)]) {
      assert.deepEqual(await authz().authorize(cred, channel.id, 'publish'), { allow: false, reason: 'invalid_credentials' });
    }
    assert.deepEqual(await authz().authorize(secretOf(survivor), survivorChannel.id, 'publish'), { allow: true, deviceId: survivor.id, orgId, contentType: 'application/senml+json' });
  });

  test('a malformed channel id is channel_not_found', async () => {
    const { device } = await setup(['publish']);
    for (const channelId of ['', 'telemetry', '../x', `${uuidv7()}/extra`, "' OR 1=1 --", 'x'.repeat(10_000), uuidv7()]) {
      assert.deepEqual(await authz().authorize(secretOf(device), channelId, 'publish'), { allow: false, reason: 'channel_not_found' }, channelId.slice(0, 40));
    }
  });

  test('junk channel ids are not cached', async () => {
    const authorizer = new DeviceAuthorizer(createAccessStore(t.platform.db), t.platform.keys, 10);
    const { device, channel } = await setup(['publish']);
    assert.equal((await authorizer.authorize(secretOf(device), channel.id, 'publish')).allow, true);
    for (let i = 0; i < 50; i++) {
      assert.deepEqual(await authorizer.authorize(secretOf(device), `junk/${i}`, 'publish'), { allow: false, reason: 'channel_not_found' });
    }
    assert.equal(authorizer.getStats().accessEntries, 1);
    const before = queries(authorizer);
    assert.equal((await authorizer.authorize(secretOf(device), channel.id, 'publish')).allow, true);
    assert.equal(queries(authorizer), before, 'the real answer is still cached');
  });

  test('a certificate decision is cached like a secret one', async () => {
    const { device, channel } = await setup(['publish']);
    await authz().authorize(certificateOf(device), channel.id, 'publish');
    const before = queries(authz());
    assert.equal((await authz().authorize(certificateOf(device), channel.id, 'publish')).allow, true);
    assert.equal((await authz().authorizeDevice({ id: device.id, orgId, enabled: true }, channel.id, 'publish')).allow, true);
    assert.equal(queries(authz()), before);
  });

  test("an allowed decision carries the channel's content type, and a change of it is seen at once without a query more", async () => {
    const { device, channel } = await setup(['publish']);
    const seen = async () => {
      const d = await authz().authorize(secretOf(device), channel.id, 'publish');
      assert.equal(d.allow, true);
      return d.allow ? d.contentType : undefined;
    };
    assert.equal(await seen(), 'application/senml+json');
    const before = queries(authz());
    assert.equal(await seen(), 'application/senml+json');
    assert.equal(queries(authz()), before, 'the cached answer carries it');
    await t.platform.channels.update(orgId, channel.id, { content_type: 'application/octet-stream' });
    assert.equal(await seen(), 'application/octet-stream');
    assert.deepEqual(await authz().authorizeDevice({ id: device.id, orgId, enabled: true }, channel.id, 'publish'), { allow: true, deviceId: device.id, orgId, contentType: 'application/octet-stream' });
    const afterChange = queries(authz());
    await t.platform.channels.update(orgId, channel.id, { name: 'renamed' });
    assert.equal(await seen(), 'application/octet-stream');
    assert.equal(queries(authz()), afterChange, 'a change of anything else keeps the cached answers');
  });

  test('a channel created after its id was asked about is found', async () => {
    // ids are server-made, so this cannot happen through the services; the cache must not rely on that
    const authorizer = new DeviceAuthorizer(createAccessStore(t.platform.db), t.platform.keys);
    const { device } = await setup([]);
    const channelId = uuidv7();
    assert.deepEqual(await authorizer.authorize(secretOf(device), channelId, 'publish'), { allow: false, reason: 'channel_not_found' });
    const now = iso(Date.now());
    await t.platform.db.kysely.insertInto('channels').values({ id: channelId, org_id: orgId, name: 'late', tags: '[]', metadata: '{}', content_type: 'application/json', created_at: now, updated_at: now }).execute();
    await t.platform.db.kysely.insertInto('connections').values({ org_id: orgId, channel_id: channelId, device_id: device.id, type: 'publish', created_at: now }).execute();
    authorizer.invalidateChannel(channelId);
    authorizer.invalidateConnections([device.id]);
    assert.equal((await authorizer.authorize(secretOf(device), channelId, 'publish')).allow, true);
  });

  test('the caches never hold more than maxEntries', async () => {
    const authorizer = new DeviceAuthorizer(createAccessStore(t.platform.db), t.platform.keys, 10);
    const devices = await t.platform.devices.createMany(orgId, Array.from({ length: 25 }, (_, i) => ({ name: `bounded-${i}` })));
    const channels = await t.platform.channels.createMany(orgId, [{ name: 'a' }, { name: 'b' }, { name: 'c' }]);
    const [a, b, c] = channels.map((ch) => ch.id) as [string, string, string];
    const ids = devices.map((d) => d.id);
    await t.platform.connections.connect(orgId, { device_ids: ids, channel_ids: [a, b], types: ['publish'] });
    for (let round = 0; round < 2; round++) {
      for (const d of devices) {
        assert.equal((await authorizer.authorize(secretOf(d), a, 'publish')).allow, true);
        assert.equal((await authorizer.authorize(secretOf(d), b, 'publish')).allow, true);
        assert.deepEqual(await authorizer.authorize(secretOf(d), c, 'publish'), { allow: false, reason: 'not_connected' });
        const stats = authorizer.getStats();
        assert.ok(stats.credentialEntries <= 10, `credentialEntries ${stats.credentialEntries}`);
        assert.ok(stats.accessEntries <= 10, `accessEntries ${stats.accessEntries}`);
      }
    }
    // still a cache: the latest device is answered without the database
    const before = queries(authorizer);
    assert.equal((await authorizer.authorize(secretOf(devices.at(-1)!), a, 'publish')).allow, true);
    assert.equal(queries(authorizer), before);
    // devices identified without a channel (connect time) are bounded too
    for (const d of devices) {
      assert.equal((await authorizer.identify(secretOf(d))).ok, true);
      assert.ok(authorizer.getStats().credentialEntries <= 10, `credentialEntries ${authorizer.getStats().credentialEntries}`);
    }
  });

  test('with maxEntries 0 nothing is cached and every answer is still right', async () => {
    const authorizer = new DeviceAuthorizer(createAccessStore(t.platform.db), t.platform.keys, 0);
    const { device, channel } = await setup(['publish']);
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await authorizer.authorize(secretOf(device), channel.id, 'publish'), { allow: true, deviceId: device.id, orgId, contentType: 'application/senml+json' });
      assert.deepEqual(await authorizer.authorize(secretOf(device), channel.id, 'subscribe'), { allow: false, reason: 'not_connected' });
    }
    assert.deepEqual(authorizer.getStats(), { hits: 0, misses: 6, accessHits: 0, accessMisses: 6, credentialEntries: 0, accessEntries: 0 });
    // this authorizer gets no invalidations from the services: without a cache it needs none
    const rotated = await t.platform.devices.rotateSecret(orgId, device.id);
    assert.deepEqual(await authorizer.authorize(secretOf(device), channel.id, 'publish'), { allow: false, reason: 'invalid_credentials' });
    assert.equal((await authorizer.authorize(secretOf(rotated), channel.id, 'publish')).allow, true);
  });
});

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * An AccessStore over in-memory tables whose next lookup can be held open after it has read its
 * answer, the way a query in flight holds a snapshot: the seam that lets a test change the data
 * and invalidate while a cold lookup is still running.
 */
class HeldStore implements AccessStore {
  /** secret hash → device */
  readonly devices = new Map<string, DeviceIdentity>();
  /** channel id → org id */
  readonly channels = new Map<string, string>();
  /** `${deviceId} ${channelId}` → connection bits */
  readonly connections = new Map<string, number>();
  lookups = 0;
  private held: { started: Deferred; release: Deferred } | undefined;

  /** Holds the next lookup once it has read its answer; `started` resolves when it has. */
  holdNext(): { started: Promise<void>; release: () => void } {
    const held = { started: deferred(), release: deferred() };
    this.held = held;
    return { started: held.started.promise, release: held.release.resolve };
  }

  private async answer<T>(value: T): Promise<T> {
    this.lookups++;
    const held = this.held;
    this.held = undefined;
    if (held) {
      held.started.resolve();
      await held.release.promise;
    }
    return value;
  }

  /** `${serial} ${deviceId}` of the active certificates */
  readonly certificates = new Set<string>();

  certificateActive(serial: string, deviceId: string): Promise<boolean> {
    return this.answer(this.certificates.has(`${serial} ${deviceId}`));
  }

  deviceBySecretHash(hash: string): Promise<DeviceIdentity | undefined> {
    const d = this.devices.get(hash);
    return this.answer(d && { ...d });
  }

  deviceById(id: string): Promise<DeviceIdentity | undefined> {
    const d = [...this.devices.values()].find((x) => x.id === id);
    return this.answer(d && { ...d });
  }

  channelAccess(deviceId: string, channelId: string): Promise<ChannelAccess> {
    const orgId = this.channels.get(channelId);
    return this.answer({ orgId, mask: this.connections.get(`${deviceId} ${channelId}`) ?? 0, contentType: orgId && 'application/senml+json' });
  }
}

describe('device authorization cache over a hand-written store', () => {
  const keys = new ServerKeys(randomBytes(32));
  const orgId = uuidv7();
  const channelId = uuidv7();
  const secret = randomToken(32);
  const cred: DeviceCredential = { kind: 'secret', secret };
  let device: DeviceIdentity;
  let store: HeldStore;
  let authorizer: DeviceAuthorizer;

  function freshStore(): void {
    device = { id: uuidv7(), orgId, enabled: true };
    store = new HeldStore();
    store.devices.set(keys.hashDeviceSecret(secret), device);
    store.channels.set(channelId, orgId);
    store.connections.set(`${device.id} ${channelId}`, 1);
    authorizer = new DeviceAuthorizer(store, keys, 100);
  }

  test('a certificate is checked by its serial even when its device and channel are cached: a revoked one is refused beside a valid one', async () => {
    freshStore();
    const valid: DeviceCredential = { kind: 'certificate', deviceId: device.id, serial: 'aa'.repeat(16) };
    const revoked: DeviceCredential = { kind: 'certificate', deviceId: device.id, serial: 'bb'.repeat(16) };
    store.certificates.add(`${valid.serial} ${device.id}`);
    const seen: string[] = [];
    authorizer.onCertificateSeen = (_, serial) => seen.push(serial);
    assert.equal((await authorizer.authorize(valid, channelId, 'publish')).allow, true);
    assert.equal((await authorizer.authorize(valid, channelId, 'publish')).allow, true);
    assert.deepEqual(await authorizer.authorize(revoked, channelId, 'publish'), { allow: false, reason: 'invalid_credentials' });
    assert.deepEqual(await authorizer.authorize(revoked, channelId, 'publish'), { allow: false, reason: 'invalid_credentials' }, 'the refusal is cached as a refusal');
    assert.deepEqual(seen, [valid.serial], 'told once of the active certificate, never of the revoked one');
  });

  test('an unraced lookup is cached (the seam works)', async () => {
    freshStore();
    assert.equal((await authorizer.authorize(cred, channelId, 'publish')).allow, true);
    assert.equal((await authorizer.authorize(cred, channelId, 'publish')).allow, true);
    assert.equal(store.lookups, 2, 'one credential lookup and one channel lookup, then cache hits');
  });

  test('a device disabled while its credential lookup is in flight is not left cached as enabled', async () => {
    freshStore();
    const { started, release } = store.holdNext();
    const inFlight = authorizer.authorize(cred, channelId, 'publish');
    await started;
    store.devices.set(keys.hashDeviceSecret(secret), { ...device, enabled: false });
    authorizer.invalidateDevice(device.id);
    release();
    // the decision that raced may use what it read; the next one must not
    assert.equal((await inFlight).allow, true);
    assert.deepEqual(await authorizer.authorize(cred, channelId, 'publish'), { allow: false, reason: 'device_disabled' });
  });

  test('a secret rotated while its lookup is in flight is not left cached', async () => {
    freshStore();
    const { started, release } = store.holdNext();
    const inFlight = authorizer.identify(cred);
    await started;
    store.devices.clear();
    store.devices.set(keys.hashDeviceSecret(randomToken(32)), device);
    authorizer.invalidateDevice(device.id);
    release();
    assert.equal((await inFlight).ok, true);
    assert.deepEqual(await authorizer.identify(cred), { ok: false, reason: 'invalid_credentials' });
    assert.equal(authorizer.getStats().credentialEntries, 0);
  });

  test('a secret verified for a device replaces the one cached for it', async () => {
    // without an invalidation, as when another process rotated the secret
    freshStore();
    assert.equal((await authorizer.identify(cred)).ok, true);
    const next = randomToken(32);
    store.devices.clear();
    store.devices.set(keys.hashDeviceSecret(next), device);
    assert.equal((await authorizer.identify({ kind: 'secret', secret: next })).ok, true);
    assert.deepEqual(await authorizer.identify(cred), { ok: false, reason: 'invalid_credentials' });
    assert.equal(authorizer.getStats().credentialEntries, 1);
  });

  const accessChanges: [string, (s: HeldStore, a: DeviceAuthorizer) => void, string][] = [
    ['a disconnect', (s, a) => (s.connections.clear(), a.invalidateConnections([device.id])), 'not_connected'],
    ['a channel delete', (s, a) => (s.channels.clear(), s.connections.clear(), a.invalidateChannel(channelId)), 'channel_not_found'],
    ['a device change', (s, a) => (s.connections.clear(), a.invalidateDevice(device.id)), 'not_connected'],
    ['an organization delete', (s, a) => (s.channels.clear(), s.connections.clear(), a.invalidateAll()), 'channel_not_found'],
  ];
  for (const [what, change, reason] of accessChanges) {
    test(`${what} while a channel lookup is in flight does not leave a stale allow`, async () => {
      freshStore();
      await authorizer.identify(cred); // credential cached: the next lookup is the channel's
      const { started, release } = store.holdNext();
      const inFlight = authorizer.authorize(cred, channelId, 'publish');
      await started;
      change(store, authorizer);
      release();
      assert.equal((await inFlight).allow, true);
      assert.equal(authorizer.getStats().accessEntries, 0);
      assert.deepEqual(await authorizer.authorize(cred, channelId, 'publish'), { allow: false, reason });
    });
  }
});
