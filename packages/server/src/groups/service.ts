import { AppError } from '../core/errors.js';
import { iso, type Clock } from '../core/clock.js';
import { isUuid, uuidv7 } from '../core/ids.js';
import type { ListQuery } from '../db/list.js';
import type { DeviceService } from '../devices/service.js';
import type { Group, GroupRepository } from './repository.js';

export interface NewGroup {
  name: string;
  description?: string;
  tags?: string[];
  metadata?: Record<string, unknown>;
}

export const maxGroupDevicesPerRequest = 1000;

export class GroupService {
  constructor(
    private readonly repo: GroupRepository,
    private readonly devices: DeviceService,
    private readonly clock: Clock,
  ) {}

  async create(orgId: string, input: NewGroup): Promise<Group> {
    const now = this.clock.now();
    const group: Group = {
      id: uuidv7(now),
      org_id: orgId,
      name: input.name,
      description: input.description ?? '',
      tags: [...new Set(input.tags ?? [])],
      metadata: input.metadata ?? {},
      created_at: iso(now),
      updated_at: iso(now),
    };
    await this.repo.insertMany([group]);
    return group;
  }

  async get(orgId: string, id: string): Promise<Group> {
    const g = isUuid(id) ? await this.repo.find(orgId, id) : undefined;
    if (!g) throw new AppError('group.not_found');
    return g;
  }

  list(orgId: string, q: ListQuery): Promise<{ total: number; items: Group[] }> {
    return this.repo.list(orgId, q);
  }

  async update(orgId: string, id: string, patch: Partial<NewGroup>): Promise<Group> {
    await this.get(orgId, id);
    const g = await this.repo.update(orgId, id, { ...patch, tags: patch.tags && [...new Set(patch.tags)] }, iso(this.clock.now()));
    if (!g) throw new AppError('group.not_found');
    return g;
  }

  async delete(orgId: string, id: string): Promise<void> {
    if (!isUuid(id) || !(await this.repo.delete(orgId, id))) throw new AppError('group.not_found');
  }

  private checkSize(deviceIds: string[]): string[] {
    if (deviceIds.length > maxGroupDevicesPerRequest) throw new AppError('request.invalid', `At most ${maxGroupDevicesPerRequest} device ids per request`);
    return [...new Set(deviceIds)];
  }

  async addDevices(orgId: string, groupId: string, deviceIds: string[]): Promise<void> {
    const ids = this.checkSize(deviceIds);
    await this.get(orgId, groupId);
    await this.devices.requireAll(orgId, ids);
    await this.repo.addDevices(groupId, ids, iso(this.clock.now()));
  }

  async removeDevices(orgId: string, groupId: string, deviceIds: string[]): Promise<void> {
    const ids = this.checkSize(deviceIds);
    await this.get(orgId, groupId);
    await this.repo.removeDevices(groupId, ids);
  }
}
