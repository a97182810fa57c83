import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Platform } from '../../platform.js';
import { orgOf } from '../auth.js';
import { ListQuerySchema, Metadata, Name, OrgIdParams, OrgParams, StringEnum, Tags, Timestamp, Uuid, checkMetadata, pageOf, problems, toListQuery } from '../schemas.js';
import { maxBulkChannels } from '../../channels/service.js';
import { channelContentTypes, defaultChannelContentType } from '../../channels/content-type.js';

export const ChannelSchema = Type.Object({
  id: Uuid,
  org_id: Uuid,
  name: Type.String(),
  tags: Type.Array(Type.String()),
  metadata: Type.Record(Type.String(), Type.Unknown()),
  content_type: StringEnum(channelContentTypes, { description: 'How payloads that come without a content type are taken' }),
  created_at: Timestamp,
  updated_at: Timestamp,
});

/**
 * The channel's content type: what a payload is taken as when its protocol carries no type (MQTT
 * 3.1.1, MQTT 5 without Content Type, CoAP without Content-Format, HTTP without Content-Type,
 * WebSocket without `?content_type=`). A type the protocol carries wins.
 */
const ContentType = StringEnum(channelContentTypes, {
  description: `How payloads that come without a content type are taken: application/senml+json (SenML JSON, checked), application/json (JSON, checked) or application/octet-stream (opaque bytes, stored as they come). Default ${defaultChannelContentType}. A content type the protocol carries wins.`,
});

const NewChannel = Type.Object({ name: Name, tags: Type.Optional(Tags), metadata: Type.Optional(Metadata), content_type: Type.Optional(ContentType) }, { additionalProperties: false });

export function channelRoutes(fastify: FastifyInstance, platform: Platform): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { channels } = platform;

  app.post('/orgs/:org/channels', {
    config: { action: 'channels:write' },
    schema: { operationId: 'createChannel', tags: ['channels'], summary: 'Create a channel', description: 'Devices publish and subscribe on it once connected to it (POST /orgs/{org}/connections). Needs `channels:write` in the organization (docs/permissions.md).', params: OrgParams, body: NewChannel, response: { 201: ChannelSchema, ...problems(400, 401, 403, 404) } },
  }, async (req, reply) => {
    checkMetadata(req.body.metadata);
    const c = await channels.create(orgOf(req).orgId, req.body);
    req.log.info({ orgId: c.org_id, channelId: c.id }, 'channel created');
    reply.code(201).header('location', `/orgs/${c.org_id}/channels/${c.id}`);
    return c;
  });

  app.post('/orgs/:org/channels/bulk', {
    config: { action: 'channels:write' },
    schema: {
      operationId: 'createChannels',
      tags: ['channels'],
      summary: `Create up to ${maxBulkChannels} channels at once (all or nothing)`,
      description: 'Every channel is created or none is (the first invalid one is named). Needs `channels:write` in the organization (docs/permissions.md).',
      params: OrgParams,
      body: Type.Object({ channels: Type.Array(NewChannel, { minItems: 1, maxItems: maxBulkChannels }) }, { additionalProperties: false }),
      response: { 201: Type.Object({ channels: Type.Array(ChannelSchema) }), ...problems(400, 401, 403, 404, 413) },
    },
  }, async (req, reply) => {
    for (const c of req.body.channels) checkMetadata(c.metadata);
    const created = await channels.createMany(orgOf(req).orgId, req.body.channels);
    reply.code(201);
    return { channels: created };
  });

  app.get('/orgs/:org/channels', {
    config: { action: 'channels:read' },
    schema: { operationId: 'listChannels', tags: ['channels'], summary: 'List channels', description: 'Filter by name, tag or metadata; sorted and paged. Needs `channels:read` in the organization (docs/permissions.md).', params: OrgParams, querystring: ListQuerySchema, response: { 200: pageOf('channels', ChannelSchema), ...problems(400, 401, 404) } },
  }, async (req) => {
    const q = toListQuery(req.query);
    const { total, items } = await channels.list(orgOf(req).orgId, q);
    return { total, offset: q.offset, limit: q.limit, channels: items };
  });

  app.get('/orgs/:org/channels/:id', {
    config: { action: 'channels:read' },
    schema: { operationId: 'getChannel', tags: ['channels'], summary: 'Get a channel', description: 'Needs `channels:read` in the organization (docs/permissions.md).', params: OrgIdParams, response: { 200: ChannelSchema, ...problems(401, 404) } },
  }, async (req) => channels.get(orgOf(req).orgId, req.params.id));

  app.patch('/orgs/:org/channels/:id', {
    config: { action: 'channels:write' },
    schema: {
      operationId: 'updateChannel',
      tags: ['channels'],
      summary: 'Change name, tags, metadata or content type',
      description: 'Fields left out are kept. Needs `channels:write` in the organization (docs/permissions.md).',
      params: OrgIdParams,
      body: Type.Object({ name: Type.Optional(Name), tags: Type.Optional(Tags), metadata: Type.Optional(Metadata), content_type: Type.Optional(ContentType) }, { additionalProperties: false }),
      response: { 200: ChannelSchema, ...problems(400, 401, 403, 404) },
    },
  }, async (req) => {
    checkMetadata(req.body.metadata);
    return channels.update(orgOf(req).orgId, req.params.id, req.body);
  });

  app.delete('/orgs/:org/channels/:id', {
    config: { action: 'channels:write' },
    schema: { operationId: 'deleteChannel', tags: ['channels'], summary: 'Delete a channel and its connections', description: 'Devices lose their connections to it and its live subscriptions are ended. Needs `channels:write` in the organization (docs/permissions.md).', params: OrgIdParams, response: { 204: Type.Null(), ...problems(401, 403, 404) } },
  }, async (req, reply) => {
    await channels.delete(orgOf(req).orgId, req.params.id);
    req.log.info({ orgId: req.params.org, channelId: req.params.id }, 'channel deleted');
    return reply.code(204).send(null);
  });
}
