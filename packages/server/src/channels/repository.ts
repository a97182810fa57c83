import { jsonColumn, type Database } from '../db/index.js';
import { OrgResourceRepository } from '../db/resources.js';
import type { ChannelsTable } from '../db/schema.js';

export interface Channel {
  id: string;
  org_id: string;
  name: string;
  tags: string[];
  metadata: Record<string, unknown>;
  created_at: string;
  updated_at: string;
}

function toChannel(row: ChannelsTable): Channel {
  return {
    id: row.id,
    org_id: row.org_id,
    name: row.name,
    tags: jsonColumn<string[]>(row.tags),
    metadata: jsonColumn<Record<string, unknown>>(row.metadata),
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

export class ChannelRepository extends OrgResourceRepository<'channels', Channel> {
  constructor(db: Database) {
    super(db, 'channels', toChannel);
  }

  /** The organization of a channel, whichever it is (for routes addressed by channel id alone). */
  async orgOf(id: string): Promise<string | undefined> {
    const row = await this.db.kysely.selectFrom('channels').select('org_id').where('id', '=', id).executeTakeFirst();
    return row?.org_id;
  }
}
