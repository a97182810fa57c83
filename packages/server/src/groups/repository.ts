import { jsonColumn, type Database } from '../db/index.js';
import { OrgResourceRepository } from '../db/resources.js';
import type { GroupsTable } from '../db/schema.js';

export interface Group {
  id: string;
  org_id: string;
  name: string;
  description: string;
  tags: string[];
  metadata: Record<string, unknown>;
  created_at: string;
  updated_at: string;
}

function toGroup(row: GroupsTable): Group {
  return {
    id: row.id,
    org_id: row.org_id,
    name: row.name,
    description: row.description,
    tags: jsonColumn<string[]>(row.tags),
    metadata: jsonColumn<Record<string, unknown>>(row.metadata),
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

export class GroupRepository extends OrgResourceRepository<'groups', Group> {
  constructor(db: Database) {
    super(db, 'groups', toGroup);
  }

  /** Adds devices to a group; devices already in it are left as they are. */
  async addDevices(groupId: string, deviceIds: string[], now: string): Promise<void> {
    if (deviceIds.length === 0) return;
    await this.db.kysely.transaction().execute(async (trx) => {
      for (let i = 0; i < deviceIds.length; i += 500) {
        await trx
          .insertInto('group_devices')
          .values(deviceIds.slice(i, i + 500).map((device_id) => ({ group_id: groupId, device_id, created_at: now })))
          .onConflict((oc) => oc.columns(['group_id', 'device_id']).doNothing())
          .execute();
      }
    });
  }

  async removeDevices(groupId: string, deviceIds: string[]): Promise<void> {
    for (let i = 0; i < deviceIds.length; i += 500) {
      await this.db.kysely.deleteFrom('group_devices').where('group_id', '=', groupId).where('device_id', 'in', deviceIds.slice(i, i + 500)).execute();
    }
  }
}
