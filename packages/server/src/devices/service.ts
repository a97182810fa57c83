import { AppError, unknownIds } from '../core/errors.js';
import { iso, type Clock } from '../core/clock.js';
import { isUuid, randomToken, uuidv7 } from '../core/ids.js';
import type { ServerKeys } from '../auth/keys.js';
import { noInvalidation, type AccessInvalidation } from '../auth/decision.js';
import type { Device, DeviceListQuery, DevicePatch, DeviceRepository, NewDeviceRow } from './repository.js';

export interface NewDevice {
  name: string;
  tags?: string[];
  metadata?: Record<string, unknown>;
  status?: 'enabled' | 'disabled';
}

/** A device with its secret: returned only by create and rotate. */
export interface DeviceWithSecret extends Device {
  secret: string;
}

export const maxBulkDevices = 1000;

export class DeviceService {
  constructor(
    private readonly repo: DeviceRepository,
    private readonly keys: ServerKeys,
    private readonly clock: Clock,
    private readonly access: AccessInvalidation = noInvalidation,
  ) {}

  async create(orgId: string, input: NewDevice): Promise<DeviceWithSecret> {
    const [device] = await this.createMany(orgId, [input]);
    return device!;
  }

  /** Creates up to 1000 devices at once, all or nothing. */
  async createMany(orgId: string, inputs: NewDevice[]): Promise<DeviceWithSecret[]> {
    if (inputs.length > maxBulkDevices) throw new AppError('device.bulk_too_large', `At most ${maxBulkDevices} devices per request, got ${inputs.length}`);
    const now = this.clock.now();
    const secrets: string[] = [];
    const rows: NewDeviceRow[] = inputs.map((d) => {
      const secret = randomToken(32); // 256 bits
      secrets.push(secret);
      return {
        id: uuidv7(now),
        org_id: orgId,
        name: d.name,
        tags: [...new Set(d.tags ?? [])],
        metadata: d.metadata ?? {},
        status: d.status ?? 'enabled',
        secret_hash: this.keys.hashDeviceSecret(secret),
        created_at: iso(now),
        updated_at: iso(now),
      };
    });
    await this.repo.insertMany(rows);
    return rows.map(({ secret_hash: _, ...d }, i) => ({ ...d, secret: secrets[i]! }));
  }

  async get(orgId: string, id: string): Promise<Device> {
    const d = isUuid(id) ? await this.repo.find(orgId, id) : undefined;
    if (!d) throw new AppError('device.not_found');
    return d;
  }

  list(orgId: string, q: DeviceListQuery): Promise<{ total: number; items: Device[] }> {
    return this.repo.list(orgId, q);
  }

  async update(orgId: string, id: string, patch: DevicePatch): Promise<Device> {
    await this.get(orgId, id);
    const d = await this.repo.update(orgId, id, { ...patch, tags: patch.tags && [...new Set(patch.tags)] }, iso(this.clock.now()));
    if (!d) throw new AppError('device.not_found');
    if (patch.status !== undefined) this.access.invalidateDevice(id);
    return d;
  }

  setStatus(orgId: string, id: string, status: 'enabled' | 'disabled'): Promise<Device> {
    return this.update(orgId, id, { status });
  }

  /** Issues a new secret; the old one stops working at once. */
  async rotateSecret(orgId: string, id: string): Promise<DeviceWithSecret> {
    const device = await this.get(orgId, id);
    const secret = randomToken(32);
    const now = iso(this.clock.now());
    if (!(await this.repo.setSecretHash(orgId, id, this.keys.hashDeviceSecret(secret), now))) throw new AppError('device.not_found');
    this.access.invalidateDevice(id);
    return { ...device, updated_at: now, secret };
  }

  async delete(orgId: string, id: string): Promise<void> {
    if (!isUuid(id) || !(await this.repo.delete(orgId, id))) throw new AppError('device.not_found');
    this.access.invalidateDevice(id);
  }

  /** Throws device.not_found naming the ids that are not devices of the organization. */
  async requireAll(orgId: string, ids: string[]): Promise<void> {
    const missing = await this.repo.missing(orgId, ids);
    if (missing.length > 0) throw unknownIds('device.not_found', 'device', missing);
  }
}
