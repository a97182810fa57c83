import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Platform } from '../../platform.js';
import { orgOf } from '../auth.js';
import { ListQuerySchema, Metadata, Name, OrgIdParams, OrgParams, StringEnum, Tags, Timestamp, Uuid, checkMetadata, pageOf, problems, toListQuery } from '../schemas.js';
import { maxBulkDevices } from '../../devices/service.js';
import { PresenceBriefSchema, PresenceStateSchema } from './presence.js';

const Status = StringEnum(['enabled', 'disabled']);

export const DeviceSchema = Type.Object({
  id: Uuid,
  org_id: Uuid,
  name: Type.String(),
  tags: Type.Array(Type.String()),
  metadata: Type.Record(Type.String(), Type.Unknown()),
  status: Status,
  created_at: Timestamp,
  updated_at: Timestamp,
});

/** A page of devices, with the presence of each beside them (by device id). */
const DevicePage = Type.Intersect([
  pageOf('devices', DeviceSchema),
  Type.Object({ presence: Type.Record(Type.String(), PresenceBriefSchema, { description: 'The presence of each device of the page, by device id (docs/presence.md)' }) }),
]);

const DeviceWithSecret = Type.Intersect([DeviceSchema, Type.Object({ secret: Type.String({ description: 'The device secret. Shown only now: store it on the device.' }) })]);

const NewDevice = Type.Object({ name: Name, tags: Type.Optional(Tags), metadata: Type.Optional(Metadata), status: Type.Optional(Status) }, { additionalProperties: false });

export function deviceRoutes(fastify: FastifyInstance, platform: Platform): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { devices } = platform;

  app.post('/orgs/:org/devices', {
    config: { action: 'devices:write' },
    schema: {
      operationId: 'createDevice',
      tags: ['devices'],
      summary: 'Create a device',
      description: 'The response carries the device secret, which is never shown again (rotate it with POST …/secret).',
      params: OrgParams,
      body: NewDevice,
      response: { 201: DeviceWithSecret, ...problems(400, 401, 403, 404) },
    },
  }, async (req, reply) => {
    checkMetadata(req.body.metadata);
    const d = await devices.create(orgOf(req).orgId, req.body);
    req.log.info({ orgId: d.org_id, deviceId: d.id }, 'device created');
    reply.code(201).header('location', `/orgs/${d.org_id}/devices/${d.id}`);
    return d;
  });

  app.post('/orgs/:org/devices/bulk', {
    config: { action: 'devices:write' },
    schema: {
      operationId: 'createDevices',
      tags: ['devices'],
      summary: `Create up to ${maxBulkDevices} devices at once (all or nothing)`,
      description: 'Every device is created, with its secret in the response, or none is (the first invalid one is named). Needs `devices:write` in the organization (docs/permissions.md).',
      params: OrgParams,
      body: Type.Object({ devices: Type.Array(NewDevice, { minItems: 1, maxItems: maxBulkDevices }) }, { additionalProperties: false }),
      response: { 201: Type.Object({ devices: Type.Array(DeviceWithSecret) }), ...problems(400, 401, 403, 404, 413) },
    },
  }, async (req, reply) => {
    for (const d of req.body.devices) checkMetadata(d.metadata);
    const created = await devices.createMany(orgOf(req).orgId, req.body.devices);
    req.log.info({ orgId: req.params.org, count: created.length }, 'devices created in bulk');
    reply.code(201);
    return { devices: created };
  });

  app.get('/orgs/:org/devices', {
    config: { action: 'devices:read' },
    schema: {
      operationId: 'listDevices',
      tags: ['devices'],
      summary: 'List devices',
      description: 'Filter by name, tag, metadata, status, group or presence (`online`, `idle`, `offline`: docs/presence.md); sorted and paged. Beside the devices, `presence` has the presence of each. Needs `devices:read` in the organization (docs/permissions.md).',
      params: OrgParams,
      querystring: Type.Intersect([ListQuerySchema, Type.Object({ status: Type.Optional(Status), group_id: Type.Optional(Uuid), presence: Type.Optional(PresenceStateSchema) })]),
      response: { 200: DevicePage, ...problems(400, 401, 404) },
    },
  }, async (req) => {
    const q = { ...toListQuery(req.query), status: req.query.status, group_id: req.query.group_id, presence: req.query.presence };
    const orgId = orgOf(req).orgId;
    const { total, items } = await devices.list(orgId, q);
    const presence = await platform.presence.ofDevices(orgId, items.map((d) => d.id));
    return { total, offset: q.offset, limit: q.limit, devices: items, presence: Object.fromEntries(presence) };
  });

  app.get('/orgs/:org/devices/:id', {
    config: { action: 'devices:read' },
    schema: { operationId: 'getDevice', tags: ['devices'], summary: 'Get a device', description: 'The device without its secret (its presence: GET …/presence). Needs `devices:read` in the organization (docs/permissions.md).', params: OrgIdParams, response: { 200: DeviceSchema, ...problems(401, 404) } },
  }, async (req) => devices.get(orgOf(req).orgId, req.params.id));

  app.patch('/orgs/:org/devices/:id', {
    config: { action: 'devices:write' },
    schema: {
      operationId: 'updateDevice',
      tags: ['devices'],
      summary: 'Change name, tags, metadata or status',
      description: 'Fields left out are kept. Setting status to disabled refuses the device on every protocol at once.',
      params: OrgIdParams,
      body: Type.Object({ name: Type.Optional(Name), tags: Type.Optional(Tags), metadata: Type.Optional(Metadata), status: Type.Optional(Status) }, { additionalProperties: false }),
      response: { 200: DeviceSchema, ...problems(400, 401, 403, 404) },
    },
  }, async (req) => {
    checkMetadata(req.body.metadata);
    return devices.update(orgOf(req).orgId, req.params.id, req.body);
  });

  for (const [verb, status] of [['enable', 'enabled'], ['disable', 'disabled']] as const) {
    app.post(`/orgs/:org/devices/:id/${verb}`, {
      config: { action: 'devices:write' },
      schema: {
        operationId: `${verb}Device`,
        tags: ['devices'],
        summary: `${verb === 'enable' ? 'Enable' : 'Disable'} a device`,
        description: `${verb === 'enable' ? 'The device may connect, publish and subscribe again on every protocol.' : 'The device is refused on every protocol at once and its live sessions are ended; its secret and connections are kept.'} Needs \`devices:write\` in the organization (docs/permissions.md).`,
        params: OrgIdParams,
        response: { 200: DeviceSchema, ...problems(401, 403, 404) },
      },
    }, async (req) => devices.setStatus(orgOf(req).orgId, req.params.id, status));
  }

  app.post('/orgs/:org/devices/:id/secret', {
    config: { action: 'devices:write' },
    schema: {
      operationId: 'rotateDeviceSecret',
      tags: ['devices'],
      summary: 'Rotate the device secret',
      description: 'Returns the new secret once; the old one stops working immediately on every protocol.',
      params: OrgIdParams,
      response: { 200: DeviceWithSecret, ...problems(401, 403, 404) },
    },
  }, async (req) => {
    const d = await devices.rotateSecret(orgOf(req).orgId, req.params.id);
    req.log.info({ orgId: d.org_id, deviceId: d.id }, 'device secret rotated');
    return d;
  });

  app.delete('/orgs/:org/devices/:id', {
    config: { action: 'devices:write' },
    schema: { operationId: 'deleteDevice', tags: ['devices'], summary: 'Delete a device', description: 'Its connections go too, and its live sessions on every protocol are ended. Needs `devices:write` in the organization (docs/permissions.md).', params: OrgIdParams, response: { 204: Type.Null(), ...problems(401, 403, 404) } },
  }, async (req, reply) => {
    await devices.delete(orgOf(req).orgId, req.params.id);
    req.log.info({ orgId: req.params.org, deviceId: req.params.id }, 'device deleted');
    return reply.code(204).send(null);
  });
}
