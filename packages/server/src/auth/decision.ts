import { isUuid } from '../core/ids.js';
import type { ServerKeys } from './keys.js';
import { accessBits, type AccessAction, type AccessStore, type ChannelAccess, type DeviceIdentity } from './access-store.js';

/** How a device proves who it is. */
export type DeviceCredential =
  /** A device secret; `deviceId` is the id the client claims (MQTT username, Basic user), if any. */
  | { kind: 'secret'; secret: string; deviceId?: string }
  /**
   * A device already authenticated by the transport (client certificate: CN = device id). With
   * `serial`, the platform issued the certificate (docs/identity.md): it holds while not revoked.
   */
  | { kind: 'certificate'; deviceId: string; serial?: string };

export type DenyReason = 'invalid_credentials' | 'device_disabled' | 'channel_not_found' | 'not_connected';

/**
 * Decisions may be shared between callers (the cached path allocates none): do not modify one. An
 * allowed one carries the channel's content type, so that taking a message needs no other lookup.
 */
export type Decision = Readonly<{ allow: true; deviceId: string; orgId: string; contentType: string }> | Readonly<{ allow: false; reason: DenyReason }>;

export type Identification = Readonly<{ ok: true; device: DeviceIdentity }> | Readonly<{ ok: false; reason: 'invalid_credentials' | 'device_disabled' }>;

export interface AuthorizerStats {
  /** Credential checks (secret or certificate) answered from the cache. */
  hits: number;
  /** Credential checks that went to the database. */
  misses: number;
  /** Device/channel access answers from the cache. */
  accessHits: number;
  /** Device/channel access answers that went to the database. */
  accessMisses: number;
  /** Devices cached (reachable by their secret once one was verified, and by id). */
  credentialEntries: number;
  /** Device/channel answers cached. */
  accessEntries: number;
}

const invalid: Identification = { ok: false, reason: 'invalid_credentials' };
const disabled: Identification = { ok: false, reason: 'device_disabled' };
const deniedInvalid: Decision = { allow: false, reason: 'invalid_credentials' };
const deniedDisabled: Decision = { allow: false, reason: 'device_disabled' };
const deniedNoChannel: Decision = { allow: false, reason: 'channel_not_found' };
const deniedNotConnected: Decision = { allow: false, reason: 'not_connected' };

/** A device's access to one channel, with the decision that allows it built once. */
interface ChannelAnswer {
  readonly access: ChannelAccess;
  /** Given when the access allows the action; deniedNoChannel when there is no such channel. */
  readonly allowed: Decision;
}

const noChannel: ChannelAnswer = { access: { orgId: undefined, mask: 0, contentType: undefined }, allowed: deniedNoChannel };

/** What the cache knows about one device; the answers it gives are built once, here. */
class DeviceEntry {
  readonly identified: Identification;
  /** The secret this entry is reachable by, once one was verified. */
  secret: string | undefined = undefined;
  /** channel id → answer; negative ones too. */
  readonly channels = new Map<string, ChannelAnswer>();
  /** Platform certificate serial → whether it is active, for the certificates this device connected with. */
  certificates: Map<string, boolean> | undefined = undefined;

  constructor(readonly device: DeviceIdentity) {
    this.identified = device.enabled ? { ok: true, device } : disabled;
  }

  answer(access: ChannelAccess): ChannelAnswer {
    const { orgId, contentType } = access;
    const allowed: Decision = orgId === undefined || contentType === undefined ? deniedNoChannel : { allow: true, deviceId: this.device.id, orgId, contentType };
    return { access, allowed };
  }
}

function decide(entry: DeviceEntry, answer: ChannelAnswer, action: AccessAction): Decision {
  const { access } = answer;
  if (!entry.device.enabled) return deniedDisabled;
  if (access.orgId === undefined || access.orgId !== entry.device.orgId) return deniedNoChannel;
  if ((access.mask & accessBits[action]) === 0) return deniedNotConnected;
  return answer.allowed;
}

/**
 * The authorization decision every transport calls: may this device credential do this action on
 * this channel? Answers from a bounded in-memory cache when it can. Every change that affects a
 * decision (disable, delete, secret rotation, connect/disconnect, channel delete) must call one of
 * the invalidate methods; the services do so through their change hooks.
 *
 * A decision made entirely from the cache allocates nothing but the promise it returns.
 */
export class DeviceAuthorizer {
  /** device id → entry, oldest first; at most maxEntries. */
  private readonly devices = new Map<string, DeviceEntry>();
  /** verified secret → entry. Only verified secrets are cached. */
  private readonly bySecret = new Map<string, DeviceEntry>();
  /** channel id → how many entries hold it, so that invalidating an uncached channel costs nothing. */
  private readonly channelRefs = new Map<string, number>();
  /** Channel answers held over all entries; at most maxEntries. */
  private accessCount = 0;
  /** Bumped by every invalidation, so that a lookup that raced with one is not cached. */
  private generation = 0;
  private readonly stats = { hits: 0, misses: 0, accessHits: 0, accessMisses: 0 };
  /** Told when an active platform certificate is checked and its answer was not cached (once per device entry, per node): a renewed certificate's first use. */
  onCertificateSeen: ((deviceId: string, serial: string) => void) | undefined;

  constructor(
    private readonly store: AccessStore,
    private readonly keys: ServerKeys,
    /** Entries per cache (devices, and device/channel answers); 0 turns caching off. */
    private readonly maxEntries = 100_000,
  ) {}

  /** Authenticates a credential without a channel (connect time). */
  async identify(cred: DeviceCredential): Promise<Identification> {
    const entry = await this.entryFor(cred);
    return entry === undefined ? invalid : entry.identified;
  }

  /** The whole decision: credential, device status, channel, connection type. */
  authorize(cred: DeviceCredential, channelId: string, action: AccessAction): Promise<Decision> {
    // the hot path: both answers cached, nothing to await
    const entry = cred.kind === 'secret' ? this.bySecret.get(cred.secret) : this.devices.get(cred.deviceId);
    const answer = entry?.channels.get(channelId);
    if (answer !== undefined && claimHolds(cred, entry!) && certificateKnownActive(cred, entry!)) {
      this.stats.hits++;
      this.stats.accessHits++;
      return Promise.resolve(decide(entry!, answer, action));
    }
    return this.authorizeCold(cred, channelId, action);
  }

  /**
   * The decision for a device identified earlier (a connected MQTT client). Only the device's id
   * is used: its status comes from the cache or the database, so a device disabled or deleted
   * after it connected is denied from its next message on.
   */
  authorizeDevice(device: DeviceIdentity, channelId: string, action: AccessAction): Promise<Decision> {
    const entry = this.devices.get(device.id);
    const answer = entry?.channels.get(channelId);
    if (answer !== undefined) {
      this.stats.hits++;
      this.stats.accessHits++;
      return Promise.resolve(decide(entry!, answer, action));
    }
    return this.authorizeCold({ kind: 'certificate', deviceId: device.id }, channelId, action);
  }

  private async authorizeCold(cred: DeviceCredential, channelId: string, action: AccessAction): Promise<Decision> {
    const entry = await this.entryFor(cred);
    if (entry === undefined) return deniedInvalid;
    if (!entry.device.enabled) return deniedDisabled;
    return decide(entry, await this.accessFor(entry, channelId), action);
  }

  /** The device a credential proves, from the cache or the database; undefined when it proves none. */
  private async entryFor(cred: DeviceCredential): Promise<DeviceEntry | undefined> {
    let entry = cred.kind === 'secret' ? this.bySecret.get(cred.secret) : this.devices.get(cred.deviceId);
    if (entry !== undefined) this.stats.hits++;
    else if (cred.kind === 'secret') {
      this.stats.misses++;
      const generation = this.generation;
      const device = await this.store.deviceBySecretHash(this.keys.hashDeviceSecret(cred.secret));
      entry = device && this.remember(device, generation, cred.secret);
    } else if (isUuid(cred.deviceId)) {
      this.stats.misses++;
      const generation = this.generation;
      const device = await this.store.deviceById(cred.deviceId);
      entry = device && this.remember(device, generation, undefined);
    }
    if (entry === undefined || !claimHolds(cred, entry)) return undefined;
    if (cred.kind === 'certificate' && cred.serial !== undefined && !(await this.certificateHolds(entry, cred.serial))) return undefined;
    return entry;
  }

  /** Whether a platform certificate of the entry's device is still active: cached with the entry, which an invalidation of the device drops. */
  private async certificateHolds(entry: DeviceEntry, serial: string): Promise<boolean> {
    const cached = entry.certificates?.get(serial);
    if (cached !== undefined) return cached;
    const generation = this.generation;
    const active = await this.store.certificateActive(serial, entry.device.id);
    if (active) this.onCertificateSeen?.(entry.device.id, serial);
    if (generation === this.generation && this.devices.get(entry.device.id) === entry) (entry.certificates ??= new Map()).set(serial, active);
    return active;
  }

  private async accessFor(entry: DeviceEntry, channelId: string): Promise<ChannelAnswer> {
    const cached = entry.channels.get(channelId);
    if (cached !== undefined) {
      this.stats.accessHits++;
      return cached;
    }
    // not a channel id: answered without the database, and not cached (junk must not evict real entries)
    if (!isUuid(channelId)) return noChannel;
    this.stats.accessMisses++;
    const generation = this.generation;
    const answer = entry.answer(await this.store.channelAccess(entry.device.id, channelId));
    // an invalidation while the query ran may have made the answer stale: use it, don't keep it
    if (generation === this.generation && this.devices.get(entry.device.id) === entry && !entry.channels.has(channelId)) {
      entry.channels.set(channelId, answer);
      this.channelRefs.set(channelId, (this.channelRefs.get(channelId) ?? 0) + 1);
      this.accessCount++;
      while (this.accessCount > this.maxEntries) this.evict(this.devices.values().next().value!); // oldest device first
    }
    return answer;
  }

  /** The entry for a device just read from the database, cached when no invalidation ran meanwhile. */
  private remember(device: DeviceIdentity, generation: number, secret: string | undefined): DeviceEntry {
    if (this.maxEntries === 0 || generation !== this.generation) return new DeviceEntry(device);
    // With no invalidation since the query began, a cached entry for this device is still current.
    let entry = this.devices.get(device.id);
    if (entry === undefined) {
      entry = new DeviceEntry(device);
      this.devices.set(device.id, entry);
      if (this.devices.size > this.maxEntries) this.evict(this.devices.values().next().value!);
    }
    if (secret !== undefined && entry.secret !== secret) {
      if (entry.secret !== undefined) this.bySecret.delete(entry.secret);
      entry.secret = secret;
      this.bySecret.set(secret, entry);
    }
    return entry;
  }

  private evict(entry: DeviceEntry): void {
    this.devices.delete(entry.device.id);
    if (entry.secret !== undefined) this.bySecret.delete(entry.secret);
    this.forgetChannels(entry);
  }

  private forgetChannels(entry: DeviceEntry): void {
    for (const channelId of entry.channels.keys()) {
      const refs = this.channelRefs.get(channelId)! - 1;
      if (refs === 0) this.channelRefs.delete(channelId);
      else this.channelRefs.set(channelId, refs);
    }
    this.accessCount -= entry.channels.size;
    entry.channels.clear();
  }

  /** A device was disabled, enabled, deleted, or got a new secret. */
  invalidateDevice(deviceId: string): void {
    this.generation++;
    const entry = this.devices.get(deviceId);
    if (entry !== undefined) this.evict(entry);
  }

  /** Connections of these devices changed. */
  invalidateConnections(deviceIds: Iterable<string>): void {
    this.generation++;
    for (const id of deviceIds) {
      const entry = this.devices.get(id);
      if (entry !== undefined) this.forgetChannels(entry);
    }
  }

  /** A channel was deleted or created (a cached "no such channel" must go), or its content type changed. */
  invalidateChannel(channelId: string): void {
    this.generation++;
    if (!this.channelRefs.delete(channelId)) return; // no entry holds it: the usual case for a new channel
    for (const entry of this.devices.values()) if (entry.channels.delete(channelId)) this.accessCount--;
  }

  /** Everything (organization deleted). */
  invalidateAll(): void {
    this.generation++;
    this.devices.clear();
    this.bySecret.clear();
    this.channelRefs.clear();
    this.accessCount = 0;
  }

  getStats(): AuthorizerStats {
    return { ...this.stats, credentialEntries: this.devices.size, accessEntries: this.accessCount };
  }
}

/** A secret presented with a device id (MQTT username) must belong to that device. */
/** A platform certificate's serial is part of the claim: the hot path answers only for one known active (a revoked serial beside a valid one goes to the cold path and is refused). */
function certificateKnownActive(cred: DeviceCredential, entry: DeviceEntry): boolean {
  return cred.kind !== 'certificate' || cred.serial === undefined || entry.certificates?.get(cred.serial) === true;
}

function claimHolds(cred: DeviceCredential, entry: DeviceEntry): boolean {
  return cred.kind === 'certificate' || cred.deviceId === undefined || cred.deviceId === entry.device.id;
}

/** What services call when they change something a decision depends on. */
export type AccessInvalidation = Pick<DeviceAuthorizer, 'invalidateDevice' | 'invalidateConnections' | 'invalidateChannel' | 'invalidateAll'>;

export const noInvalidation: AccessInvalidation = {
  invalidateDevice: () => {},
  invalidateConnections: () => {},
  invalidateChannel: () => {},
  invalidateAll: () => {},
};
