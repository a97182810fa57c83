import { jsonColumn, type Database } from '../db/index.js';
import { OrgResourceRepository } from '../db/resources.js';
import type { ChannelsTable } from '../db/schema.js';
import { isChannelContentType, type ChannelContentType } from './content-type.js';

export interface Channel {
  id: string;
  org_id: string;
  name: string;
  tags: string[];
  metadata: Record<string, unknown>;
  /** What payloads that come without a content type are taken as. */
  content_type: ChannelContentType;
  created_at: string;
  updated_at: string;
}

/** What the messaging service needs of a channel to take a message on it. */
export interface ChannelRouting {
  orgId: string;
  contentType: ChannelContentType;
}

/** A value this version does not know (written by a newer one, or by hand) reads as opaque bytes: nothing is refused, nothing lost. */
function contentTypeOf(value: string): ChannelContentType {
  return isChannelContentType(value) ? value : 'application/octet-stream';
}

function toChannel(row: ChannelsTable): Channel {
  return {
    id: row.id,
    org_id: row.org_id,
    name: row.name,
    tags: jsonColumn<string[]>(row.tags),
    metadata: jsonColumn<Record<string, unknown>>(row.metadata),
    content_type: contentTypeOf(row.content_type),
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

export class ChannelRepository extends OrgResourceRepository<'channels', Channel> {
  constructor(db: Database) {
    super(db, 'channels', toChannel);
  }

  /** The organization and content type of a channel, whichever organization it is in (for routes addressed by channel id alone). */
  async routing(id: string): Promise<ChannelRouting | undefined> {
    const row = await this.db.kysely.selectFrom('channels').select(['org_id', 'content_type']).where('id', '=', id).executeTakeFirst();
    return row && { orgId: row.org_id, contentType: contentTypeOf(row.content_type) };
  }
}
