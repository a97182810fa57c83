import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Platform } from '../../platform.js';
import { orgOf } from '../auth.js';
import { ListQuerySchema, Metadata, Name, OrgIdParams, OrgParams, Tags, Timestamp, Uuid, checkMetadata, pageOf, problems, toListQuery } from '../schemas.js';
import { DeviceSchema } from './devices.js';
import { maxGroupDevicesPerRequest } from '../../groups/service.js';

const GroupSchema = Type.Object({
  id: Uuid,
  org_id: Uuid,
  name: Type.String(),
  description: Type.String(),
  tags: Type.Array(Type.String()),
  metadata: Type.Record(Type.String(), Type.Unknown()),
  created_at: Timestamp,
  updated_at: Timestamp,
});

const Description = Type.String({ maxLength: 4096 });
const DeviceIds = Type.Object({ device_ids: Type.Array(Type.String(), { minItems: 1, maxItems: maxGroupDevicesPerRequest }) }, { additionalProperties: false });

export function groupRoutes(fastify: FastifyInstance, platform: Platform): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { groups, devices } = platform;

  app.post('/orgs/:org/groups', {
    config: { action: 'groups:write' },
    schema: {
      operationId: 'createGroup',
      tags: ['groups'],
      summary: 'Create a group of devices',
      description: 'A named set of devices of the organization. Needs `groups:write` in the organization (docs/permissions.md).',
      params: OrgParams,
      body: Type.Object({ name: Name, description: Type.Optional(Description), tags: Type.Optional(Tags), metadata: Type.Optional(Metadata) }, { additionalProperties: false }),
      response: { 201: GroupSchema, ...problems(400, 401, 403, 404) },
    },
  }, async (req, reply) => {
    checkMetadata(req.body.metadata);
    const g = await groups.create(orgOf(req).orgId, req.body);
    reply.code(201).header('location', `/orgs/${g.org_id}/groups/${g.id}`);
    return g;
  });

  app.get('/orgs/:org/groups', {
    config: { action: 'groups:read' },
    schema: { operationId: 'listGroups', tags: ['groups'], summary: 'List groups', description: 'Filter by name, tag or metadata; sorted and paged. Needs `groups:read` in the organization (docs/permissions.md).', params: OrgParams, querystring: ListQuerySchema, response: { 200: pageOf('groups', GroupSchema), ...problems(400, 401, 404) } },
  }, async (req) => {
    const q = toListQuery(req.query);
    const { total, items } = await groups.list(orgOf(req).orgId, q);
    return { total, offset: q.offset, limit: q.limit, groups: items };
  });

  app.get('/orgs/:org/groups/:id', {
    config: { action: 'groups:read' },
    schema: { operationId: 'getGroup', tags: ['groups'], summary: 'Get a group', description: 'Needs `groups:read` in the organization (docs/permissions.md).', params: OrgIdParams, response: { 200: GroupSchema, ...problems(401, 404) } },
  }, async (req) => groups.get(orgOf(req).orgId, req.params.id));

  app.patch('/orgs/:org/groups/:id', {
    config: { action: 'groups:write' },
    schema: {
      operationId: 'updateGroup',
      tags: ['groups'],
      summary: 'Change a group',
      description: 'Fields left out are kept. Needs `groups:write` in the organization (docs/permissions.md).',
      params: OrgIdParams,
      body: Type.Object({ name: Type.Optional(Name), description: Type.Optional(Description), tags: Type.Optional(Tags), metadata: Type.Optional(Metadata) }, { additionalProperties: false }),
      response: { 200: GroupSchema, ...problems(400, 401, 403, 404) },
    },
  }, async (req) => {
    checkMetadata(req.body.metadata);
    return groups.update(orgOf(req).orgId, req.params.id, req.body);
  });

  app.delete('/orgs/:org/groups/:id', {
    config: { action: 'groups:write' },
    schema: { operationId: 'deleteGroup', tags: ['groups'], summary: 'Delete a group (its devices stay)', description: 'The devices in it are not deleted. Needs `groups:write` in the organization (docs/permissions.md).', params: OrgIdParams, response: { 204: Type.Null(), ...problems(401, 403, 404) } },
  }, async (req, reply) => {
    await groups.delete(orgOf(req).orgId, req.params.id);
    return reply.code(204).send(null);
  });

  app.get('/orgs/:org/groups/:id/devices', {
    config: { action: 'groups:read' },
    schema: { operationId: 'listGroupDevices', tags: ['groups'], summary: "List a group's devices", description: 'The devices in the group, a page at a time. Needs `groups:read` in the organization (docs/permissions.md).', params: OrgIdParams, querystring: ListQuerySchema, response: { 200: pageOf('devices', DeviceSchema), ...problems(400, 401, 404) } },
  }, async (req) => {
    const orgId = orgOf(req).orgId;
    await groups.get(orgId, req.params.id);
    const q = { ...toListQuery(req.query), group_id: req.params.id };
    const { total, items } = await devices.list(orgId, q);
    return { total, offset: q.offset, limit: q.limit, devices: items };
  });

  app.post('/orgs/:org/groups/:id/devices', {
    config: { action: 'groups:write' },
    schema: { operationId: 'addGroupDevices', tags: ['groups'], summary: 'Add devices to a group', description: 'Devices already in the group stay; every device must belong to the organization. Needs `groups:write` in the organization (docs/permissions.md).', params: OrgIdParams, body: DeviceIds, response: { 204: Type.Null(), ...problems(400, 401, 403, 404) } },
  }, async (req, reply) => {
    await groups.addDevices(orgOf(req).orgId, req.params.id, req.body.device_ids);
    return reply.code(204).send(null);
  });

  app.delete('/orgs/:org/groups/:id/devices', {
    config: { action: 'groups:write' },
    schema: { operationId: 'removeGroupDevices', tags: ['groups'], summary: 'Remove devices from a group', description: 'The devices themselves are kept. Needs `groups:write` in the organization (docs/permissions.md).', params: OrgIdParams, body: DeviceIds, response: { 204: Type.Null(), ...problems(400, 401, 403, 404) } },
  }, async (req, reply) => {
    await groups.removeDevices(orgOf(req).orgId, req.params.id, req.body.device_ids);
    return reply.code(204).send(null);
  });
}
