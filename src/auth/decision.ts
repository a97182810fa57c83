import { isUuid } from '../core/ids.js';
import type { ServerKeys } from './keys.js';
import { accessBits, type AccessAction, type AccessStore, type ChannelAccess, type DeviceIdentity } from './access-store.js';

/** How a device proves who it is. */
export type DeviceCredential =
  /** A device secret; `deviceId` is the id the client claims (MQTT username, Basic user), if any. */
  | { kind: 'secret'; secret: string; deviceId?: string }
  /** A device already authenticated by the transport (client certificate: CN = device id). */
  | { kind: 'certificate'; deviceId: string };

export type DenyReason = 'invalid_credentials' | 'device_disabled' | 'channel_not_found' | 'not_connected';

export type Decision = { allow: true; deviceId: string; orgId: string } | { allow: false; reason: DenyReason };

export type Identification = { ok: true; device: DeviceIdentity } | { ok: false; reason: 'invalid_credentials' | 'device_disabled' };

export interface AuthorizerStats {
  hits: number;
  misses: number;
  credentialEntries: number;
  accessEntries: number;
}

const invalid: Identification = { ok: false, reason: 'invalid_credentials' };
const disabled: Identification = { ok: false, reason: 'device_disabled' };

/**
 * The authorization decision every transport calls: may this device credential do this action on
 * this channel? Answers from a bounded in-memory cache when it can. Every change that affects a
 * decision (disable, delete, secret rotation, connect/disconnect, channel delete) must call one of
 * the invalidate methods; the services do so through their change hooks.
 */
export class DeviceAuthorizer {
  /** secret → device. Only verified secrets are cached. */
  private readonly credentials = new Map<string, DeviceIdentity>();
  /** device id → its cached secret, so that a rotation can evict it. */
  private readonly secretOf = new Map<string, string>();
  /** device id → channel id → access (negative answers are cached too). */
  private readonly access = new Map<string, Map<string, ChannelAccess>>();
  private accessCount = 0;
  /** Bumped by every invalidation, so that a lookup that raced with one is not cached. */
  private generation = 0;
  private readonly stats = { hits: 0, misses: 0 };

  constructor(
    private readonly store: AccessStore,
    private readonly keys: ServerKeys,
    /** Entries per cache; 0 turns caching off. */
    private readonly maxEntries = 100_000,
  ) {}

  /** Authenticates a credential without a channel (connect time). */
  async identify(cred: DeviceCredential): Promise<Identification> {
    let device: DeviceIdentity | undefined;
    if (cred.kind === 'certificate') {
      // once per connection: not worth caching
      device = isUuid(cred.deviceId) ? await this.store.deviceById(cred.deviceId) : undefined;
    } else {
      device = this.credentials.get(cred.secret);
      if (device) this.stats.hits++;
      else {
        this.stats.misses++;
        const generation = this.generation;
        device = await this.store.deviceBySecretHash(this.keys.hashDeviceSecret(cred.secret));
        // an invalidation while the query ran may have made the answer stale: use it, don't keep it
        if (device && generation === this.generation) this.rememberCredential(cred.secret, device);
      }
      if (device && cred.deviceId !== undefined && cred.deviceId !== device.id) return invalid;
    }
    if (!device) return invalid;
    return device.enabled ? { ok: true, device } : disabled;
  }

  /** The whole decision: credential, device status, channel, connection type. */
  async authorize(cred: DeviceCredential, channelId: string, action: AccessAction): Promise<Decision> {
    const who = await this.identify(cred);
    if (!who.ok) return { allow: false, reason: who.reason };
    return this.authorizeDevice(who.device, channelId, action);
  }

  /** The channel part of the decision, for a device already identified (a connected MQTT client). */
  async authorizeDevice(device: DeviceIdentity, channelId: string, action: AccessAction): Promise<Decision> {
    let perDevice = this.access.get(device.id);
    let a = perDevice?.get(channelId);
    if (a === undefined) {
      const generation = this.generation;
      a = isUuid(channelId) ? await this.store.channelAccess(device.id, channelId) : { orgId: undefined, mask: 0 };
      if (this.maxEntries > 0 && generation === this.generation) {
        perDevice = this.access.get(device.id);
        if (!perDevice) this.access.set(device.id, (perDevice = new Map()));
        if (!perDevice.has(channelId)) this.accessCount++;
        perDevice.set(channelId, a);
        this.trimAccess();
      }
    }
    if (a.orgId === undefined || a.orgId !== device.orgId) return { allow: false, reason: 'channel_not_found' };
    if ((a.mask & accessBits[action]) === 0) return { allow: false, reason: 'not_connected' };
    return { allow: true, deviceId: device.id, orgId: device.orgId };
  }

  private rememberCredential(secret: string, device: DeviceIdentity): void {
    if (this.maxEntries === 0) return;
    const previous = this.secretOf.get(device.id);
    if (previous !== undefined) this.credentials.delete(previous);
    this.credentials.set(secret, device);
    this.secretOf.set(device.id, secret);
    if (this.credentials.size > this.maxEntries) {
      const [oldSecret, oldDevice] = this.credentials.entries().next().value!;
      this.credentials.delete(oldSecret);
      this.secretOf.delete(oldDevice.id);
    }
  }

  private trimAccess(): void {
    while (this.accessCount > this.maxEntries) {
      const [deviceId, m] = this.access.entries().next().value!; // oldest device first
      this.access.delete(deviceId);
      this.accessCount -= m.size;
    }
  }

  /** A device was disabled, enabled, deleted, or got a new secret. */
  invalidateDevice(deviceId: string): void {
    this.generation++;
    const secret = this.secretOf.get(deviceId);
    if (secret !== undefined) {
      this.credentials.delete(secret);
      this.secretOf.delete(deviceId);
    }
    this.dropDeviceAccess(deviceId);
  }

  /** Connections of these devices changed. */
  invalidateConnections(deviceIds: Iterable<string>): void {
    this.generation++;
    for (const id of deviceIds) this.dropDeviceAccess(id);
  }

  /** A channel was deleted or created (a cached "no such channel" must go). */
  invalidateChannel(channelId: string): void {
    this.generation++;
    for (const m of this.access.values()) if (m.delete(channelId)) this.accessCount--;
  }

  /** Everything (organization deleted). */
  invalidateAll(): void {
    this.generation++;
    this.credentials.clear();
    this.secretOf.clear();
    this.access.clear();
    this.accessCount = 0;
  }

  private dropDeviceAccess(deviceId: string): void {
    const m = this.access.get(deviceId);
    if (m) {
      this.accessCount -= m.size;
      this.access.delete(deviceId);
    }
  }

  getStats(): AuthorizerStats {
    return { ...this.stats, credentialEntries: this.credentials.size, accessEntries: this.accessCount };
  }
}

/** What services call when they change something a decision depends on. */
export type AccessInvalidation = Pick<DeviceAuthorizer, 'invalidateDevice' | 'invalidateConnections' | 'invalidateChannel' | 'invalidateAll'>;

export const noInvalidation: AccessInvalidation = {
  invalidateDevice: () => {},
  invalidateConnections: () => {},
  invalidateChannel: () => {},
  invalidateAll: () => {},
};
