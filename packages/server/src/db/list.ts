import { sql, type RawBuilder } from 'kysely';
import { sqliteLowerFunction, type Database, type DatabaseKind } from './database.js';

/** Filters and paging shared by every listable resource (devices, channels, groups). */
export interface ListQuery {
  offset: number;
  limit: number;
  sort: 'name' | 'created_at' | 'updated_at';
  dir: 'asc' | 'desc';
  /** Case-insensitive substring of the name. */
  name?: string;
  /** Resources carrying this exact tag. */
  tag?: string;
  /** Resources whose metadata has each of these top-level keys equal to the given scalar. */
  metadata?: Record<string, string | number | boolean | null>;
}

export interface Page<T> {
  total: number;
  offset: number;
  limit: number;
  items: T[];
}

/** Text with LIKE's wildcards escaped (for `LIKE … ESCAPE '\\'`). */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

function likePattern(text: string): string {
  return `%${escapeLike(text)}%`;
}

/** SQL conditions for the common filters on `table` (which has name, tags and metadata columns). */
export function commonFilters(kind: DatabaseKind, table: string, q: Pick<ListQuery, 'name' | 'tag' | 'metadata'>): RawBuilder<boolean>[] {
  const t = sql.table(table);
  const out: RawBuilder<boolean>[] = [];
  if (q.name) {
    // SQLite's LIKE folds ASCII only; fold the rest in JS so that `äpf` finds `Äpfel` as ILIKE does
    out.push(kind === 'postgres' ? sql<boolean>`${t}.name ILIKE ${likePattern(q.name)} ESCAPE '\\'` : sql<boolean>`${sql.raw(sqliteLowerFunction)}(${t}.name) LIKE ${likePattern(q.name.toLowerCase())} ESCAPE '\\'`);
  }
  if (q.tag !== undefined) {
    out.push(kind === 'postgres' ? sql<boolean>`jsonb_exists(${t}.tags, ${q.tag})` : sql<boolean>`EXISTS (SELECT 1 FROM json_each(${t}.tags) WHERE json_each.value = ${q.tag})`);
  }
  if (q.metadata && Object.keys(q.metadata).length > 0) {
    if (kind === 'postgres') {
      out.push(sql<boolean>`${t}.metadata @> ${JSON.stringify(q.metadata)}::jsonb`);
    } else {
      for (const [key, value] of Object.entries(q.metadata)) {
        const path = `$."${key}"`; // keys are checked at the edge: no quote or backslash
        if (value === null) out.push(sql<boolean>`json_type(${t}.metadata, ${path}) = 'null'`);
        else if (typeof value === 'boolean') out.push(sql<boolean>`json_type(${t}.metadata, ${path}) = ${value ? 'true' : 'false'}`);
        else if (typeof value === 'number') out.push(sql<boolean>`(json_type(${t}.metadata, ${path}) IN ('integer', 'real') AND json_extract(${t}.metadata, ${path}) = ${value})`);
        else out.push(sql<boolean>`(json_type(${t}.metadata, ${path}) = 'text' AND json_extract(${t}.metadata, ${path}) = ${value})`);
      }
    }
  }
  return out;
}

/** True when a metadata filter key can be used safely in a JSON path. */
export function isMetadataKey(key: string): boolean {
  return key.length > 0 && key.length <= 128 && !/["\\]/.test(key);
}

/**
 * One page of an organization's rows of `table`, filtered by `conditions`, sorted by `q.sort`
 * then id (so pages are stable), with the total matching count.
 */
export async function listPage<Row>(db: Database, table: 'devices' | 'channels' | 'groups', orgId: string, q: ListQuery, conditions: RawBuilder<boolean>[]): Promise<{ total: number; rows: Row[] }> {
  let base = db.kysely.selectFrom(table).where('org_id', '=', orgId);
  for (const c of [...commonFilters(db.kind, table, q), ...conditions]) base = base.where(c);
  const { n } = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  // Names sort by code point on both databases; PostgreSQL would otherwise use the database's collation.
  const sortKey = q.sort === 'name' && db.kind === 'postgres' ? sql`${sql.ref(`${table}.name`)} COLLATE "C"` : sql.ref(`${table}.${q.sort}`);
  const rows = await base.selectAll().orderBy(sortKey, q.dir).orderBy('id', q.dir).offset(q.offset).limit(q.limit).execute();
  return { total: Number(n), rows: rows as Row[] };
}
