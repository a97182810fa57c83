import { sql } from 'kysely';
import type { Database } from '../db/index.js';
import type { ConnectionsTable } from '../db/schema.js';

export type ConnectionType = 'publish' | 'subscribe';

export interface ConnectedDevice {
  device_id: string;
  name: string;
  status: 'enabled' | 'disabled';
  types: ConnectionType[];
}

export interface ConnectedChannel {
  channel_id: string;
  name: string;
  types: ConnectionType[];
}

interface PairRow {
  id: string;
  name: string;
  status?: 'enabled' | 'disabled';
  type: ConnectionType;
}

/** Groups (id, type) rows, ordered by id, into one entry per id. */
function groupTypes(rows: PairRow[]): Map<string, { name: string; status?: 'enabled' | 'disabled'; types: ConnectionType[] }> {
  const out = new Map<string, { name: string; status?: 'enabled' | 'disabled'; types: ConnectionType[] }>();
  for (const r of rows) {
    const e = out.get(r.id) ?? { name: r.name, ...(r.status ? { status: r.status } : {}), types: [] };
    e.types.push(r.type);
    out.set(r.id, e);
  }
  for (const e of out.values()) e.types.sort();
  return out;
}

export class ConnectionRepository {
  constructor(private readonly db: Database) {}

  /** Inserts every device × channel × type; existing connections are kept. */
  async connect(orgId: string, deviceIds: string[], channelIds: string[], types: ConnectionType[], now: string): Promise<void> {
    const rows: ConnectionsTable[] = [];
    for (const device_id of deviceIds) for (const channel_id of channelIds) for (const type of types) rows.push({ org_id: orgId, device_id, channel_id, type, created_at: now });
    await this.db.kysely.transaction().execute(async (trx) => {
      for (let i = 0; i < rows.length; i += 500) {
        await trx
          .insertInto('connections')
          .values(rows.slice(i, i + 500))
          .onConflict((oc) => oc.columns(['device_id', 'channel_id', 'type']).doNothing())
          .execute();
      }
    });
  }

  async disconnect(orgId: string, deviceIds: string[], channelIds: string[], types: ConnectionType[]): Promise<void> {
    await this.db.kysely.transaction().execute(async (trx) => {
      for (let i = 0; i < deviceIds.length; i += 500) {
        await trx
          .deleteFrom('connections')
          .where('org_id', '=', orgId)
          .where('device_id', 'in', deviceIds.slice(i, i + 500))
          .where('channel_id', 'in', channelIds)
          .where('type', 'in', types)
          .execute();
      }
    });
  }

  /** Devices connected to a channel, a page of distinct devices ordered by id. */
  async channelDevices(orgId: string, channelId: string, offset: number, limit: number): Promise<{ total: number; items: ConnectedDevice[] }> {
    const base = this.db.kysely.selectFrom('connections').where('org_id', '=', orgId).where('channel_id', '=', channelId);
    const { n } = await base.select(sql<number>`COUNT(DISTINCT device_id)`.as('n')).executeTakeFirstOrThrow();
    const page = base.select('device_id').distinct().orderBy('device_id').offset(offset).limit(limit);
    const rows = (await this.db.kysely
      .selectFrom('connections as c')
      .innerJoin('devices as d', 'd.id', 'c.device_id')
      .where('c.channel_id', '=', channelId)
      .where('c.device_id', 'in', page)
      .select(['d.id as id', 'd.name as name', 'd.status as status', 'c.type as type'])
      .orderBy('d.id')
      .execute()) as PairRow[];
    const items = [...groupTypes(rows)].map(([device_id, e]) => ({ device_id, name: e.name, status: e.status!, types: e.types }));
    return { total: Number(n), items };
  }

  /** Channels a device is connected to, a page of distinct channels ordered by id. */
  async deviceChannels(orgId: string, deviceId: string, offset: number, limit: number): Promise<{ total: number; items: ConnectedChannel[] }> {
    const base = this.db.kysely.selectFrom('connections').where('org_id', '=', orgId).where('device_id', '=', deviceId);
    const { n } = await base.select(sql<number>`COUNT(DISTINCT channel_id)`.as('n')).executeTakeFirstOrThrow();
    const page = base.select('channel_id').distinct().orderBy('channel_id').offset(offset).limit(limit);
    const rows = (await this.db.kysely
      .selectFrom('connections as c')
      .innerJoin('channels as ch', 'ch.id', 'c.channel_id')
      .where('c.device_id', '=', deviceId)
      .where('c.channel_id', 'in', page)
      .select(['ch.id as id', 'ch.name as name', 'c.type as type'])
      .orderBy('ch.id')
      .execute()) as PairRow[];
    const items = [...groupTypes(rows)].map(([channel_id, e]) => ({ channel_id, name: e.name, types: e.types }));
    return { total: Number(n), items };
  }
}
