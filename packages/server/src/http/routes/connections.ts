import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Platform } from '../../platform.js';
import { orgOf } from '../auth.js';
import { OrgIdParams, OrgParams, PageQuery, StringEnum, Uuid, pageOf, problems } from '../schemas.js';

const ConnType = StringEnum(['publish', 'subscribe']);

const ConnectionBody = Type.Object({
  device_ids: Type.Array(Type.String(), { minItems: 1, maxItems: 1000 }),
  channel_ids: Type.Array(Type.String(), { minItems: 1, maxItems: 1000 }),
  types: Type.Array(ConnType, { minItems: 1, maxItems: 2, description: 'What the devices may do on the channels' }),
}, { additionalProperties: false });

const ConnectedDevice = Type.Object({ device_id: Uuid, name: Type.String(), status: StringEnum(['enabled', 'disabled']), types: Type.Array(ConnType) });
const ConnectedChannel = Type.Object({ channel_id: Uuid, name: Type.String(), types: Type.Array(ConnType) });

export function connectionRoutes(fastify: FastifyInstance, platform: Platform): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { connections } = platform;

  app.post('/orgs/:org/connections', {
    config: { action: 'connections:write' },
    schema: {
      operationId: 'connectDevices',
      tags: ['connections'],
      summary: 'Connect devices to channels',
      description: 'Every listed device is allowed the listed types (publish, subscribe) on every listed channel. Existing connections are kept. All ids must belong to the organization.',
      params: OrgParams,
      body: ConnectionBody,
      response: { 204: Type.Null(), ...problems(400, 401, 403, 404) },
    },
  }, async (req, reply) => {
    await connections.connect(orgOf(req).orgId, req.body);
    req.log.info({ orgId: req.params.org, devices: req.body.device_ids.length, channels: req.body.channel_ids.length, types: req.body.types }, 'connected');
    return reply.code(204).send(null);
  });

  app.delete('/orgs/:org/connections', {
    config: { action: 'connections:write' },
    schema: {
      operationId: 'disconnectDevices',
      tags: ['connections'],
      summary: 'Disconnect devices from channels',
      description: 'Removes the listed types; the devices lose that access at once on every protocol.',
      params: OrgParams,
      body: ConnectionBody,
      response: { 204: Type.Null(), ...problems(400, 401, 403, 404) },
    },
  }, async (req, reply) => {
    await connections.disconnect(orgOf(req).orgId, req.body);
    req.log.info({ orgId: req.params.org, devices: req.body.device_ids.length, channels: req.body.channel_ids.length, types: req.body.types }, 'disconnected');
    return reply.code(204).send(null);
  });

  app.get('/orgs/:org/channels/:id/devices', {
    config: { action: 'connections:read' },
    schema: { operationId: 'listChannelDevices', tags: ['connections'], summary: 'Devices connected to a channel', description: 'The devices connected to the channel, a page at a time. Needs `connections:read` in the organization (docs/permissions.md).', params: OrgIdParams, querystring: PageQuery, response: { 200: pageOf('devices', ConnectedDevice), ...problems(400, 401, 404) } },
  }, async (req) => {
    const { total, items } = await connections.channelDevices(orgOf(req).orgId, req.params.id, req.query.offset, req.query.limit);
    return { total, offset: req.query.offset, limit: req.query.limit, devices: items };
  });

  app.get('/orgs/:org/devices/:id/channels', {
    config: { action: 'connections:read' },
    schema: { operationId: 'listDeviceChannels', tags: ['connections'], summary: 'Channels a device is connected to', description: 'The channels the device is connected to, a page at a time. Needs `connections:read` in the organization (docs/permissions.md).', params: OrgIdParams, querystring: PageQuery, response: { 200: pageOf('channels', ConnectedChannel), ...problems(400, 401, 404) } },
  }, async (req) => {
    const { total, items } = await connections.deviceChannels(orgOf(req).orgId, req.params.id, req.query.offset, req.query.limit);
    return { total, offset: req.query.offset, limit: req.query.limit, channels: items };
  });
}
