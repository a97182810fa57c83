import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { AppError } from '../../core/errors.js';
import type { Platform } from '../../platform.js';
import { principalOf, requirePlatformAdmin } from '../auth.js';
import { PageQuery, StringEnum, Timestamp, Uuid, pageOf, problems } from '../schemas.js';
import { actions, roleAllows } from '../../auth/permissions.js';
import type { PersonalAccessToken } from '../../auth/repository.js';

const TokenPair = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'Seconds until the access token expires' }),
  refresh_token: Type.String(),
  refresh_expires_in: Type.Integer({ description: 'Seconds until the refresh token expires' }),
});

const Pat = Type.Object({
  id: Uuid,
  name: Type.String(),
  org_id: Uuid,
  actions: Type.Array(Type.String()),
  expires_at: Timestamp,
  revoked_at: Type.Union([Timestamp, Type.Null()]),
  last_used_at: Type.Union([Timestamp, Type.Null()]),
  created_at: Timestamp,
});

const ActionSchema = StringEnum(actions);
const maxPatLifetimeMs = 366 * 86_400_000;

function showPat(p: PersonalAccessToken) {
  const { user_id: _, ...rest } = p;
  return rest;
}

export function authRoutes(fastify: FastifyInstance, platform: Platform): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { auth, orgs } = platform;

  app.post('/auth/token', {
    config: { auth: 'none' },
    schema: {
      operationId: 'logIn',
      tags: ['auth'],
      summary: 'Log in with email and password',
      description: 'Returns a short-lived access token and a refresh token. Failed attempts are rate limited per account and per client address (429 with Retry-After).',
      body: Type.Object({ email: Type.String({ minLength: 3, maxLength: 320 }), password: Type.String({ minLength: 1, maxLength: 1024 }) }, { additionalProperties: false }),
      response: { 200: TokenPair, ...problems(400, 401, 429) },
    },
  }, async (req) => auth.login(req.body.email, req.body.password, req.ip));

  app.post('/auth/refresh', {
    config: { auth: 'none' },
    schema: {
      operationId: 'refreshToken',
      tags: ['auth'],
      summary: 'Trade a refresh token for a new token pair',
      description: 'The refresh token is replaced: the old one stops working. Presenting a replaced token again revokes the whole session.',
      body: Type.Object({ refresh_token: Type.String({ minLength: 1, maxLength: 512 }) }, { additionalProperties: false }),
      response: { 200: TokenPair, ...problems(400, 401) },
    },
  }, async (req) => auth.refresh(req.body.refresh_token));

  app.post('/auth/logout', {
    config: { auth: 'none' },
    schema: {
      operationId: 'logOut',
      tags: ['auth'],
      summary: 'End the session of a refresh token',
      description: 'Ends the session the refresh token belongs to: its refresh and access tokens stop working in every process. An unknown or already ended token answers 204 too.',
      body: Type.Object({ refresh_token: Type.String({ minLength: 1, maxLength: 512 }) }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...problems(400) },
    },
  }, async (req, reply) => {
    await auth.logout(req.body.refresh_token);
    return reply.code(204).send(null);
  });

  app.post('/users/me/tokens', {
    schema: {
      operationId: 'createPersonalAccessToken',
      tags: ['auth'],
      summary: 'Create a personal access token',
      description: 'The token is limited to one organization and the listed actions, which your role there must allow (403 auth.forbidden names those it does not). It can call only the routes of its actions (and GET /users/me, GET /orgs): never your account, tokens, password or sessions. Its text is shown only in this response.',
      body: Type.Object({
        name: Type.String({ minLength: 1, maxLength: 128 }),
        org_id: Uuid,
        actions: Type.Array(ActionSchema, { minItems: 1, maxItems: actions.length }),
        expires_in: Type.Integer({ minimum: 60, maximum: maxPatLifetimeMs / 1000, description: 'Lifetime in seconds (at most 366 days)' }),
      }, { additionalProperties: false }),
      response: { 201: Type.Intersect([Pat, Type.Object({ token: Type.String() })]), ...problems(400, 401, 403, 404) },
    },
  }, async (req, reply) => {
    const p = principalOf(req);
    if (p.scope) throw new AppError('auth.token_scope', 'A personal access token cannot create other tokens');
    const access = await orgs.authorize(p, req.body.org_id, 'org:read');
    const beyond = [...new Set(req.body.actions)].filter((a) => !roleAllows(access.role, a));
    if (beyond.length > 0) throw new AppError('auth.forbidden', `Your role (${access.role}) does not allow ${beyond.join(', ')}`, { actions: beyond });
    const { token, pat } = await auth.createPat({ id: p.userId }, { name: req.body.name, orgId: req.body.org_id, actions: req.body.actions, expiresAt: platform.clock.now() + req.body.expires_in * 1000 });
    reply.code(201).header('location', `/users/me/tokens/${pat.id}`);
    return { ...showPat(pat), token };
  });

  app.delete('/users/me/sessions', {
    schema: {
      operationId: 'signOutEverywhere',
      tags: ['auth'],
      summary: 'Sign out everywhere',
      description: 'Ends every session of your account, this one included: their refresh tokens and access tokens stop working at once, in every process. Personal access tokens are not sessions: revoke them with DELETE /users/me/tokens/{id}.',
      response: { 204: Type.Null(), ...problems(401, 403) },
    },
  }, async (req, reply) => {
    await auth.revokeSessions(principalOf(req).userId);
    req.log.info({ userId: principalOf(req).userId }, 'signed out everywhere');
    return reply.code(204).send(null);
  });

  app.delete('/users/:id/sessions', {
    schema: {
      operationId: 'endUserSessions',
      tags: ['auth'],
      summary: "End every session of a user (platform admins)",
      description: "As DELETE /users/me/sessions, for another user: e.g. when their account may be compromised.",
      params: Type.Object({ id: Type.String() }),
      response: { 204: Type.Null(), ...problems(401, 403, 404) },
    },
  }, async (req, reply) => {
    const admin = requirePlatformAdmin(req);
    await platform.users.get(req.params.id);
    await auth.revokeSessions(req.params.id);
    req.log.info({ userId: req.params.id, by: admin.userId }, 'sessions of a user ended by a platform admin');
    return reply.code(204).send(null);
  });

  app.get('/users/me/tokens', {
    schema: { operationId: 'listPersonalAccessTokens', tags: ['auth'], summary: 'List your personal access tokens', description: 'Your personal access tokens, without their secrets (shown only when created), a page at a time.', querystring: PageQuery, response: { 200: pageOf('tokens', Pat), ...problems(400, 401) } },
  }, async (req) => {
    const { total, items } = await auth.listPats(principalOf(req).userId, req.query.offset, req.query.limit);
    return { total, offset: req.query.offset, limit: req.query.limit, tokens: items.map(showPat) };
  });

  app.delete('/users/me/tokens/:id', {
    schema: { operationId: 'revokePersonalAccessToken', tags: ['auth'], summary: 'Revoke a personal access token', description: 'The token stops working at once, on every route and protocol.', params: Type.Object({ id: Type.String() }), response: { 204: Type.Null(), ...problems(401, 404) } },
  }, async (req, reply) => {
    await auth.revokePat(principalOf(req).userId, req.params.id);
    return reply.code(204).send(null);
  });
}
