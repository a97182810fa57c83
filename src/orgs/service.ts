import { AppError } from '../core/errors.js';
import { iso, type Clock } from '../core/clock.js';
import { isUuid, uuidv7 } from '../core/ids.js';
import type { Principal } from '../auth/service.js';
import type { UserService } from '../users/service.js';
import { roleAllows, type Action, type OrgRole } from './permissions.js';
import type { Member, Organization, OrgRepository, OrgWithRole } from './repository.js';

/** The caller's standing in one organization, once checked. */
export interface OrgAccess {
  orgId: string;
  /** Effective role: a platform admin who is not a member acts as owner. */
  role: OrgRole;
}

export class OrgService {
  constructor(
    private readonly repo: OrgRepository,
    private readonly users: UserService,
    private readonly clock: Clock,
    /** Called after an organization is deleted, so caches can drop what they hold for it. */
    private readonly onDeleted: (orgId: string) => void = () => {},
  ) {}

  /**
   * The single tenant check every organization route goes through. An organization the caller
   * is not a member of is reported as not found, so its existence is not revealed.
   */
  async authorize(principal: Principal, orgId: string, action: Action): Promise<OrgAccess> {
    if (!isUuid(orgId)) throw new AppError('org.not_found');
    if (principal.scope && principal.scope.orgId !== orgId) throw new AppError('org.not_found');
    let role = await this.repo.roleOf(orgId, principal.userId);
    if (!role && principal.platformRole === 'admin' && (await this.repo.findById(orgId))) role = 'owner';
    if (!role) throw new AppError('org.not_found');
    if (!roleAllows(role, action)) throw new AppError('auth.forbidden', `Your role (${role}) does not allow ${action}`);
    if (principal.scope && !principal.scope.actions.has(action)) throw new AppError('auth.token_scope', `This access token does not grant ${action}`);
    return { orgId, role };
  }

  /** Refuses to let a user go while an organization depends on them as its only owner. */
  async ensureNotSoleOwner(userId: string): Promise<void> {
    const orgIds = await this.repo.soleOwnerOf(userId);
    if (orgIds.length > 0) throw new AppError('org.last_owner', `The user is the only owner of ${orgIds.length} organization(s) (${orgIds.slice(0, 5).join(', ')}); make someone else owner or delete them first`, { org_ids: orgIds.slice(0, 100) });
  }

  async create(principal: Principal, name: string): Promise<OrgWithRole> {
    if (principal.scope) throw new AppError('auth.token_scope', 'Personal access tokens cannot create organizations');
    const now = this.clock.now();
    const org = { id: uuidv7(now), name, created_at: iso(now), updated_at: iso(now) };
    await this.repo.insertWithOwner(org, principal.userId);
    return { ...org, role: 'owner' };
  }

  async list(principal: Principal, offset: number, limit: number, name?: string): Promise<{ total: number; items: OrgWithRole[] }> {
    if (principal.scope) {
      const access = await this.authorize(principal, principal.scope.orgId, 'org:read').catch(() => undefined);
      const org = access && (await this.repo.findById(access.orgId));
      const items = org && (!name || org.name === name) ? [{ ...org, role: access.role }] : [];
      return { total: items.length, items: items.slice(offset, offset + limit) };
    }
    return this.repo.listForUser(principal.userId, principal.platformRole === 'admin', offset, limit, name);
  }

  async get(access: OrgAccess): Promise<OrgWithRole> {
    const org = await this.repo.findById(access.orgId);
    if (!org) throw new AppError('org.not_found');
    return { ...org, role: access.role };
  }

  async update(access: OrgAccess, name: string): Promise<Organization> {
    const org = await this.repo.update(access.orgId, { name }, iso(this.clock.now()));
    if (!org) throw new AppError('org.not_found');
    return org;
  }

  async delete(access: OrgAccess): Promise<void> {
    if (!(await this.repo.delete(access.orgId))) throw new AppError('org.not_found');
    this.onDeleted(access.orgId);
  }

  listMembers(access: OrgAccess, offset: number, limit: number): Promise<{ total: number; items: Member[] }> {
    return this.repo.listMembers(access.orgId, offset, limit);
  }

  async getMember(access: OrgAccess, userId: string): Promise<Member> {
    const m = isUuid(userId) ? await this.repo.getMember(access.orgId, userId) : undefined;
    if (!m) throw new AppError('org.member_not_found');
    return m;
  }

  /** Adds an existing user by email. Only owners may grant the owner role. */
  async addMember(access: OrgAccess, email: string, role: OrgRole): Promise<Member> {
    if (role === 'owner' && access.role !== 'owner') throw new AppError('auth.forbidden', 'Only owners may add owners');
    const user = await this.users.findByEmail(email);
    if (!user) throw new AppError('user.not_found', `No user has the email ${email}; a platform admin creates users with POST /users`);
    if (!(await this.repo.addMember(access.orgId, user.id, role, iso(this.clock.now())))) throw new AppError('org.member_exists');
    return (await this.repo.getMember(access.orgId, user.id))!;
  }

  async changeRole(access: OrgAccess, userId: string, role: OrgRole): Promise<Member> {
    const member = await this.getMember(access, userId);
    if ((role === 'owner' || member.role === 'owner') && access.role !== 'owner') throw new AppError('auth.forbidden', 'Only owners may grant or change the owner role');
    if (member.role === 'owner' && role !== 'owner' && (await this.repo.countOwners(access.orgId)) <= 1) throw new AppError('org.last_owner');
    await this.repo.setMemberRole(access.orgId, userId, role);
    return { ...member, role };
  }

  async removeMember(access: OrgAccess, userId: string): Promise<void> {
    const member = await this.getMember(access, userId);
    if (member.role === 'owner' && access.role !== 'owner') throw new AppError('auth.forbidden', 'Only owners may remove owners');
    if (member.role === 'owner' && (await this.repo.countOwners(access.orgId)) <= 1) throw new AppError('org.last_owner');
    await this.repo.removeMember(access.orgId, userId);
  }
}
