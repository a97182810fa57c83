import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { AppError } from '../../core/errors.js';
import type { Platform } from '../../platform.js';
import { principalOf, requirePlatformAdmin } from '../auth.js';
import { PageQuery, Timestamp, Uuid, pageOf, problems } from '../schemas.js';

export const UserSchema = Type.Object({
  id: Uuid,
  email: Type.String(),
  name: Type.String(),
  role: Type.Union([Type.Literal('admin'), Type.Literal('user')], { description: 'Platform role' }),
  created_at: Timestamp,
  updated_at: Timestamp,
});

const Email = Type.String({ format: 'email', maxLength: 320 });
const Password = Type.String({ minLength: 1, maxLength: 1024 });
const PlatformRole = Type.Union([Type.Literal('admin'), Type.Literal('user')]);

export function userRoutes(fastify: FastifyInstance, platform: Platform): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { users } = platform;

  app.post('/users', {
    schema: {
      operationId: 'createUser',
      tags: ['users'],
      summary: 'Create a user (platform admins)',
      description: 'A platform admin creates an account with a password, as a platform admin or a user.',
      body: Type.Object({ email: Email, password: Password, name: Type.Optional(Type.String({ maxLength: 256 })), role: Type.Optional(PlatformRole) }, { additionalProperties: false }),
      response: { 201: UserSchema, ...problems(400, 401, 403, 409) },
    },
  }, async (req, reply) => {
    requirePlatformAdmin(req);
    const user = await users.create(req.body);
    req.log.info({ userId: user.id }, 'user created');
    reply.code(201).header('location', `/users/${user.id}`);
    return user;
  });

  app.post('/auth/signup', {
    config: { auth: 'none' },
    schema: {
      operationId: 'signUp',
      tags: ['users'],
      summary: 'Create your own account (only when FLEETWIRE_SIGNUP=true)',
      description: 'Creates an account for the caller when the platform allows sign-up (FLEETWIRE_SIGNUP); otherwise 403.',
      body: Type.Object({ email: Email, password: Password, name: Type.Optional(Type.String({ maxLength: 256 })) }, { additionalProperties: false }),
      response: { 201: UserSchema, ...problems(400, 403, 409) },
    },
  }, async (req, reply) => {
    if (!platform.config.signup) throw new AppError('auth.signup_disabled', 'Self sign-up is disabled; ask a platform admin for an account');
    const user = await users.create({ ...req.body, role: 'user' });
    reply.code(201).header('location', `/users/${user.id}`);
    return user;
  });

  app.get('/users', {
    schema: {
      operationId: 'listUsers',
      tags: ['users'],
      summary: 'List users (platform admins)',
      description: 'Every account on the platform, a page at a time.',
      querystring: Type.Intersect([PageQuery, Type.Object({ email: Type.Optional(Type.String({ maxLength: 320 })) })]),
      response: { 200: pageOf('users', UserSchema), ...problems(400, 401, 403) },
    },
  }, async (req) => {
    requirePlatformAdmin(req);
    const { total, items } = await users.list(req.query.offset, req.query.limit, req.query.email);
    return { total, offset: req.query.offset, limit: req.query.limit, users: items };
  });

  app.get('/users/me', {
    config: { personalTokens: true },
    schema: { operationId: 'getCurrentUser', tags: ['users'], summary: 'Who am I', description: 'The account of the token: with a personal access token too.', response: { 200: UserSchema, ...problems(401) } },
  }, async (req) => users.get(principalOf(req).userId));

  app.patch('/users/me', {
    schema: {
      operationId: 'updateCurrentUser',
      tags: ['users'],
      summary: 'Change your name',
      description: 'Fields left out are kept.',
      body: Type.Object({ name: Type.String({ maxLength: 256 }) }, { additionalProperties: false }),
      response: { 200: UserSchema, ...problems(400, 401) },
    },
  }, async (req) => users.update(principalOf(req).userId, { name: req.body.name }));

  app.post('/users/me/password', {
    schema: {
      operationId: 'changePassword',
      tags: ['users'],
      summary: 'Change your password',
      description: 'Ends every session (refresh token) of the account.',
      body: Type.Object({ current_password: Password, new_password: Password }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...problems(400, 401, 403) },
    },
  }, async (req, reply) => {
    const p = principalOf(req);
    if (p.scope) throw new AppError('auth.token_scope', 'A personal access token cannot change the password');
    await users.changePassword(p.userId, req.body.current_password, req.body.new_password);
    return reply.code(204).send(null);
  });

  app.get('/users/:id', {
    schema: { operationId: 'getUser', tags: ['users'], summary: 'Get a user (platform admins, or yourself)', description: 'A platform admin sees any account; anyone else only their own (404 for others).', params: Type.Object({ id: Type.String() }), response: { 200: UserSchema, ...problems(401, 404) } },
  }, async (req) => {
    const p = principalOf(req);
    if (p.platformRole !== 'admin' && p.userId !== req.params.id) throw new AppError('user.not_found');
    return users.get(req.params.id);
  });

  app.patch('/users/:id', {
    schema: {
      operationId: 'updateUser',
      tags: ['users'],
      summary: 'Change a user (platform admins)',
      description: 'Fields left out are kept. Setting a password ends every session of the account.',
      params: Type.Object({ id: Type.String() }),
      body: Type.Object({ name: Type.Optional(Type.String({ maxLength: 256 })), role: Type.Optional(PlatformRole), password: Type.Optional(Password) }, { additionalProperties: false }),
      response: { 200: UserSchema, ...problems(400, 401, 403, 404) },
    },
  }, async (req) => {
    requirePlatformAdmin(req);
    const { password, ...patch } = req.body;
    if (password !== undefined) await users.setPassword(req.params.id, password);
    return users.update(req.params.id, patch);
  });

  app.delete('/users/:id', {
    schema: { operationId: 'deleteUser', tags: ['users'], summary: 'Delete a user (platform admins)', description: 'Refused (409 org.last_owner) while the user is the only owner of an organization.', params: Type.Object({ id: Type.String() }), response: { 204: Type.Null(), ...problems(401, 403, 404, 409) } },
  }, async (req, reply) => {
    const p = requirePlatformAdmin(req);
    if (p.userId === req.params.id) throw new AppError('request.invalid', 'You cannot delete your own account');
    await users.get(req.params.id);
    await platform.orgs.ensureNotSoleOwner(req.params.id);
    await users.delete(req.params.id);
    return reply.code(204).send(null);
  });
}
