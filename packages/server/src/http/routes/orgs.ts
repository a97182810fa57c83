import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Platform } from '../../platform.js';
import { orgOf, principalOf } from '../auth.js';
import { Name, OrgParams, PageQuery, StringEnum, Timestamp, Uuid, pageOf, problems } from '../schemas.js';
import { orgRoles } from '../../auth/permissions.js';
import { invitationTtlMs } from '../../orgs/service.js';

const Role = StringEnum(orgRoles);

const OrgSchema = Type.Object({
  id: Uuid,
  name: Type.String(),
  role: Type.Optional(Role),
  created_at: Timestamp,
  updated_at: Timestamp,
});

const MemberSchema = Type.Object({ user_id: Uuid, email: Type.String(), name: Type.String(), role: Role, created_at: Timestamp });
const MemberParams = Type.Object({ org: Type.String(), user_id: Type.String() });
const InvitationSchema = Type.Object({ id: Uuid, org_id: Uuid, email: Type.String(), role: Role, created_at: Timestamp, expires_at: Timestamp });
const ReceivedInvitationSchema = Type.Intersect([InvitationSchema, Type.Object({ org_name: Type.String() })]);
const InvitationParams = Type.Object({ org: Type.String(), id: Type.String() });

export function orgRoutes(fastify: FastifyInstance, platform: Platform): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { orgs } = platform;

  app.post('/orgs', {
    schema: {
      operationId: 'createOrganization',
      tags: ['organizations'],
      summary: 'Create an organization; you become its owner',
      description: 'The caller becomes the owner of the new organization.',
      body: Type.Object({ name: Name }, { additionalProperties: false }),
      response: { 201: OrgSchema, ...problems(400, 401, 403) },
    },
  }, async (req, reply) => {
    const org = await orgs.create(principalOf(req), req.body.name);
    req.log.info({ orgId: org.id }, 'organization created');
    reply.code(201).header('location', `/orgs/${org.id}`);
    return org;
  });

  app.get('/orgs', {
    config: { personalTokens: true },
    schema: {
      operationId: 'listOrganizations',
      tags: ['organizations'],
      summary: 'List the organizations you belong to (platform admins: all)',
      description: 'The organizations the caller is a member of (a platform admin: all of them; a personal access token: its one organization), a page at a time.',
      querystring: Type.Intersect([PageQuery, Type.Object({ name: Type.Optional(Type.String({ maxLength: 256 })) })]),
      response: { 200: pageOf('orgs', OrgSchema), ...problems(400, 401) },
    },
  }, async (req) => {
    const { total, items } = await orgs.list(principalOf(req), req.query.offset, req.query.limit, req.query.name);
    return { total, offset: req.query.offset, limit: req.query.limit, orgs: items };
  });

  app.get('/orgs/:org', {
    config: { action: 'org:read' },
    schema: { operationId: 'getOrganization', tags: ['organizations'], summary: 'Get an organization', description: 'The organization, with the caller\'s role in it. Needs `org:read` in the organization (docs/permissions.md).', params: OrgParams, response: { 200: OrgSchema, ...problems(401, 404) } },
  }, async (req) => orgs.get(orgOf(req)));

  app.patch('/orgs/:org', {
    config: { action: 'org:update' },
    schema: { operationId: 'updateOrganization', tags: ['organizations'], summary: 'Rename an organization', description: 'Needs `org:update` in the organization (docs/permissions.md).', params: OrgParams, body: Type.Object({ name: Name }, { additionalProperties: false }), response: { 200: OrgSchema, ...problems(400, 401, 403, 404) } },
  }, async (req) => orgs.update(orgOf(req), req.body.name));

  app.delete('/orgs/:org', {
    config: { action: 'org:delete' },
    schema: { operationId: 'deleteOrganization', tags: ['organizations'], summary: 'Delete an organization and everything in it', description: 'Deletes its devices, channels, groups, connections, members and invitations; its devices are refused on every protocol at once. Needs `org:delete` in the organization (docs/permissions.md).', params: OrgParams, response: { 204: Type.Null(), ...problems(401, 403, 404) } },
  }, async (req, reply) => {
    await orgs.delete(orgOf(req));
    req.log.info({ orgId: req.params.org }, 'organization deleted');
    return reply.code(204).send(null);
  });

  app.get('/orgs/:org/members', {
    config: { action: 'members:read' },
    schema: { operationId: 'listMembers', tags: ['organizations'], summary: 'List members', description: 'The members and their roles, a page at a time. Needs `members:read` in the organization (docs/permissions.md).', params: OrgParams, querystring: PageQuery, response: { 200: pageOf('members', MemberSchema), ...problems(400, 401, 404) } },
  }, async (req) => {
    const { total, items } = await orgs.listMembers(orgOf(req), req.query.offset, req.query.limit);
    return { total, offset: req.query.offset, limit: req.query.limit, members: items };
  });

  app.post('/orgs/:org/members', {
    config: { action: 'members:write' },
    schema: {
      operationId: 'inviteMember',
      tags: ['organizations'],
      summary: 'Invite a user by email (platform admins: add an existing user at once)',
      description: `202 with an invitation, the same whether or not the email has an account: the user becomes a member when they accept it (POST /users/me/invitations/{id}/accept) within ${invitationTtlMs / 86_400_000} days. Inviting the same email again replaces its pending invitation. A platform admin adds an existing user at once (201 with the member, 404 user.not_found when no user has the email). 409 org.member_exists when the user is a member already. Only owners may add or invite owners.`,
      params: OrgParams,
      body: Type.Object({ email: Type.String({ format: 'email', maxLength: 320 }), role: Role }, { additionalProperties: false }),
      response: { 201: MemberSchema, 202: InvitationSchema, ...problems(400, 401, 403, 404, 409) },
    },
  }, async (req, reply) => {
    const added = await orgs.addMember(orgOf(req), principalOf(req), req.body.email, req.body.role);
    if ('invitation' in added) {
      reply.code(202).header('location', `/orgs/${req.params.org}/invitations/${added.invitation.id}`);
      return added.invitation;
    }
    reply.code(201).header('location', `/orgs/${req.params.org}/members/${added.member.user_id}`);
    return added.member;
  });

  app.get('/orgs/:org/invitations', {
    config: { action: 'members:read' },
    schema: { operationId: 'listInvitations', tags: ['organizations'], summary: 'List pending invitations', description: 'Invitations sent and neither accepted, declined, withdrawn nor expired. Needs `members:read` in the organization (docs/permissions.md).', params: OrgParams, querystring: PageQuery, response: { 200: pageOf('invitations', InvitationSchema), ...problems(400, 401, 404) } },
  }, async (req) => {
    const { total, items } = await orgs.listInvitations(orgOf(req), req.query.offset, req.query.limit);
    return { total, offset: req.query.offset, limit: req.query.limit, invitations: items };
  });

  app.delete('/orgs/:org/invitations/:id', {
    config: { action: 'members:write' },
    schema: { operationId: 'withdrawInvitation', tags: ['organizations'], summary: 'Withdraw an invitation', description: 'The invitation can no longer be accepted. Needs `members:write` in the organization (docs/permissions.md).', params: InvitationParams, response: { 204: Type.Null(), ...problems(401, 403, 404) } },
  }, async (req, reply) => {
    await orgs.withdrawInvitation(orgOf(req), req.params.id);
    return reply.code(204).send(null);
  });

  app.get('/users/me/invitations', {
    schema: { operationId: 'listReceivedInvitations', tags: ['organizations'], summary: 'List your pending invitations into organizations', description: 'Invitations sent to your email that you can still accept or decline.', querystring: PageQuery, response: { 200: pageOf('invitations', ReceivedInvitationSchema), ...problems(400, 401, 403) } },
  }, async (req) => {
    const { total, items } = await orgs.invitationsOf(principalOf(req), req.query.offset, req.query.limit);
    return { total, offset: req.query.offset, limit: req.query.limit, invitations: items };
  });

  app.post('/users/me/invitations/:id/accept', {
    schema: { operationId: 'acceptInvitation', tags: ['organizations'], summary: 'Accept an invitation: you become a member with its role', description: 'Only the invited account may accept, before the invitation expires.', params: Type.Object({ id: Type.String() }), response: { 200: MemberSchema, ...problems(401, 403, 404) } },
  }, async (req) => {
    const m = await orgs.acceptInvitation(principalOf(req), req.params.id);
    req.log.info({ invitationId: req.params.id, userId: m.user_id }, 'invitation accepted');
    return m;
  });

  app.post('/users/me/invitations/:id/decline', {
    schema: { operationId: 'declineInvitation', tags: ['organizations'], summary: 'Decline an invitation', description: 'The invitation is gone; you do not become a member.', params: Type.Object({ id: Type.String() }), response: { 204: Type.Null(), ...problems(401, 403, 404) } },
  }, async (req, reply) => {
    await orgs.declineInvitation(principalOf(req), req.params.id);
    return reply.code(204).send(null);
  });

  app.get('/orgs/:org/members/:user_id', {
    config: { action: 'members:read' },
    schema: { operationId: 'getMember', tags: ['organizations'], summary: 'Get a member', description: 'The member\'s account and role. Needs `members:read` in the organization (docs/permissions.md).', params: MemberParams, response: { 200: MemberSchema, ...problems(401, 404) } },
  }, async (req) => orgs.getMember(orgOf(req), req.params.user_id));

  app.patch('/orgs/:org/members/:user_id', {
    config: { action: 'members:write' },
    schema: { operationId: 'updateMemberRole', tags: ['organizations'], summary: "Change a member's role", description: 'Only owners may grant the owner role or change an owner; an organization keeps at least one owner (409). Needs `members:write` in the organization (docs/permissions.md).', params: MemberParams, body: Type.Object({ role: Role }, { additionalProperties: false }), response: { 200: MemberSchema, ...problems(400, 401, 403, 404, 409) } },
  }, async (req) => orgs.changeRole(orgOf(req), req.params.user_id, req.body.role));

  app.delete('/orgs/:org/members/:user_id', {
    config: { action: 'members:write' },
    schema: { operationId: 'removeMember', tags: ['organizations'], summary: 'Remove a member', description: 'Only owners may remove an owner; the last owner cannot be removed (409). Needs `members:write` in the organization (docs/permissions.md).', params: MemberParams, response: { 204: Type.Null(), ...problems(401, 403, 404, 409) } },
  }, async (req, reply) => {
    await orgs.removeMember(orgOf(req), req.params.user_id);
    return reply.code(204).send(null);
  });
}
