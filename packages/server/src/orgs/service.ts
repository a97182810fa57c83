import { AppError } from '../core/errors.js';
import { iso, type Clock } from '../core/clock.js';
import { isUuid, uuidv7 } from '../core/ids.js';
import type { Principal } from '../auth/service.js';
import type { PrincipalCache } from '../auth/principals.js';
import type { User } from '../users/repository.js';
import type { UserService } from '../users/service.js';
import { roleAllows, type Action, type OrgRole } from '../auth/permissions.js';
import { normaliseEmail } from '../users/service.js';
import type { Invitation, Member, Organization, OrgRepository, OrgWithRole, ReceivedInvitation } from './repository.js';

/** How long an invitation into an organization waits for its user to accept. */
export const invitationTtlMs = 7 * 86_400_000;

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
    /** Roles read for requests (auth/principals.ts), told of every membership change here. */
    private readonly principals?: PrincipalCache<User, OrgRole>,
  ) {}

  /** Memberships of the organization changed: no process answers from what it kept. */
  private membershipsChanged(orgId: string): void {
    this.principals?.orgChanged(orgId);
  }

  /**
   * The single tenant check every organization route goes through. An organization the caller
   * is not a member of is reported as not found, so its existence is not revealed.
   */
  async authorize(principal: Principal, orgId: string, action: Action): Promise<OrgAccess> {
    if (!isUuid(orgId)) throw new AppError('org.not_found');
    if (principal.scope && principal.scope.orgId !== orgId) throw new AppError('org.not_found');
    let role = this.principals ? await this.principals.role(orgId, principal.userId, () => this.repo.roleOf(orgId, principal.userId)) : await this.repo.roleOf(orgId, principal.userId);
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
    this.membershipsChanged(access.orgId);
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

  /**
   * Adds a member by email. A platform admin adds an existing user at once (they see every user
   * anyway). Anyone else invites: the answer is the same whether or not the email has an account,
   * and membership starts only when its user accepts. Only owners may add or invite owners.
   */
  async addMember(access: OrgAccess, principal: Principal, email: string, role: OrgRole): Promise<{ member: Member } | { invitation: Invitation }> {
    if (role === 'owner' && access.role !== 'owner') throw new AppError('auth.forbidden', 'Only owners may add owners');
    if (principal.platformRole === 'admin' && !principal.scope) return { member: await this.addExisting(access, email, role) };
    return { invitation: await this.invite(access, principal, email, role) };
  }

  private async addExisting(access: OrgAccess, email: string, role: OrgRole): Promise<Member> {
    const user = await this.users.findByEmail(email);
    if (!user) throw new AppError('user.not_found', `No user has the email ${email}; a platform admin creates users with POST /users`);
    if (!(await this.repo.addMember(access.orgId, user.id, role, iso(this.clock.now())))) throw new AppError('org.member_exists');
    this.membershipsChanged(access.orgId);
    return (await this.repo.getMember(access.orgId, user.id))!;
  }

  private async invite(access: OrgAccess, principal: Principal, email: string, role: OrgRole): Promise<Invitation> {
    const address = normaliseEmail(email);
    // telling a member apart reveals nothing the inviter cannot list (members:write implies members:read)
    const user = await this.users.findByEmail(address);
    if (user && (await this.repo.roleOf(access.orgId, user.id))) throw new AppError('org.member_exists');
    const now = this.clock.now();
    return this.repo.upsertInvitation({ id: uuidv7(now), org_id: access.orgId, email: address, role, invited_by: principal.userId, created_at: iso(now), expires_at: iso(now + invitationTtlMs) });
  }

  listInvitations(access: OrgAccess, offset: number, limit: number): Promise<{ total: number; items: Invitation[] }> {
    return this.repo.listInvitationsOfOrg(access.orgId, iso(this.clock.now()), offset, limit);
  }

  async withdrawInvitation(access: OrgAccess, id: string): Promise<void> {
    if (!isUuid(id) || !(await this.repo.deleteInvitation(id, { orgId: access.orgId }))) throw new AppError('org.invitation_not_found');
  }

  /** The caller's pending invitations (sent to their account's email). */
  invitationsOf(principal: Principal, offset: number, limit: number): Promise<{ total: number; items: ReceivedInvitation[] }> {
    return this.repo.listInvitationsFor(principal.email, iso(this.clock.now()), offset, limit);
  }

  async acceptInvitation(principal: Principal, id: string): Promise<Member> {
    const now = iso(this.clock.now());
    const invitation = isUuid(id) ? await this.repo.findInvitationFor(id, principal.email, now) : undefined;
    if (!invitation || !(await this.repo.acceptInvitation(invitation, principal.userId, now))) throw new AppError('org.invitation_not_found');
    this.membershipsChanged(invitation.org_id);
    return (await this.repo.getMember(invitation.org_id, principal.userId))!;
  }

  async declineInvitation(principal: Principal, id: string): Promise<void> {
    if (!isUuid(id) || !(await this.repo.deleteInvitation(id, { email: principal.email }))) throw new AppError('org.invitation_not_found');
  }

  async changeRole(access: OrgAccess, userId: string, role: OrgRole): Promise<Member> {
    const member = await this.getMember(access, userId);
    if ((role === 'owner' || member.role === 'owner') && access.role !== 'owner') throw new AppError('auth.forbidden', 'Only owners may grant or change the owner role');
    if (member.role === 'owner' && role !== 'owner' && (await this.repo.countOwners(access.orgId)) <= 1) throw new AppError('org.last_owner');
    await this.repo.setMemberRole(access.orgId, userId, role);
    this.membershipsChanged(access.orgId);
    return { ...member, role };
  }

  async removeMember(access: OrgAccess, userId: string): Promise<void> {
    const member = await this.getMember(access, userId);
    if (member.role === 'owner' && access.role !== 'owner') throw new AppError('auth.forbidden', 'Only owners may remove owners');
    if (member.role === 'owner' && (await this.repo.countOwners(access.orgId)) <= 1) throw new AppError('org.last_owner');
    await this.repo.removeMember(access.orgId, userId);
    this.membershipsChanged(access.orgId);
  }
}
