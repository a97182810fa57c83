import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Platform } from '../../platform.js';
import { orgOf } from '../auth.js';
import { OrgIdParams, OrgParams, PageQuery, Timestamp, Uuid, pageOf, problems } from '../schemas.js';
import type { DeadLetter } from '../../storage/dead-letters.js';

const DeadLetterSummary = Type.Object({
  id: Uuid,
  org_id: Uuid,
  channel: Type.String(),
  subtopic: Type.String(),
  publisher: Type.String(),
  protocol: Type.String(),
  content_type: Type.String(),
  size: Type.Integer({ description: 'Payload size in bytes' }),
  received_at: Timestamp,
  failed_at: Timestamp,
  error: Type.String({ description: 'Why the message could not be stored' }),
});
const DeadLetterSchema = Type.Intersect([DeadLetterSummary, Type.Object({ payload: Type.String({ description: 'The payload as received, base64' }) })]);

function summary(d: DeadLetter) {
  const { payload, ...rest } = d;
  return { ...rest, size: payload.length };
}

/** The dead letters of an organization: messages the writer could not store (docs/storage.md). */
export function deadLetterRoutes(fastify: FastifyInstance, platform: Platform): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { deadLetters } = platform;

  app.get('/orgs/:org/dead-letters', {
    config: { action: 'dead-letters:read' },
    schema: { operationId: 'listDeadLetters', tags: ['messages'], summary: 'List messages that could not be stored, oldest first (without payloads)', description: 'Messages the writer could not store, with the reason, oldest first; payloads are left out (GET one to see it). Needs `dead-letters:read` in the organization (docs/permissions.md).', params: OrgParams, querystring: PageQuery, response: { 200: pageOf('dead_letters', DeadLetterSummary), ...problems(400, 401, 403, 404) } },
  }, async (req) => {
    const { offset, limit } = req.query;
    const { total, items } = await deadLetters.list(orgOf(req).orgId, offset, limit);
    return { total, offset, limit, dead_letters: items.map(summary) };
  });

  app.get('/orgs/:org/dead-letters/:id', {
    config: { action: 'dead-letters:read' },
    schema: { operationId: 'getDeadLetter', tags: ['messages'], summary: 'Get a message that could not be stored, with its payload', description: 'The message as it was received, its payload in base64, and why it could not be stored. Needs `dead-letters:read` in the organization (docs/permissions.md).', params: OrgIdParams, response: { 200: DeadLetterSchema, ...problems(401, 403, 404) } },
  }, async (req) => {
    const d = await deadLetters.get(orgOf(req).orgId, req.params.id);
    return { ...summary(d), payload: d.payload.toString('base64') };
  });

  app.delete('/orgs/:org/dead-letters/:id', {
    config: { action: 'dead-letters:write' },
    schema: { operationId: 'deleteDeadLetter', tags: ['messages'], summary: 'Delete a dead letter', description: 'Once handled (for example published again after a fix). Needs `dead-letters:write` in the organization (docs/permissions.md).', params: OrgIdParams, response: { 204: Type.Null(), ...problems(401, 403, 404) } },
  }, async (req, reply) => {
    await deadLetters.delete(orgOf(req).orgId, req.params.id);
    return reply.code(204).send(null);
  });

  app.delete('/orgs/:org/dead-letters', {
    config: { action: 'dead-letters:write' },
    schema: { operationId: 'deleteDeadLetters', tags: ['messages'], summary: "Delete all of an organization's dead letters", description: 'Answers how many were deleted. Needs `dead-letters:write` in the organization (docs/permissions.md).', params: OrgParams, response: { 200: Type.Object({ deleted: Type.Integer() }), ...problems(401, 403, 404) } },
  }, async (req) => ({ deleted: await deadLetters.deleteAll(orgOf(req).orgId) }));
}
