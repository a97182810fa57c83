import type { Database } from '../db/index.js';
import type { OrganizationsTable } from '../db/schema.js';
import type { OrgRole } from './permissions.js';

export type Organization = OrganizationsTable;

export interface OrgWithRole extends Organization {
  /** The caller's role; absent for a platform admin who is not a member. */
  role?: OrgRole;
}

export interface Member {
  user_id: string;
  email: string;
  name: string;
  role: OrgRole;
  created_at: string;
}

export class OrgRepository {
  constructor(private readonly db: Database) {}

  /** Creates the organization and makes `ownerId` its owner, atomically. */
  async insertWithOwner(org: Organization, ownerId: string): Promise<void> {
    await this.db.kysely.transaction().execute(async (trx) => {
      await trx.insertInto('organizations').values(org).execute();
      await trx.insertInto('memberships').values({ org_id: org.id, user_id: ownerId, role: 'owner', created_at: org.created_at }).execute();
    });
  }

  async findById(id: string): Promise<Organization | undefined> {
    return this.db.kysely.selectFrom('organizations').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Organizations `userId` belongs to (every organization when `all`), with the user's role. */
  async listForUser(userId: string, all: boolean, offset: number, limit: number, name?: string): Promise<{ total: number; items: OrgWithRole[] }> {
    let q = this.db.kysely
      .selectFrom('organizations as o')
      .leftJoin('memberships as m', (j) => j.onRef('m.org_id', '=', 'o.id').on('m.user_id', '=', userId));
    if (!all) q = q.where('m.user_id', 'is not', null);
    if (name) q = q.where('o.name', '=', name);
    const { n } = await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const rows = await q.selectAll('o').select('m.role').orderBy('o.created_at').orderBy('o.id').offset(offset).limit(limit).execute();
    return { total: Number(n), items: rows.map(({ role, ...o }) => (role ? { ...o, role } : o)) };
  }

  async update(id: string, patch: { name: string }, now: string): Promise<Organization | undefined> {
    await this.db.kysely.updateTable('organizations').set({ ...patch, updated_at: now }).where('id', '=', id).execute();
    return this.findById(id);
  }

  async delete(id: string): Promise<boolean> {
    const res = await this.db.kysely.deleteFrom('organizations').where('id', '=', id).executeTakeFirst();
    return Number(res.numDeletedRows) === 1;
  }

  async roleOf(orgId: string, userId: string): Promise<OrgRole | undefined> {
    const row = await this.db.kysely.selectFrom('memberships').select('role').where('org_id', '=', orgId).where('user_id', '=', userId).executeTakeFirst();
    return row?.role;
  }

  async listMembers(orgId: string, offset: number, limit: number): Promise<{ total: number; items: Member[] }> {
    const q = this.db.kysely.selectFrom('memberships as m').innerJoin('users as u', 'u.id', 'm.user_id').where('m.org_id', '=', orgId);
    const { n } = await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const items = await q.select(['m.user_id', 'u.email', 'u.name', 'm.role', 'm.created_at']).orderBy('m.created_at').orderBy('m.user_id').offset(offset).limit(limit).execute();
    return { total: Number(n), items };
  }

  async getMember(orgId: string, userId: string): Promise<Member | undefined> {
    return this.db.kysely
      .selectFrom('memberships as m')
      .innerJoin('users as u', 'u.id', 'm.user_id')
      .where('m.org_id', '=', orgId)
      .where('m.user_id', '=', userId)
      .select(['m.user_id', 'u.email', 'u.name', 'm.role', 'm.created_at'])
      .executeTakeFirst();
  }

  /** False when the user is already a member. */
  async addMember(orgId: string, userId: string, role: OrgRole, now: string): Promise<boolean> {
    const res = await this.db.kysely
      .insertInto('memberships')
      .values({ org_id: orgId, user_id: userId, role, created_at: now })
      .onConflict((oc) => oc.columns(['org_id', 'user_id']).doNothing())
      .executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  async setMemberRole(orgId: string, userId: string, role: OrgRole): Promise<void> {
    await this.db.kysely.updateTable('memberships').set({ role }).where('org_id', '=', orgId).where('user_id', '=', userId).execute();
  }

  async removeMember(orgId: string, userId: string): Promise<void> {
    await this.db.kysely.deleteFrom('memberships').where('org_id', '=', orgId).where('user_id', '=', userId).execute();
  }

  /** Organizations in which `userId` is the only owner. */
  async soleOwnerOf(userId: string): Promise<string[]> {
    const rows = await this.db.kysely
      .selectFrom('memberships as m')
      .where('m.user_id', '=', userId)
      .where('m.role', '=', 'owner')
      .where((eb) => eb.not(eb.exists(eb.selectFrom('memberships as o').select('o.user_id').whereRef('o.org_id', '=', 'm.org_id').where('o.role', '=', 'owner').where('o.user_id', '<>', userId))))
      .select('m.org_id')
      .execute();
    return rows.map((r) => r.org_id);
  }

  async countOwners(orgId: string): Promise<number> {
    const { n } = await this.db.kysely.selectFrom('memberships').where('org_id', '=', orgId).where('role', '=', 'owner').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(n);
  }
}
