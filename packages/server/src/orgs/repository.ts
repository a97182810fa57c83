import type { Database } from '../db/index.js';
import type { OrganizationsTable, OrgInvitationsTable } from '../db/schema.js';
import type { OrgRole } from '../auth/permissions.js';

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

export type Invitation = Omit<OrgInvitationsTable, 'invited_by'>;

/** An invitation as its invited user sees it: with the organization's name. */
export interface ReceivedInvitation extends Invitation {
  org_name: string;
}

const invitationColumns = ['i.id', 'i.org_id', 'i.email', 'i.role', 'i.created_at', 'i.expires_at'] as const;

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

  /** Invites `email` (replacing a pending invitation into the same organization: new role, new expiry). */
  async upsertInvitation(row: OrgInvitationsTable): Promise<Invitation> {
    await this.db.kysely
      .insertInto('org_invitations')
      .values(row)
      .onConflict((oc) => oc.columns(['org_id', 'email']).doUpdateSet({ id: row.id, role: row.role, invited_by: row.invited_by, created_at: row.created_at, expires_at: row.expires_at }))
      .execute();
    const { invited_by: _, ...invitation } = row;
    return invitation;
  }

  async listInvitationsOfOrg(orgId: string, now: string, offset: number, limit: number): Promise<{ total: number; items: Invitation[] }> {
    const q = this.db.kysely.selectFrom('org_invitations as i').where('i.org_id', '=', orgId).where('i.expires_at', '>', now);
    const { n } = await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const items = await q.select(invitationColumns).orderBy('i.created_at').orderBy('i.id').offset(offset).limit(limit).execute();
    return { total: Number(n), items };
  }

  async listInvitationsFor(email: string, now: string, offset: number, limit: number): Promise<{ total: number; items: ReceivedInvitation[] }> {
    const q = this.db.kysely.selectFrom('org_invitations as i').innerJoin('organizations as o', 'o.id', 'i.org_id').where('i.email', '=', email).where('i.expires_at', '>', now);
    const { n } = await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const items = await q.select([...invitationColumns, 'o.name as org_name']).orderBy('i.created_at').orderBy('i.id').offset(offset).limit(limit).execute();
    return { total: Number(n), items };
  }

  /** The pending invitation `id` of `email`, when it has not expired. */
  async findInvitationFor(id: string, email: string, now: string): Promise<Invitation | undefined> {
    return this.db.kysely.selectFrom('org_invitations as i').select(invitationColumns).where('i.id', '=', id).where('i.email', '=', email).where('i.expires_at', '>', now).executeTakeFirst();
  }

  /** Deletes the invitation; with `email`, only if it is addressed to that email. False when there was none. */
  async deleteInvitation(id: string, scope: { orgId?: string; email?: string }): Promise<boolean> {
    let q = this.db.kysely.deleteFrom('org_invitations').where('id', '=', id);
    if (scope.orgId !== undefined) q = q.where('org_id', '=', scope.orgId);
    if (scope.email !== undefined) q = q.where('email', '=', scope.email);
    const res = await q.executeTakeFirst();
    return Number(res.numDeletedRows) === 1;
  }

  /** Makes the invited user a member with the invitation's role and drops the invitation, atomically. False when it was taken meanwhile. */
  async acceptInvitation(invitation: Invitation, userId: string, now: string): Promise<boolean> {
    return this.db.kysely.transaction().execute(async (trx) => {
      const res = await trx.deleteFrom('org_invitations').where('id', '=', invitation.id).executeTakeFirst();
      if (Number(res.numDeletedRows) !== 1) return false;
      await trx.insertInto('memberships').values({ org_id: invitation.org_id, user_id: userId, role: invitation.role, created_at: now }).onConflict((oc) => oc.columns(['org_id', 'user_id']).doNothing()).execute();
      return true;
    });
  }
}
