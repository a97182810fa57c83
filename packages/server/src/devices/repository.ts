import { sql, type RawBuilder } from 'kysely';
import { jsonColumn, type Database } from '../db/index.js';
import type { ListQuery } from '../db/list.js';
import { OrgResourceRepository } from '../db/resources.js';
import type { DevicesTable } from '../db/schema.js';

export type DeviceStatus = 'enabled' | 'disabled';

export interface Device {
  id: string;
  org_id: string;
  name: string;
  tags: string[];
  metadata: Record<string, unknown>;
  status: DeviceStatus;
  created_at: string;
  updated_at: string;
}

export interface DeviceListQuery extends ListQuery {
  status?: DeviceStatus;
  group_id?: string;
  /** Devices in this presence state (presence/): one never heard from is offline. */
  presence?: 'online' | 'idle' | 'offline';
}

export interface DevicePatch {
  name?: string;
  tags?: string[];
  metadata?: Record<string, unknown>;
  status?: DeviceStatus;
}

export type NewDeviceRow = Device & { secret_hash: string };

function toDevice(row: DevicesTable): Device {
  return {
    id: row.id,
    org_id: row.org_id,
    name: row.name,
    tags: jsonColumn<string[]>(row.tags),
    metadata: jsonColumn<Record<string, unknown>>(row.metadata),
    status: row.status,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

export class DeviceRepository extends OrgResourceRepository<'devices', Device> {
  constructor(db: Database) {
    super(db, 'devices', toDevice);
  }

  override list(orgId: string, q: DeviceListQuery): Promise<{ total: number; items: Device[] }> {
    const extra: RawBuilder<boolean>[] = [];
    if (q.status) extra.push(sql<boolean>`devices.status = ${q.status}`);
    if (q.group_id) extra.push(sql<boolean>`devices.id IN (SELECT device_id FROM group_devices WHERE group_id = ${q.group_id})`);
    if (q.presence === 'offline') extra.push(sql<boolean>`devices.id NOT IN (SELECT device_id FROM device_presence WHERE org_id = ${orgId} AND state <> 'offline')`);
    else if (q.presence) extra.push(sql<boolean>`devices.id IN (SELECT device_id FROM device_presence WHERE org_id = ${orgId} AND state = ${q.presence})`);
    return super.list(orgId, q, extra);
  }

  async setSecretHash(orgId: string, id: string, hash: string, now: string): Promise<boolean> {
    const res = await this.db.kysely.updateTable('devices').set({ secret_hash: hash, updated_at: now }).where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }
}
