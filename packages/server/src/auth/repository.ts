import type { Database } from '../db/index.js';
import { jsonColumn } from '../db/index.js';
import type { AccessTokensTable, RefreshTokensTable } from '../db/schema.js';
import type { Action } from './permissions.js';

export interface PersonalAccessToken {
  id: string;
  user_id: string;
  name: string;
  org_id: string;
  actions: Action[];
  expires_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
  created_at: string;
}

function toPat(row: AccessTokensTable): PersonalAccessToken {
  return {
    id: row.id,
    user_id: row.user_id,
    name: row.name,
    org_id: row.org_id,
    actions: jsonColumn<Action[]>(row.actions),
    expires_at: row.expires_at,
    revoked_at: row.revoked_at,
    last_used_at: row.last_used_at,
    created_at: row.created_at,
  };
}

export class TokenRepository {
  constructor(private readonly db: Database) {}

  async insertRefresh(row: RefreshTokensTable): Promise<void> {
    await this.db.kysely.insertInto('refresh_tokens').values(row).execute();
  }

  async findRefresh(hash: string): Promise<RefreshTokensTable | undefined> {
    return this.db.kysely.selectFrom('refresh_tokens').selectAll().where('token_hash', '=', hash).executeTakeFirst();
  }

  /** Marks the token revoked if it was not; true when this call revoked it (so two racing refreshes cannot both win). */
  async revokeRefresh(id: string, now: string): Promise<boolean> {
    const res = await this.db.kysely.updateTable('refresh_tokens').set({ revoked_at: now }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  async revokeFamily(familyId: string, now: string): Promise<void> {
    await this.db.kysely.updateTable('refresh_tokens').set({ revoked_at: now }).where('family_id', '=', familyId).where('revoked_at', 'is', null).execute();
  }

  async revokeAllRefreshOfUser(userId: string, now: string): Promise<void> {
    await this.db.kysely.updateTable('refresh_tokens').set({ revoked_at: now }).where('user_id', '=', userId).where('revoked_at', 'is', null).execute();
  }

  /** Drops refresh tokens that expired before `now` (housekeeping). */
  async pruneRefresh(now: string): Promise<number> {
    const res = await this.db.kysely.deleteFrom('refresh_tokens').where('expires_at', '<', now).executeTakeFirst();
    return Number(res.numDeletedRows);
  }

  async insertPat(row: Omit<AccessTokensTable, 'actions'> & { actions: Action[] }): Promise<void> {
    await this.db.kysely.insertInto('access_tokens').values({ ...row, actions: JSON.stringify(row.actions) }).execute();
  }

  async findPatByHash(hash: string): Promise<PersonalAccessToken | undefined> {
    const row = await this.db.kysely.selectFrom('access_tokens').selectAll().where('token_hash', '=', hash).executeTakeFirst();
    return row && toPat(row);
  }

  async touchPat(id: string, now: string): Promise<void> {
    await this.db.kysely.updateTable('access_tokens').set({ last_used_at: now }).where('id', '=', id).execute();
  }

  async listPats(userId: string, offset: number, limit: number): Promise<{ total: number; items: PersonalAccessToken[] }> {
    const q = this.db.kysely.selectFrom('access_tokens').where('user_id', '=', userId);
    const { n } = await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const rows = await q.selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').offset(offset).limit(limit).execute();
    return { total: Number(n), items: rows.map(toPat) };
  }

  async revokePat(userId: string, id: string, now: string): Promise<boolean> {
    const res = await this.db.kysely.updateTable('access_tokens').set({ revoked_at: now }).where('id', '=', id).where('user_id', '=', userId).where('revoked_at', 'is', null).executeTakeFirst();
    if (Number(res.numUpdatedRows) === 1) return true;
    const exists = await this.db.kysely.selectFrom('access_tokens').select('id').where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
    return exists !== undefined; // revoking twice is fine
  }
}
