import type { RawBuilder } from 'kysely';
import { isUuid } from '../core/ids.js';
import type { Database } from './database.js';
import { listPage, type ListQuery } from './list.js';
import type { ChannelsTable, DevicesTable, GroupsTable } from './schema.js';

type ResourceTable = 'devices' | 'channels' | 'groups';
type RowOf<T extends ResourceTable> = T extends 'devices' ? DevicesTable : T extends 'channels' ? ChannelsTable : GroupsTable;

const jsonFields = new Set(['tags', 'metadata']);

function encode(values: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) if (v !== undefined) out[k] = jsonFields.has(k) ? JSON.stringify(v) : v;
  return out;
}

/**
 * Storage shared by the organization-owned resources (devices, channels, groups): every query is
 * scoped by organization, so a row of another tenant is indistinguishable from a missing one.
 */
export class OrgResourceRepository<T extends ResourceTable, Item> {
  constructor(
    protected readonly db: Database,
    protected readonly table: T,
    protected readonly toItem: (row: RowOf<T>) => Item,
  ) {}

  /** Inserts all rows in one transaction (bulk create is all or nothing). */
  async insertMany(rows: object[]): Promise<void> {
    const values = rows.map((r) => encode(r as Record<string, unknown>));
    await this.db.kysely.transaction().execute(async (trx) => {
      for (let i = 0; i < values.length; i += 200) await trx.insertInto(this.table).values(values.slice(i, i + 200) as never).execute();
    });
  }

  async find(orgId: string, id: string): Promise<Item | undefined> {
    const row = await this.db.kysely.selectFrom(this.table as 'devices').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
    return row && this.toItem(row as RowOf<T>);
  }

  async list(orgId: string, q: ListQuery, extra: RawBuilder<boolean>[] = []): Promise<{ total: number; items: Item[] }> {
    const { total, rows } = await listPage<RowOf<T>>(this.db, this.table, orgId, q, extra);
    return { total, items: rows.map(this.toItem) };
  }

  /** Applies the defined fields of `patch`; undefined when there is no such row. */
  async update(orgId: string, id: string, patch: Record<string, unknown>, now: string): Promise<Item | undefined> {
    await this.db.kysely
      .updateTable(this.table as 'devices')
      .set({ ...encode(patch), updated_at: now })
      .where('org_id', '=', orgId)
      .where('id', '=', id)
      .execute();
    return this.find(orgId, id);
  }

  async delete(orgId: string, id: string): Promise<boolean> {
    const res = await this.db.kysely.deleteFrom(this.table as 'devices').where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
    return Number(res.numDeletedRows) === 1;
  }

  /** The ids among `ids` that are not rows of the organization (malformed ids included). */
  async missing(orgId: string, ids: string[]): Promise<string[]> {
    const wellFormed = ids.filter(isUuid);
    const found = new Set<string>();
    for (let i = 0; i < wellFormed.length; i += 500) {
      const rows = await this.db.kysely.selectFrom(this.table as 'devices').select('id').where('org_id', '=', orgId).where('id', 'in', wellFormed.slice(i, i + 500)).execute();
      for (const r of rows) found.add(r.id);
    }
    return ids.filter((id) => !found.has(id));
  }
}


